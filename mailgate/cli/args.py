"""Argument types shared by the verbs: ids and ticket numbers.

Row ids are 32-bit integers on PostgreSQL (and SQLite refuses anything past 64 bits), so
an id outside that range can name no row: it is a usage error here, before it can turn
into a database error.
"""

from __future__ import annotations

import argparse

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
