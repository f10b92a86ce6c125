"""Turn raw mail bytes into a frozen `ParsedMail`, or say clearly why it cannot be done.

`parse_mail(raw, limits)` first checks in one linear pass that the bytes look like a
mail and that the MIME tree is not a bomb (too many parts, too deep, too many or too
long header fields), repairs broken header folding (`headblock`), then parses with the
standard library's `email` package (compat32: it keeps what the sender wrote and never
raises on odd input), enforcing the same limits while it parses, and walks the tree
(`mime.walk`). Mail is read the way careful parsers read it: charsets by what the bytes
are (`charsets`), the sender from a broken From or its stand-ins (`senders`), the HTML
part when the plain one is a stub; every such recovery is a defect on the result.
Everything that comes out is one-line, control-free text or bytes: subjects and names
are safe to put in headers, attachment names are safe to show and are never used as
paths. A mail that cannot be
parsed raises `ParseRejected` with a sentence an admin can read; the raw bytes stay
untouched in the store either way.
Runs in a parse worker process (see edges.parse_pool), so it must not touch the database.
"""

from __future__ import annotations

import datetime as dt
import email
import email.feedparser
import email.parser
import email.policy
import email.utils
import re
from dataclasses import dataclass, replace
from email.message import Message

from mailgate.mail.charsets import decode_header_bytes
from mailgate.mail.dedup import content_key
from mailgate.mail.headblock import repair_folding
from mailgate.mail.htmltext import choose_body
from mailgate.mail.large import extract
from mailgate.mail.mime import ParsedAttachment, first_value, header_values, walk
from mailgate.mail.mimecheck import (
    Limits,
    ParseRejected,
    check_mime_shape,
    header_block_sizes,
    looks_like_mail,
)
from mailgate.mail.rfc822 import attached_mails
from mailgate.mail.senders import envelope_stand_in, read_sender, tidy_addresses
from mailgate.mail.text import clean_body, clean_text_line, decode_header_value, has_8bit
from routing.addresses import Sender, parse_address_list

_MSGID = re.compile(r"<([^<>\s]{1,500})>")
MAX_HEADERS_KEPT = 300
_RFC822 = re.compile(rb"(?i)message/rfc822")
_PIECE = 1 << 20                     # text fed to the parser a piece at a time


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
    original = raw
    if raw[:1] in (b"\r", b"\n"):
        raw = raw.lstrip(b"\r\n")   # some tools prepend blank lines; the stored bytes stay
    raw, folding = repair_folding(raw)
    shape = check_mime_shape(raw, limits)
    large = extract(raw, shape.leaves)
    try:
        msg = parse_limited(large.raw if large else raw, limits,
                            ignore=large.header if large else "")
        body = walk(msg, large, attached_mails(msg, raw) if _RFC822.search(raw) else None)
    except RecursionError:
        raise ParseRejected("MIME structure nested too deeply to parse") from None
    hint = body.hint
    headers = _headers(msg, hint)
    if not headers:
        raise ParseRejected("the message has no readable headers")
    defects = [folding] if folding else []
    defects += _header_charset_defects(msg, hint)
    text_plain = "\n".join(t for t in body.text if t)
    html = "\n".join(t for t in body.html if t)
    images = {a.content_id: a.filename for a in body.attachments if a.content_id}
    text, choice = choose_body(text_plain, html, images)
    if choice:
        defects.append(choice)
    if (not text.strip() and msg.get_content_maintype() == "multipart"
            and isinstance(msg.get_payload(), str)):
        text = msg.get_payload()  # a multipart whose boundary never appears: keep the body
    sender, sender_defects = read_sender(
        header_values(msg, "From", hint), sender=header_values(msg, "Sender", hint),
        reply_to=header_values(msg, "Reply-To", hint), return_path=_return_path_of(msg))
    defects += sender_defects + body.defects
    return ParsedMail(
        message_id=_first_id(header_values(msg, "Message-ID")),
        in_reply_to=_ids(header_values(msg, "In-Reply-To"))[:10],
        references=_ids(header_values(msg, "References"))[-50:],
        subject=decode_header_value(first_value(msg, "Subject", hint)),
        sender=sender,
        to=_addresses(msg, "To", hint),
        cc=_addresses(msg, "Cc", hint),
        reply_to=_addresses(msg, "Reply-To", hint),
        date=_date(first_value(msg, "Date")),
        text=clean_body(text),
        html=clean_body(html),
        attachments=tuple(body.attachments),
        headers=headers,
        defects=tuple(clean_text_line(d)[:300] for d in dict.fromkeys(defects))[:50],
        content_type=msg.get_content_type(),
        received_count=len(msg.get_all("Received") or []),
        dedup_key=content_key(original),
    )


def with_envelope(mail: ParsedMail, mail_from: str | None) -> ParsedMail:
    """`mail` with the envelope sender standing in for a sender it does not name (see
    `senders.envelope_stand_in`); the parser sees only the bytes, the edge the envelope."""
    found = envelope_stand_in(mail.sender, mail.defects, mail_from)
    return mail if found is None else replace(mail, sender=found[0], defects=found[1])


def _header_charset_defects(msg: Message, hint: str) -> list[str]:
    for name, value in msg.raw_items():
        if has_8bit(str(value)):
            _, used = decode_header_bytes(str(value).encode("utf-8", "surrogateescape"),
                                          hint)
            if used != "utf-8":
                return [f"raw 8-bit bytes in header {clean_text_line(str(name))[:40]} "
                        f"read as {used}"]
    return []


def _addresses(msg: Message, name: str, hint: str) -> tuple[str, ...]:
    return tuple(parse_address_list(tidy_addresses(header_values(msg, name, hint))))


def _return_path_of(msg: Message) -> str | None:
    values = header_values(msg, "Return-Path")
    if not values:
        return None
    m = _ANGLE.search(values[0])
    return m.group(1).strip() if m else values[0].strip()


class LimitedParser(email.feedparser.FeedParser):
    """The standard library's parser (compat32) that enforces the MIME limits as it
    builds the tree, counting as `check_mime_shape` counts: if the pre-check ever reads
    a tree differently, the parse still stops at the limit instead of running on.

    It hooks the two places every part and every header block pass through
    (`_new_message`, `_parse_headers`): internal names, stable since Python 3.3, and
    the only way to count exactly what the parser builds.
    """

    def __init__(self, limits: Limits, ignore: str = "") -> None:
        super().__init__(policy=email.policy.compat32)
        self.limits = limits
        self.ignore = ignore.lower()     # a header we added ourselves (mail.large)
        self.parts = 0

    def _new_message(self) -> None:
        self.parts += 1
        if self.parts > self.limits.max_parts:
            raise self.limits.refused("max_parts")
        if len(self._msgstack) > self.limits.max_depth:
            raise self.limits.refused("max_depth")
        super()._new_message()

    def _parse_headers(self, lines: list[str]) -> None:
        mine = [line for line in lines if not line.lower().startswith(self.ignore)] \
            if self.ignore else lines
        fields, longest = header_block_sizes(mine)
        if fields > self.limits.max_header_count:
            raise self.limits.refused("max_header_count")
        if longest > self.limits.max_header_bytes:
            raise self.limits.refused("max_header_bytes")
        super()._parse_headers(lines)


def parse_limited(raw: bytes, limits: Limits, *, ignore: str = "") -> Message:
    """`email.message_from_bytes(raw, policy=compat32)`, with the limits enforced."""
    parser = LimitedParser(limits, ignore)
    text = raw.decode("ascii", "surrogateescape")    # what BytesParser does
    for start in range(0, len(text), _PIECE):
        parser.feed(text[start:start + _PIECE])
    return parser.close()


def _headers(msg: Message, hint: str = "",
             limit: int = MAX_HEADERS_KEPT) -> tuple[tuple[str, str], ...]:
    return tuple((clean_text_line(str(name))[:100], decode_header_value(str(value), hint)[:4000])
                 for name, value in list(msg.raw_items())[:limit])


def header_lines(raw: bytes, limit: int = MAX_HEADERS_KEPT) -> list[tuple[str, str]]:
    """The header section of raw mail, decoded for display (no body parsing). Only the
    first megabyte is read: a quarantined header bomb is shown in a moment."""
    head = re.split(rb"\r?\n\r?\n", raw[:1 << 20], maxsplit=1)[0]
    msg = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(head)
    return list(_headers(msg, limit=limit))


def return_path(raw: bytes) -> str | None:
    """The envelope sender an MTA wrote into the mail: the topmost Return-Path (the last
    one added), angle brackets stripped, "" for `<>` (the null sender of a bounce), or
    None when there is none."""
    head = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(
        raw[:1 << 20])
    values = header_values(head, "Return-Path")
    if not values:
        return None
    m = _ANGLE.search(values[0])
    bare = values[0].split()                          # no brackets: the first word
    return (m.group(1).strip() if m else bare[0] if bare else "")[:512]


_ANGLE = re.compile(r"<([^<>]*)>")


def _ids(values: list[str]) -> tuple[str, ...]:
    found: list[str] = []
    for value in values:
        found.extend(_MSGID.findall(value))
    return tuple(found)


def _first_id(values: list[str]) -> str:
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
