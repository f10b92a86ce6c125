"""Before parsing: do these bytes look like a mail, and is the MIME tree no bomb?

Both checks are one linear pass over the bytes without building anything, so a mail
with 200,000 parts or 2,000 levels of nesting is refused in milliseconds, long before
the real parser would spend seconds or recurse too deep. Pure functions over bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEADER_LINE = re.compile(rb"^[!-9;-~]{1,100}:")


class ParseRejected(Exception):
    """The bytes cannot become a ParsedMail; the message is the reason shown to admins."""


class ParseCrashed(Exception):
    """Parsing did not finish (timeout, worker died, unexpected error): may be retried."""


@dataclass(frozen=True)
class Limits:
    max_parts: int = 1000
    max_depth: int = 50


def looks_like_mail(raw: bytes) -> str | None:
    """None if `raw` starts like an RFC 5322 message, else why it does not."""
    if not raw.strip():
        return "empty input"
    if raw.startswith(b"\xd0\xcf\x11\xe0"):
        return "an Outlook .msg (OLE) file, not an RFC 5322 message"
    first = raw.lstrip(b"\r\n").split(b"\n", 1)[0]
    if first.startswith(b"From "):   # mbox separator line
        rest = raw.lstrip(b"\r\n").split(b"\n", 1)
        first = rest[1].split(b"\n", 1)[0] if len(rest) > 1 else b""
    if not _HEADER_LINE.match(first):
        return "no header section: the input does not start with a 'Name: value' header"
    return None


def check_mime_shape(raw: bytes, limits: Limits) -> tuple[int, int]:
    """(parts, depth) of the MIME tree, found in one pass without building it.

    Raises ParseRejected when a limit is passed, long before the real parser would
    spend seconds (40,000 parts) or recurse too deep (2,000 levels).
    """
    stack: list[bytes | None] = []   # open boundaries; None marks a message/rfc822 level
    index: dict[bytes, int] = {}
    parts, depth, in_headers = 1, 0, True
    header: list[bytes] = []
    for line in raw.split(b"\n"):
        if in_headers:
            if line.strip(b"\r"):
                header.append(line)
                continue
            in_headers = False
            kind, boundary = _content_type(b"".join(header))
            header = []
            if kind == b"multipart" and boundary:
                stack.append(boundary)
                index[boundary] = len(stack) - 1
            elif kind == b"message/rfc822":
                stack.append(None)
                in_headers = True
            depth = max(depth, len(stack))
            if depth > limits.max_depth:
                raise ParseRejected(f"MIME nesting deeper than {limits.max_depth} levels")
            continue
        if not line.startswith(b"--") or not index:
            continue
        token = line[2:].rstrip(b"\r \t")
        closing = token.endswith(b"--") and token[:-2] in index
        name = token[:-2] if closing else token
        level = index.get(name)
        if level is None:
            continue
        for gone in stack[level + (0 if closing else 1):]:
            if gone is not None:
                index.pop(gone, None)
        del stack[level + (0 if closing else 1):]
        if not closing:
            parts += 1
            if parts > limits.max_parts:
                raise ParseRejected(f"more than {limits.max_parts} MIME parts")
            in_headers = True
    return parts, depth


_CT_RE = re.compile(rb"(?im)^content-type:[ \t]*([^;\s]+)(.*)$")
_BOUNDARY_RE = re.compile(rb'(?i)boundary[ \t]*=[ \t]*(?:"([^"]{1,200})"|([^;\s"]{1,200}))')


def _content_type(block: bytes) -> tuple[bytes, bytes | None]:
    unfolded = re.sub(rb"\r?\n(?=[ \t])", b"", block.replace(b"\r", b"\n") + b"\n")
    m = _CT_RE.search(unfolded)
    if not m:
        return b"", None
    kind = m.group(1).lower()
    if kind.startswith(b"multipart/"):
        b = _BOUNDARY_RE.search(m.group(2))
        return b"multipart", (b.group(1) or b.group(2)).rstrip(b" \t") if b else None
    return kind, None


