"""Raw mails in and out of an mbox file, byte for byte.

An mbox (mboxo, what Python's `mailbox` writes) starts each mail with a "From " line
and quotes body lines that begin with "From " as ">From ". That quoting cannot be undone
by looking (a line may have read ">From " to begin with), and a mail that does not end
in a newline gets one. So each mail's `MboxEntry` records which lines were quoted and
whether the newline was there: with it, `restore` gives back the exact bytes.
Pure functions; the file itself is the caller's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class MboxEntry:
    text: bytes                      # what goes in the mbox, after its "From " line
    from_lines: tuple[int, ...]      # lines (0-based) that were quoted
    ends_with_newline: bool


def for_mbox(raw: bytes) -> MboxEntry:
    lines = raw.split(b"\n")
    quoted = tuple(i for i, line in enumerate(lines) if line.startswith(b"From "))
    for i in quoted:
        lines[i] = b">" + lines[i]
    return MboxEntry(b"\n".join(lines), quoted, raw.endswith(b"\n"))


def restore(text: bytes, from_lines: tuple[int, ...] | list[int],
            ends_with_newline: bool) -> bytes:
    """The original bytes of a mail read back from the mbox."""
    if not ends_with_newline and text.endswith(b"\n"):
        text = text[:-1]
    lines = text.split(b"\n")
    for i in from_lines:
        if 0 <= i < len(lines) and lines[i].startswith(b">From "):
            lines[i] = lines[i][1:]
    return b"\n".join(lines)


def from_line(sender: str, at: dt.datetime | None) -> bytes:
    """The mbox separator: "From SENDER asctime-date" (MAILER-DAEMON when none)."""
    who = "".join(sender.split()) or "MAILER-DAEMON"
    when = (at or dt.datetime(1970, 1, 1, tzinfo=dt.UTC)).astimezone(dt.UTC)
    return f"From {who} {when:%a %b} {when.day:2d} {when:%H:%M:%S %Y}".encode("ascii",
                                                                             "replace")
