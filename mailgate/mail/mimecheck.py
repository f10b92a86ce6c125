"""Before parsing: do these bytes look like a mail, and is the MIME tree no bomb?

`check_mime_shape` reads the tree in one linear pass without building it, so a mail
with 200,000 parts, 2,000 levels of nesting or 100,000 header lines is refused in
milliseconds, long before the real parser would spend seconds or recurse too deep.
It must read the tree exactly as the standard library's parser (email.feedparser)
will, or a bomb walks around it: lines end at CR, LF or CRLF; a header block ends at
the first line that is no header line (not only at a blank line); a boundary is read
by the standard library itself (RFC 2231 continuations and charsets included); a
delimiter line of an enclosing multipart ends every part inside it; the parts of a
multipart/digest are mails; every message/* type holds a mail; and a
message/delivery-status holds one part per blank-line separated block. The parser
enforces the same limits while it parses (parsing.LimitedParser), so a difference
between the two can cost time but never lets a bomb through. Pure functions over bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

# matched at a line's start (a pos argument, so no "^"); the class holds no line end
_HEADER_LINE = re.compile(rb"[!-9;-~]{1,100}:")
_NOT_SPACE = re.compile(rb"[^ \t\n\r\x0b\x0c]")
_LINE_ENDS = re.compile(rb"[\r\n]*")


class ParseRejected(Exception):
    """The bytes cannot become a ParsedMail; the message is the reason shown to admins."""


class ParseCrashed(Exception):
    """Parsing did not finish (worker died, unexpected error): may be retried."""


@dataclass(frozen=True)
class Limits:
    max_parts: int = 1000
    max_depth: int = 50
    max_header_count: int = 1000        # header fields in one header block
    max_header_bytes: int = 102_400     # one header field with its folded lines

    def refused(self, limit: str) -> ParseRejected:
        """Why a mail over `limit` (a field name) is refused, naming the config key."""
        text, key = {
            "max_parts": ("more than {} MIME parts", "max_mime_parts"),
            "max_depth": ("MIME nesting deeper than {} levels", "max_mime_depth"),
            "max_header_count": ("more than {} header fields in one header block",
                                 "max_header_count"),
            "max_header_bytes": ("a header field longer than {} bytes", "max_header_bytes"),
        }[limit]
        return ParseRejected(f"{text.format(getattr(self, limit))} ([processing] {key})")


def looks_like_mail(raw: bytes) -> str | None:
    """None if `raw` starts like an RFC 5322 message, else why it does not."""
    # read in place: strip() and split() would copy a 20 MB mail to look at one line
    if _NOT_SPACE.search(raw) is None:
        return "empty input"
    if raw.startswith(b"\xd0\xcf\x11\xe0"):
        return "an Outlook .msg (OLE) file, not an RFC 5322 message"
    start = _LINE_ENDS.match(raw).end()
    if raw.startswith(b"From ", start):   # mbox separator line: the next line counts
        eol = raw.find(b"\n", start)
        start = eol + 1 if eol >= 0 else len(raw)
    if not _HEADER_LINE.match(raw, start):
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
    parts: int               # Message objects the parser will build, the mail included
    depth: int               # containers around the most deeply nested one
    leaves: tuple[Leaf, ...]
    header_fields: int = 0   # the most fields in one header block
    header_bytes: int = 0    # the longest header field


def check_mime_shape(raw: bytes, limits: Limits) -> Shape:
    """The MIME tree's shape, found in one pass without building it, as the parser will
    build it. Raises ParseRejected naming the limit as soon as one is passed."""
    return _Scan(raw, limits).run()


def header_block_sizes(lines: list[str]) -> tuple[int, int]:
    """(fields, longest field) of a header block given as its lines with their line
    ends, as both this scan and the parser's own check count: a field is a line that
    does not start with a space or tab, with the folded lines after it. An mbox "From "
    line is no field (the parser may move it to the next block; only its folded lines
    count toward a size), and folded lines with nothing to fold onto count only as a
    size."""
    fields, longest, size = 0, 0, 0
    for line in lines:
        if line[:1] in (" ", "\t"):
            size += len(line)
        elif line.startswith("From "):
            size = 0
        else:
            fields, size = fields + 1, len(line)
        longest = max(longest, size)
    return fields, longest


# --- the scan -------------------------------------------------------------------------

_EOL = re.compile(rb"\r\n|\r|\n")
# a header line as the parser's headerRE reads it; a field with its folded lines
_HEADER_START = re.compile(rb"From |[\x21-\x39\x3b-\x7e]*:|[ \t]")
_FIELD = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n|\Z)(?:[ \t][^\r\n]*(?:\r\n|\r|\n|\Z))*")
_BLANK_LINE = rb"(?:(?<=\n)|(?<=\r)(?!\n))(?:\r\n|\r|\n)"


@dataclass
class _Frame:
    kind: str                  # "multipart", "report" (delivery-status) or "message"
    token: bytes | None = None  # a multipart's delimiter without "--"; None: never matches
    digest: bool = False       # multipart/digest: its parts are mails by default


class _Scan:
    """The parser's state machine replayed over the bytes. `frames` are the open
    containers (a multipart reading its parts, a delivery-status report reading blocks,
    a message/* holding a mail); a line an open frame claims ends all inside it."""

    def __init__(self, raw: bytes, limits: Limits) -> None:
        self.raw, self.limits = raw, limits
        self.frames: list[_Frame] = []
        self.tokens: dict[bytes, list[int]] = {}   # open delimiter -> frame levels
        self.reports: list[int] = []               # levels of delivery-status frames
        self.pattern: re.Pattern | None = None
        self.parts = self.depth = self.fields = self.field_bytes = 0
        self.leaves: list[Leaf] = []
        self.leaf: tuple[int, int, int] | None = None

    def run(self) -> Shape:
        raw, pos, start = self.raw, 0, True
        while True:
            if start:
                pos, child = self._part(pos)
                if child:
                    continue                       # the mail or report block inside it
            claim = self._next_claim(pos)
            if claim is None:
                self._end_leaf(len(raw), 0)
                break
            at, after, level, closing = claim
            frame = self.frames[level]
            self._end_leaf(at, _eol_before(raw, at) if frame.kind == "multipart" else 0)
            self._close(level + 1)
            if frame.kind == "report":             # a blank line ended a block
                pos = after
                nxt = self._claim_at(pos) if pos < len(raw) else None
                start = pos < len(raw) and (nxt is None or nxt[2] >= level)
            elif closing:                          # the epilogue follows, to the end
                self._forget(level)
                frame.token, pos, start = None, after, False
            else:                                  # repeated delimiters make no parts
                pos = after
                while raw.startswith(b"--", pos) and (nxt := self._claim_at(pos)) \
                        and nxt[2] == level:
                    pos = nxt[1]
                start = True
        return Shape(self.parts, self.depth, tuple(self.leaves), self.fields,
                     self.field_bytes)

    # one part: count it, read its header block, open what it opens

    def _part(self, pos: int) -> tuple[int, bool]:
        """Returns where the body starts and whether a part starts there at once."""
        limits = self.limits
        self.parts += 1
        if self.parts > limits.max_parts:
            raise limits.refused("max_parts")
        self.depth = max(self.depth, len(self.frames))
        if len(self.frames) > limits.max_depth:
            raise limits.refused("max_depth")
        body, head_end, value = self._headers(pos)
        parent = self.frames[-1] if self.frames else None
        kind, boundary = _content_type(value, "message/rfc822" if parent is not None
                                       and parent.digest else "text/plain")
        if kind == "message/delivery-status":
            self._open(_Frame("report"))
            return body, True
        if kind.startswith("message/"):
            self._open(_Frame("message"))
            return body, True
        if kind.startswith("multipart/"):
            token = _token(boundary)
            if token is not None:                  # else its body is one text, to the end
                self._open(_Frame("multipart", token, kind == "multipart/digest"))
            return body, False
        self.leaf = (pos, head_end, body)
        return body, False

    def _headers(self, pos: int) -> tuple[int, int, str | None]:
        """Read a header block as the parser does: (where the body starts, where the last
        header line ends, the first Content-Type value)."""
        raw, limits = self.raw, self.limits
        fields, value, head_end = 0, None, pos
        while pos < len(raw):
            first = raw[pos]
            if (first == 45 or (first in (10, 13) and self.reports)) \
                    and self._claim_at(pos) is not None:
                break                              # an enclosing part ends here
            if first in (10, 13):
                return _EOL.match(raw, pos).end(), head_end, value   # the blank line
            if _HEADER_START.match(raw, pos) is None:
                break                              # no header line: the body starts
            end = _FIELD.match(raw, pos).end()
            size = end - pos                       # counted as header_block_sizes counts
            if raw.startswith(b"From ", pos):
                eol = _EOL.search(raw, pos, end)
                size = end - (eol.end() if eol else end)
            elif raw[pos] not in (9, 32):
                fields += 1
            self.fields = max(self.fields, fields)
            self.field_bytes = max(self.field_bytes, size)
            if fields > limits.max_header_count:
                raise limits.refused("max_header_count")
            if size > limits.max_header_bytes:
                raise limits.refused("max_header_bytes")
            colon = raw.find(b":", pos, end)
            if value is None and colon > pos and raw[pos:colon].lower() == b"content-type":
                value = raw[colon + 1:end].decode("ascii", "surrogateescape")
                value = value.lstrip(" \t").rstrip("\r\n")   # as compat32 keeps it
            head_end = end - _eol_before(raw, end)
            pos = end
        return pos, head_end, value

    # frames, and the lines that end them

    def _open(self, frame: _Frame) -> None:
        level = len(self.frames)
        self.frames.append(frame)
        if frame.kind == "report":
            self.reports.append(level)
        elif frame.token is not None:
            self.tokens.setdefault(frame.token, []).append(level)
        self.pattern = None

    def _forget(self, level: int) -> None:
        frame = self.frames[level]
        if frame.kind == "report":
            self.reports.remove(level)
        elif frame.token is not None:
            levels = self.tokens[frame.token]
            levels.remove(level)
            if not levels:
                del self.tokens[frame.token]
        self.pattern = None

    def _close(self, level: int) -> None:
        """End every frame from `level` inwards: a line of an enclosing one came."""
        for gone in range(len(self.frames) - 1, level - 1, -1):
            self._forget(gone)
            del self.frames[gone]

    def _claim_at(self, pos: int) -> tuple[int, int, int, bool] | None:
        """(line start, next line start, level of the frame the line ends, whether it is a
        closing delimiter), or None. The outermost frame wins: the parser checks a line
        against the delimiters of every enclosing part before its own (RFC 2046 5.1.2),
        and a blank line ends a delivery-status block wherever it stands."""
        raw = self.raw
        eol = _EOL.search(raw, pos)
        end, after = (eol.start(), eol.end()) if eol else (len(raw), len(raw))
        line = bytes(raw[pos:end]).rstrip(b" \t")   # a bytearray mail: a hashable line
        best = (self.reports[0], False) if end == pos and eol and self.reports else None
        if line[:2] == b"--":
            levels = self.tokens.get(line[2:])
            if levels and (best is None or levels[0] < best[0]):
                best = (levels[0], False)
            if len(line) >= 4 and line[-2:] == b"--":
                levels = self.tokens.get(line[2:-2])
                if levels and (best is None or levels[0] < best[0]):
                    best = (levels[0], True)
        return None if best is None else (pos, after, *best)

    def _next_claim(self, pos: int) -> tuple[int, int, int, bool] | None:
        if self.pattern is None:
            self.pattern = _claims(frozenset(self.tokens), bool(self.reports))
        if self.pattern is None:
            return None
        for m in self.pattern.finditer(self.raw, pos):
            claim = self._claim_at(m.start())
            if claim is not None:
                return claim
        return None

    def _end_leaf(self, at: int, eol: int) -> None:
        """A leaf's body ends where the line that ended it starts; the line end before a
        delimiter belongs to the delimiter (RFC 2046 5.1.1)."""
        if self.leaf is not None:
            head_start, head_end, body = self.leaf
            self.leaves.append(Leaf(head_start, head_end, body, max(body, at - eol)))
            self.leaf = None


def _eol_before(raw: bytes, at: int) -> int:
    if raw[at - 2:at] == b"\r\n":
        return 2
    return 1 if at and raw[at - 1] in (10, 13) else 0


# Every line that starts with "--" is looked at (_claim_at compares the token): one
# pattern compiled once, instead of a new alternation of each mail's boundaries, which cost
# more to compile than the whole scan of an ordinary mail.
_DASH_LINE = rb"(?<=[\r\n])--"
_PATTERNS = {(True, False): re.compile(_DASH_LINE),
             (True, True): re.compile(_DASH_LINE + b"|" + _BLANK_LINE),
             (False, True): re.compile(_BLANK_LINE), (False, False): None}


def _claims(tokens: frozenset[bytes], blank: bool) -> re.Pattern | None:
    """A regex that finds every line that may end a frame (a superset: _claim_at
    decides), so a body is skipped at the speed of the regex engine."""
    return _PATTERNS[(bool(tokens), blank)]


def _content_type(value: str | None, default: str) -> tuple[str, str | None]:
    """(Message.get_content_type(), a multipart's get_boundary()) for this Content-Type
    value; the standard library itself decides whenever the type may open a level."""
    if value is None:
        return default, None
    quick = value.partition(";")[0].strip().lower()
    if not quick.startswith(("multipart/", "message/")):
        return (quick if quick.count("/") == 1 else "text/plain"), None
    head = Message()
    head.set_raw("Content-Type", value)
    kind = head.get_content_type()
    return kind, head.get_boundary() if kind.startswith("multipart/") else None


def _token(boundary: str | None) -> bytes | None:
    """The bytes a delimiter line holds after "--", or None when no line can match: the
    parser compares text decoded as ASCII with surrogate escapes, so a boundary with a
    real non-ASCII character (from RFC 2231) or a line break never matches."""
    if boundary is None:
        return None
    try:
        token = boundary.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        return None
    return None if b"\r" in token or b"\n" in token else token
