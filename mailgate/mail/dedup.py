"""The key that tells one mail from another: the same for one mail fetched by SMTP and
by IMAP (the trace headers added on the way are left out), different for any two mails
that differ in an author's header or the body. Pure; never copies a large mail whole.
"""

from __future__ import annotations

import hashlib
import re

_TRACE = re.compile(rb"(?im)^(received|return-path|delivered-to|x-original-to|"
                    rb"x-received|authentication-results|arc-[a-z-]+|x-spam-[a-z-]+|"
                    rb"dkim-signature|x-google-smtp-source|x-gm-[a-z-]+):")


def content_key(raw: bytes) -> str:
    """A hash that is the same for one mail fetched by SMTP and by IMAP.

    Trace headers added along the way are left out; the body and the author's
    headers are kept, so two different mails never share a key. Line ends count as LF.
    The body is hashed a piece at a time: a large mail is never copied whole.
    """
    sep = _SEPARATOR.search(raw)
    cut = sep.start() if sep else len(raw)
    head = raw[:cut - (1 if raw[cut - 1:cut] == b"\r" else 0)].replace(b"\r\n", b"\n")
    lines = _UNFOLDED_LINE.split(head)
    if lines and lines[0].startswith(b"From "):
        lines = lines[1:]
    kept = sorted(line.strip() for line in lines if line.strip() and not _TRACE.match(line))
    h = hashlib.sha256()
    for line in kept:
        h.update(line + b"\n")
    h.update(b"\n")
    start, end = (sep.end() if sep else len(raw)), len(raw)
    while end > start and raw[end - 1] in _WHITESPACE:
        end -= 1
    view = memoryview(raw)
    while start < end:
        stop = min(start + _PIECE, end)
        if stop < end and raw[stop - 1] == 13:      # never split a CRLF
            stop += 1
        h.update(bytes(view[start:stop]).replace(b"\r\n", b"\n"))
        start = stop
    return h.hexdigest()


_SEPARATOR = re.compile(rb"\n(?:\r\n|\n)")
_UNFOLDED_LINE = re.compile(rb"\n(?![ \t])")
_WHITESPACE = frozenset(b" \t\r\n\x0b\x0c")
_PIECE = 1 << 20
