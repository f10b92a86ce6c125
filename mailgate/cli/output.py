"""Printing for the CLI: aligned tables for people, JSON for scripts.

Everything the CLI writes for people goes through `safe` (via `say`, `block`, `table`
and `fields`): mail text is written by strangers, and a raw ESC, BEL, C1 control or
bidi override in a subject would drive the admin's terminal (set the clipboard, retitle
the window, erase lines, reorder what is shown). They are shown escaped instead
(`\\x1b`, `\\x9b`, `\\u202e`). JSON output escapes the same characters the JSON way, so
a script reads the original text and a terminal shows it harmlessly.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Sequence
from typing import Any

# Characters a terminal acts on or that reorder what it shows: C0 and C1 controls, DEL,
# the Arabic letter mark, LRM/RLM, the bidi embeddings, overrides and isolates, and
# the line/paragraph separators; lone surrogates (undecodable bytes) cannot be written
# to a UTF-8 stream at all.
_UNSAFE = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), 0x061C, 0x200E, 0x200F,
           0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A),
           *range(0xD800, 0xE000)]


def _escape(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_ONE_LINE = {c: _escape(c) for c in _UNSAFE} | {0x09: " "}
_MULTI_LINE = _ONE_LINE | {0x0A: "\n"}
# Inside JSON strings: the JSON escape of the same characters (C0 json escapes itself).
_JSON = {c: f"\\u{c:04x}" for c in _UNSAFE if c >= 0x7F}


def safe(text: Any, *, multiline: bool = False) -> str:
    """`text` with everything a terminal would act on shown escaped. Newlines stay only
    with `multiline` (a text block printed as such); a tab becomes a space."""
    text = "" if text is None else str(text)
    if text.isascii() and text.isprintable():         # the common case: nothing to do
        return text
    if multiline:
        return text.replace("\r\n", "\n").translate(_MULTI_LINE)
    return text.translate(_ONE_LINE)


def say(line: str = "") -> None:
    """Print one line for people."""
    print(safe(line))


def block(text: str | None, indent: str = "") -> None:
    """Print a multi-line text (a mail body) for people, each line indented."""
    for line in safe(text or "", multiline=True).splitlines():
        print(f"{indent}{line}" if line else "")


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def emit_json(data: Any) -> None:
    # Structural JSON is ASCII, so these characters can only be inside strings, where
    # their \u escape means the same to a JSON reader.
    text = json.dumps(data, default=_default, ensure_ascii=False, indent=2)
    sys.stdout.write(text.translate(_JSON))
    sys.stdout.write("\n")


def answer(args, data: Any, line: str) -> None:
    """`--json` gives `data` for scripts, otherwise the one `line` for people."""
    if getattr(args, "json", False):
        emit_json(data)
    else:
        say(line)


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
    text = safe(" ".join(text.split()))
    if width and len(text) > width:
        text = text[: width - 1] + "…"
    return text


def table(rows: Sequence[dict], columns: Sequence[tuple[str, str, int | None]],
          empty: str = "(none)") -> None:
    """Columns are (key, heading, max width or None)."""
    if not rows:
        say(empty)
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
