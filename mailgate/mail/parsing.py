"""Turn raw mail bytes into a frozen `ParsedMail`, or say clearly why it cannot be done.

`parse_mail(raw, limits)` first checks in one linear pass that the bytes look like a
mail and that the MIME tree is not a bomb (too many parts, too deep), then parses with
the standard library's `email` package (compat32: it keeps what the sender wrote and
never raises on odd input) and walks the tree (`mime.walk`). Everything that comes out
is one-line, control-free text or bytes: subjects and names are safe to put in headers,
attachment names are safe to show and are never used as paths. A mail that cannot be
parsed raises `ParseRejected` with a sentence an admin can read; the raw bytes stay
untouched in the store either way.
Runs in a parse worker process (see edges.parse_pool), so it must not touch the database.
"""

from __future__ import annotations

import datetime as dt
import email
import email.parser
import email.policy
import email.utils
import hashlib
import re
from dataclasses import dataclass

from mailgate.mail.htmltext import html_to_text
from mailgate.mail.large import extract
from mailgate.mail.mime import ParsedAttachment, walk
from mailgate.mail.mimecheck import Limits, ParseRejected, check_mime_shape, looks_like_mail
from mailgate.mail.text import clean_body, clean_text_line, decode_header_value
from routing.addresses import Sender, clean_display_name, parse_address_list, parse_sender

_MSGID = re.compile(r"<([^<>\s]{1,500})>")
MAX_HEADERS_KEPT = 300


@dataclass(frozen=True)
class ParsedMail:
    message_id: str
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    subject: str
    sender: Sender
    to: tuple[str, ...]
    cc: tuple[str, ...]
    reply_to: tuple[str, ...]
    date: dt.datetime | None
    text: str
    html: str
    attachments: tuple[ParsedAttachment, ...]
    headers: tuple[tuple[str, str], ...]
    defects: tuple[str, ...]
    content_type: str
    received_count: int
    dedup_key: str

    def header(self, name: str) -> str:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return ""

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """In-Reply-To first, then References from the newest back; no repeats."""
        seen: dict[str, None] = {}
        for mid in (*self.in_reply_to, *reversed(self.references)):
            seen.setdefault(mid, None)
        return tuple(seen)[:50]


# --- parsing ------------------------------------------------------------------------------


def parse_mail(raw: bytes, limits: Limits | None = None) -> ParsedMail:
    limits = limits or Limits()
    problem = looks_like_mail(raw)
    if problem:
        raise ParseRejected(problem)
    if raw[:1] in (b"\r", b"\n"):
        raw = raw.lstrip(b"\r\n")   # some tools prepend blank lines; the stored bytes stay
    shape = check_mime_shape(raw, limits)
    large = extract(raw, shape.leaves)
    try:
        msg = email.message_from_bytes(large.raw if large else raw,
                                       policy=email.policy.compat32)
        body = walk(msg, large)
    except RecursionError:
        raise ParseRejected("MIME structure nested too deeply to parse") from None
    headers = _headers(msg)
    if not headers:
        raise ParseRejected("the message has no readable headers")
    text_plain = "\n".join(t for t in body.text if t)
    html = "\n".join(t for t in body.html if t)
    text = text_plain if text_plain.strip() else html_to_text(html)
    if (not text.strip() and msg.get_content_maintype() == "multipart"
            and isinstance(msg.get_payload(), str)):
        text = msg.get_payload()  # a multipart whose boundary never appears: keep the body
    return ParsedMail(
        message_id=_first_id(msg.get_all("Message-ID") or []),
        in_reply_to=_ids(msg.get_all("In-Reply-To") or [])[:10],
        references=_ids(msg.get_all("References") or [])[-50:],
        subject=decode_header_value(str(msg.get("Subject") or "")),
        sender=_sender(msg),
        to=tuple(parse_address_list(_strs(msg.get_all("To")))),
        cc=tuple(parse_address_list(_strs(msg.get_all("Cc")))),
        reply_to=tuple(parse_address_list(_strs(msg.get_all("Reply-To")))),
        date=_date(msg.get("Date")),
        text=clean_body(text),
        html=clean_body(html),
        attachments=tuple(body.attachments),
        headers=headers,
        defects=tuple(clean_text_line(d)[:300] for d in dict.fromkeys(body.defects))[:50],
        content_type=msg.get_content_type(),
        received_count=len(msg.get_all("Received") or []),
        dedup_key=content_key(raw),
    )


def _strs(values) -> list[str]:
    return [str(v) for v in values or []]


def _sender(msg) -> Sender:
    return parse_sender(_strs(msg.get_all("From")))


def _headers(msg) -> tuple[tuple[str, str], ...]:
    out = []
    for name, value in list(msg.items())[:MAX_HEADERS_KEPT]:
        out.append((clean_text_line(str(name))[:100], decode_header_value(str(value))[:4000]))
    return tuple(out)


def header_lines(raw: bytes, limit: int = MAX_HEADERS_KEPT) -> list[tuple[str, str]]:
    """The header section of raw mail, decoded for display (no body parsing)."""
    head = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0]
    msg = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(head)
    return [(clean_text_line(str(k))[:100], decode_header_value(str(v))[:4000])
            for k, v in list(msg.items())[:limit]]


def _ids(values) -> tuple[str, ...]:
    found: list[str] = []
    for value in _strs(values):
        found.extend(_MSGID.findall(value))
    return tuple(found)


def _first_id(values) -> str:
    ids = _ids(values)
    return ids[0] if ids else ""


def _date(value) -> dt.datetime | None:
    if not value:
        return None
    try:
        d = email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return d if d.tzinfo else d.replace(tzinfo=dt.UTC)


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
    lines = re.split(rb"\n(?![ \t])", head)
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
_WHITESPACE = frozenset(b" \t\r\n\x0b\x0c")
_PIECE = 1 << 20


def display_name(sender: Sender) -> str:
    return clean_display_name(sender.name)
