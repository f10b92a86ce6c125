"""Printing for the CLI: aligned tables for people, JSON for scripts."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Sequence
from typing import Any


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def emit_json(data: Any) -> None:
    json.dump(data, sys.stdout, default=_default, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def listing(args, rows: list[dict], columns, **table_options) -> None:
    """`--json` gives the rows as JSON for scripts, otherwise a table for people."""
    if getattr(args, "json", False):
        emit_json(rows)
    else:
        table(rows, columns, **table_options)


def _cell(value: Any, width: int | None) -> str:
    if value is None:
        text = "-"
    elif isinstance(value, dt.datetime):
        text = value.strftime("%Y-%m-%d %H:%M")
    elif isinstance(value, list | tuple):
        text = ", ".join(map(str, value))
    else:
        text = str(value)
    text = " ".join(text.split())
    if width and len(text) > width:
        text = text[: width - 1] + "…"
    return text


def table(rows: Sequence[dict], columns: Sequence[tuple[str, str, int | None]],
          empty: str = "(none)") -> None:
    """Columns are (key, heading, max width or None)."""
    if not rows:
        print(empty)
        return
    cells = [[_cell(r.get(k), w) for k, _, w in columns] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, (_, h, _) in enumerate(columns)]
    print("  ".join(h.ljust(widths[i]) for i, (_, h, _) in enumerate(columns)).rstrip())
    for c in cells:
        print("  ".join(v.ljust(widths[i]) for i, v in enumerate(c)).rstrip())


def fields(pairs: Sequence[tuple[str, Any]]) -> None:
    width = max(len(k) for k, _ in pairs)
    for k, v in pairs:
        print(f"{k.ljust(width)}  {_cell(v, None)}")
