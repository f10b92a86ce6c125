"""Repairs to a mail's top header block before the parser sees it. Pure.

A header line that lost its folding indent ("Subject: a long\\nsubject") has no colon,
so the standard library's parser ends the header block there and From, To and Subject
below it land in the body. Mature parsers join such a line to the header before it when
the lines that follow are still clearly headers; so do we, and say so in a defect. The
stored raw bytes are never changed: this is the parser's copy.
"""

from __future__ import annotations

import re

_FIELD = re.compile(rb"^[!-9;-~]+[ \t]*:")
_BLANK = re.compile(rb"\r?\n\r?\n")
MAX_SCAN = 1 << 20


def repair_folding(raw: bytes) -> tuple[bytes, str]:
    """(raw with broken continuation lines indented, defect or "")."""
    sep = _BLANK.search(raw, 0, MAX_SCAN)
    if sep is None:
        return raw, ""
    head = raw[:sep.start()]
    lines = head.split(b"\n")
    kinds = [_kind(line, n) for n, line in enumerate(lines)]
    if "bad" not in kinds:
        return raw, ""
    fixed = 0
    value = b""                            # the header the lines so far belong to
    for n, kind in enumerate(kinds):
        if kind in ("field", "mbox"):
            value = lines[n]
            continue
        if kind == "cont" or n == 0:
            value += lines[n]
            continue
        later = next((k for k in kinds[n + 1:] if k not in ("bad", "cont")), None)
        # folded when headers go on below, or when the header before is plainly unfinished
        # ("Cc: D <d@" + "example.com>"); otherwise the body starts here, as the parser reads
        if later == "field" or _unfinished(value):
            lines[n] = b" " + lines[n]
            kinds[n] = "cont"
            value += lines[n]
            fixed += 1
        else:
            break
    if not fixed:
        return raw, ""
    return (b"\n".join(lines) + raw[sep.start():],
            f"{fixed} header line(s) without a colon joined to the header before (broken "
            "folding)")


def _unfinished(value: bytes) -> bool:
    value = value.rstrip()
    return (value.count(b"<") > value.count(b">") or value.count(b"(") > value.count(b")")
            or value.count(b'"') % 2 == 1 or value.endswith((b",", b"@", b"=", b";")))


def _kind(line: bytes, n: int) -> str:
    if line[:1] in (b" ", b"\t"):
        return "cont"
    if n == 0 and line.startswith(b"From "):
        return "mbox"
    return "field" if _FIELD.match(line) else "bad"
