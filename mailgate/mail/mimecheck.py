"""Before parsing: do these bytes look like a mail, and is the MIME tree no bomb?

Both checks are one linear pass over the bytes without building anything, so a mail
with 200,000 parts or 2,000 levels of nesting is refused in milliseconds, long before
the real parser would spend seconds or recurse too deep. Pure functions over bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

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


@dataclass(frozen=True)
class Leaf:
    """Where one part that contains no other part lies in the raw bytes."""

    head_start: int
    head_end: int            # where its last header line ends
    body_start: int
    body_end: int            # before the line end that precedes the next delimiter


@dataclass(frozen=True)
class Shape:
    parts: int
    depth: int
    leaves: tuple[Leaf, ...]


def check_mime_shape(raw: bytes, limits: Limits) -> Shape:
    """The MIME tree's shape (parts, depth, where its leaves lie), found in one pass
    without building it.

    Raises ParseRejected when a limit is passed, long before the real parser would
    spend seconds (40,000 parts) or recurse too deep (2,000 levels). It reads the tree
    the way the parser will: lines end at CR, LF or CRLF, and each part's header block
    is read by the standard library's own header parser, so a boundary split into
    RFC 2231 continuations (`boundary*0=…; boundary*1=…`) counts as that boundary.
    Only the lines that start with "--" and the header blocks are looked at.
    """
    stack: list[bytes | None] = []   # open boundaries; None marks a message/rfc822 level
    index: dict[bytes, int] = {}
    parts, depth, leaves = 1, 0, []
    pos, leaf = _headers(raw, 0, stack, index, limits)
    depth = len(stack)
    while index:
        at = _dashes(raw, pos)
        if at < 0:
            break
        before = 2 if raw[at - 2:at] == b"\r\n" else 1
        eol = _EOL.search(raw, at + 2)
        line_end = eol.start() if eol else len(raw)
        pos = eol.end() if eol else len(raw)
        token = raw[at + 2:line_end].rstrip(b" \t")
        closing = token.endswith(b"--") and token[:-2] in index
        name = token[:-2] if closing else token
        level = index.get(name)
        if level is None:
            continue
        if leaf is not None:
            leaves.append(Leaf(leaf[0], leaf[1], leaf[2], max(leaf[2], at - before)))
            leaf = None
        for gone in stack[level + (0 if closing else 1):]:
            if gone is not None:
                index.pop(gone, None)
        del stack[level + (0 if closing else 1):]
        if closing:
            continue
        parts += 1
        if parts > limits.max_parts:
            raise ParseRejected(f"more than {limits.max_parts} MIME parts")
        pos, leaf = _headers(raw, pos, stack, index, limits)
        depth = max(depth, len(stack))
    return Shape(parts, depth, tuple(leaves))


def _dashes(raw: bytes, pos: int) -> int:
    """Where the next line that starts with "--" starts, or -1 (a plain find: fast)."""
    while True:
        at = raw.find(b"--", pos)
        if at <= 0 or raw[at - 1] in (10, 13):
            return at
        pos = at + 1


_EOL = re.compile(rb"\r\n|\r|\n")
_BLANK = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r(?!\n)|\n)")
MAX_HEADER_BLOCK = 256 * 1024
# a header block that may open a level (a superset test: the parser decides)
_OPENS = re.compile(rb"(?i)content-type\s*:\s*(?:multipart|message)")


def _headers(raw: bytes, start: int, stack: list, index: dict, limits: Limits,
             ) -> tuple[int, tuple[int, int, int] | None]:
    """Read the header block at `start` (and those of attached mails inside it); open
    what it opens. Returns where the body starts, and (header start, header end, body
    start) when the part is a leaf."""
    while True:
        if raw[start:start + 1] in (b"\r", b"\n"):          # no headers at all
            eol = _EOL.match(raw, start)
            end, body = start, eol.end()
        else:
            m = _BLANK.search(raw, start, start + MAX_HEADER_BLOCK)
            end, body = (m.start(), m.end()) if m else (len(raw), len(raw))
        if not _OPENS.search(raw, start, end):
            return body, (start, end, body)   # a leaf: nothing to open, no need to parse
        head = _content_type(raw[start:end])
        kind = head.get_content_type()
        if kind.startswith("multipart/"):
            boundary = head.get_boundary()
            if boundary:
                token = boundary.encode("utf-8", "surrogateescape").rstrip(b" \t")
                stack.append(token)
                index[token] = len(stack) - 1
        elif kind == "message/rfc822":
            stack.append(None)
        if len(stack) > limits.max_depth:
            raise ParseRejected(f"MIME nesting deeper than {limits.max_depth} levels")
        if kind != "message/rfc822":
            return body, None
        start = body


_CONTENT_TYPE = re.compile(rb"(?im)^content-type[ \t]*:(.*(?:(?:\r\n|\r|\n)[ \t].*)*)")
_FOLD = re.compile(rb"(?:\r\n|\r|\n)(?=[ \t])")


def _content_type(block: bytes) -> Message:
    """The block's first Content-Type, read by the standard library as the parser will
    read it (RFC 2231 parameters included)."""
    head = Message()
    m = _CONTENT_TYPE.search(block.replace(b"\r\n", b"\n").replace(b"\r", b"\n"))
    if m:
        head["Content-Type"] = _FOLD.sub(b"", m.group(1)).decode("ascii", "surrogateescape")
    return head
