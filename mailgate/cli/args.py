"""Argument types and flags shared by the verbs: ids, ticket numbers, days.

Row ids are 32-bit integers on PostgreSQL (and SQLite refuses anything past 64 bits), so
an id outside that range can name no row: it is a usage error here, before it can turn
into a database error.
"""

from __future__ import annotations

import argparse
import datetime as dt

from mailgate.cli import EX_USAGE, CliError

MAX_ID = 2**31 - 1


def _positive(text: str, what: str) -> int:
    value = text.strip()
    if not value.isascii() or not value.isdigit() or not 0 < int(value) <= MAX_ID:
        raise argparse.ArgumentTypeError(f"not {what}: {text[:40]!r} "
                                         f"(expected a number from 1 to {MAX_ID})")
    return int(value)


def row_id(text: str) -> int:
    """The id of a queued mail (`unassigned`, `quarantine`, `outbox`)."""
    return _positive(text, "an id")


def ticket_number(text: str) -> int:
    """A ticket number, with or without its '#'."""
    return _positive(text.strip().removeprefix("#"), "a ticket number")


def day(text: str) -> dt.date:
    """A day as YYYY-MM-DD."""
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a date: {text[:40]!r} (expected YYYY-MM-DD)") from None


def day_range(since: dt.date | None, until: dt.date | None,
              ) -> tuple[dt.datetime | None, dt.datetime | None]:
    """[start of `since`, end of `until`) in UTC: both days count whole."""
    start = dt.datetime.combine(since, dt.time(), dt.UTC) if since else None
    end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), dt.UTC) if until else None
    if start and end and end <= start:
        raise CliError("--until is before --since", EX_USAGE)
    return start, end


def add_done_flags(p) -> None:
    """`--done` / `--undone`: only messages ticked off, or not yet (`args.done`)."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--done", dest="done", action="store_const", const=True, default=None,
                   help="only messages ticked off as done")
    g.add_argument("--undone", dest="done", action="store_const", const=False,
                   help="only messages not yet done")
