"""Turn raw mail bytes into a frozen `ParsedMail`, or say clearly why it cannot be done.

`parse_mail(raw, limits)` first checks in one linear pass that the bytes look like a
mail and that the MIME tree is not a bomb (too many parts, too deep), then parses with
mail-parser. Everything that comes out is one-line, control-free text or bytes:
subjects and names are safe to put in headers, attachment names are safe to show and
are never used as paths. A mail that cannot be parsed raises `ParseRejected` with a
sentence an admin can read; the raw bytes stay untouched in the store either way.
Runs in a worker process (see parse_pool), so it must not touch the database.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.header
import email.parser
import email.policy
import email.utils
import hashlib
import logging
import re
import unicodedata
from dataclasses import dataclass

import mailparser

from mailgate.mail.htmltext import html_to_text
from mailgate.mail.mimecheck import Limits, ParseRejected, check_mime_shape, looks_like_mail
from routing.addresses import Sender, clean_display_name, parse_address_list, parse_sender

# mail-parser logs every odd MIME part at WARNING; the defects are recorded on the message.
logging.getLogger("mailparser").setLevel(logging.ERROR)

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_BIDI = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_MSGID = re.compile(r"<([^<>\s]{1,500})>")
MAX_HEADERS_KEPT = 300


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str
    content_type: str
    size: int
    sha256: str
    content_id: str
    data: bytes


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
    raw = raw.lstrip(b"\r\n")   # some clients and tools prepend blank lines; bytes stay stored
    check_mime_shape(raw, limits)
    try:
        parsed = mailparser.parse_from_bytes(raw)
    except RecursionError:
        raise ParseRejected("MIME structure nested too deeply to parse") from None
    except mailparser.exceptions.MailParserError as exc:
        raise ParseRejected(f"mail-parser refused the message: {exc}") from None
    msg = parsed.message
    headers = _headers(msg)
    if not headers:
        raise ParseRejected("the message has no readable headers")
    text_plain = "\n".join(t for t in parsed.text_plain if t)
    html = "\n".join(t for t in parsed.text_html if t)
    text = text_plain if text_plain.strip() else html_to_text(html)
    if (not text.strip() and msg.get_content_maintype() == "multipart"
            and isinstance(msg.get_payload(), str)):
        text = msg.get_payload()  # a multipart whose boundary never appears: keep the body
    defects = _defects(parsed)
    return ParsedMail(
        message_id=_first_id(msg.get_all("Message-ID") or []),
        in_reply_to=_ids(msg.get_all("In-Reply-To") or [])[:10],
        references=_ids(msg.get_all("References") or [])[-50:],
        subject=clean_text_line(str(parsed.subject or "")),
        sender=_sender(msg),
        to=tuple(parse_address_list(_strs(msg.get_all("To")))),
        cc=tuple(parse_address_list(_strs(msg.get_all("Cc")))),
        reply_to=tuple(parse_address_list(_strs(msg.get_all("Reply-To")))),
        date=_date(msg.get("Date")),
        text=clean_body(text),
        html=clean_body(html),
        attachments=tuple(_attachments(parsed.attachments)),
        headers=headers,
        defects=defects,
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


def decode_header_value(value: str) -> str:
    try:
        decoded = str(email.header.make_header(email.header.decode_header(value)))
    except (LookupError, ValueError, UnicodeError, binascii.Error):
        decoded = value
    return clean_text_line(decoded)


def clean_text_line(value: str) -> str:
    """One line of text: CR/LF and other controls become spaces; no bidi overrides."""
    value = value.encode("utf-8", "replace").decode("utf-8")  # drop lone surrogates
    value = _BIDI.sub("", _CONTROL.sub(" ", value.replace("\r", " ").replace("\n", " ")))
    return re.sub(r"[ \t]+", " ", value).strip()


def clean_body(text: str) -> str:
    text = text.encode("utf-8", "replace").decode("utf-8")
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return text


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


def _defects(parsed) -> tuple[str, ...]:
    out: list[str] = []
    for entry in parsed.defects or []:
        if isinstance(entry, dict):
            for kind, items in entry.items():
                out.extend(f"{kind}: {i}" for i in (items if isinstance(items, list) else [items]))
        else:
            out.append(str(entry))
    return tuple(clean_text_line(d)[:300] for d in out[:50])


def _attachments(items) -> list[ParsedAttachment]:
    out = []
    for n, item in enumerate(items, 1):
        payload = item.get("payload") or ""
        if item.get("binary"):
            try:
                data = base64.b64decode(payload)
            except (binascii.Error, ValueError):
                data = payload.encode("ascii", "replace")
        else:
            data = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) \
                else bytes(payload)
        ctype = clean_text_line(str(item.get("mail_content_type") or "application/octet-stream"))
        cid = clean_text_line(str(item.get("content-id") or "")).strip("<>")[:255]
        raw_name = str(item.get("filename") or "")
        if cid and raw_name.strip("<>") == cid:
            raw_name = ""   # mail-parser uses the Content-ID as a name when there is none
        out.append(ParsedAttachment(
            filename=safe_filename(raw_name, ctype, n), content_type=ctype[:255],
            size=len(data), sha256=hashlib.sha256(data).hexdigest(), content_id=cid, data=data))
    return out


_EXT = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "text/plain": ".txt",
        "application/pdf": ".pdf", "message/rfc822": ".eml", "text/html": ".html"}


def safe_filename(name: str, content_type: str = "", n: int = 1) -> str:
    """A display name that is no path, has no controls or bidi tricks, and is not too long."""
    name = unicodedata.normalize("NFC", clean_text_line(name.replace("\x00", "")))
    name = re.split(r"[/\\]", name)[-1]           # keep only the last path segment
    name = name.replace(":", "_").strip(" .")
    if not name:
        return f"attachment-{n}{_EXT.get(content_type.lower(), '.bin')}"
    stem, dot, ext = name.rpartition(".")
    if not dot or len(ext) > 10:
        stem, ext = name, ""
    limit = 200 - len(ext.encode())
    encoded = stem.encode("utf-8")[:limit].decode("utf-8", "ignore")
    return f"{encoded}.{ext}" if ext else encoded


_TRACE = re.compile(rb"(?im)^(received|return-path|delivered-to|x-original-to|"
                    rb"x-received|authentication-results|arc-[a-z-]+|x-spam-[a-z-]+|"
                    rb"dkim-signature|x-google-smtp-source|x-gm-[a-z-]+):")


def content_key(raw: bytes) -> str:
    """A hash that is the same for one mail fetched by SMTP and by IMAP.

    Trace headers added along the way are left out; the body and the author's
    headers are kept, so two different mails never share a key.
    """
    head, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    lines = re.split(rb"\n(?![ \t])", head)
    if lines and lines[0].startswith(b"From "):
        lines = lines[1:]
    kept = sorted(line.strip() for line in lines if line.strip() and not _TRACE.match(line))
    h = hashlib.sha256()
    for line in kept:
        h.update(line + b"\n")
    h.update(b"\n")
    h.update(body.rstrip())
    return h.hexdigest()


def display_name(sender: Sender) -> str:
    return clean_display_name(sender.name)
