"""Walk a parsed MIME tree: the text and HTML bodies, the attachments, the defects.

Works on the standard library's `email.message.Message` (compat32: it keeps what the
sender wrote and never raises on odd input). The first text/plain and text/html parts
that are not attachments are the body; every other leaf is an attachment with its bytes
exactly as they decode; an attached mail (message/rfc822) is one attachment named after
its subject, not a source of body text. Text is decoded by its declared charset, else
as UTF-8, else as Windows-1252, and each fallback is recorded as a defect. Pure.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from email.message import Message

from mailgate.mail.large import Extracted
from mailgate.mail.text import clean_text_line, decode_header_value, safe_filename


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str
    content_type: str
    size: int
    sha256: str
    content_id: str
    data: bytes


@dataclass
class Body:
    text: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[ParsedAttachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)


def walk(msg: Message, large: Extracted | None = None) -> Body:
    body = Body()
    stack = [msg]
    while stack:
        part = stack.pop()
        body.defects.extend(type(d).__name__ for d in getattr(part, "defects", ()))
        ctype = part.get_content_type()
        if ctype == "message/rfc822" and part is not msg:
            _attached_mail(part, body)
            continue
        if part.is_multipart():
            payload = part.get_payload()
            stack.extend(reversed([p for p in payload if isinstance(p, Message)]))
            continue
        filename = part.get_filename()
        attached = part.get_content_disposition() == "attachment" or filename
        if ctype in ("text/plain", "text/html") and not attached:
            (body.text if ctype == "text/plain" else body.html).append(_text(part, body))
        else:
            _attachment(part, ctype, filename or "", body, large)
    return body


def _text(part: Message, body: Body) -> str:
    data = part.get_payload(decode=True) or b""
    charset = (part.get_content_charset() or "").strip()
    if charset:
        try:
            return data.decode(_CHARSET_SUPERSETS.get(charset, charset))
        except (LookupError, UnicodeDecodeError):
            body.defects.append(f"text not valid {charset[:40]}; read as a fallback")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        body.defects.append("text is not UTF-8; read as Windows-1252")
        return data.decode("cp1252", "replace")


# Labels that senders use for text in a larger encoding (mature parsers do the same).
_CHARSET_SUPERSETS = {"gb2312": "gb18030", "gbk": "gb18030", "ks_c_5601-1987": "cp949",
                      "us-ascii": "utf-8", "ascii": "utf-8",
                      "x-sjis": "shift_jis", "shift-jis": "shift_jis"}


def _attachment(part: Message, ctype: str, filename: str, body: Body,
                large: Extracted | None) -> None:
    number = part.get(large.header) if large is not None else None
    if number is not None and number.strip().isdigit() \
            and int(number) < len(large.bodies):
        data = large.bodies[int(number)]               # decoded beforehand (mail.large)
    else:
        data = part.get_payload(decode=True)
    if data is None:
        payload = part.get_payload()
        data = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""
    cid = clean_text_line(str(part.get("Content-ID") or "")).strip("<>")[:255]
    _add(body, decode_header_value(filename), ctype, cid, data)


def _attached_mail(part: Message, body: Body) -> None:
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else None
    if isinstance(inner, Message):
        data = inner.as_bytes()
        subject = decode_header_value(str(inner.get("Subject") or ""))
    else:
        data = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""
        subject = ""
    name = decode_header_value(part.get_filename() or "") or (f"{subject}.eml" if subject
                                                             else "")
    _add(body, name, "message/rfc822", "", data)


def _add(body: Body, name: str, ctype: str, cid: str, data: bytes) -> None:
    n = len(body.attachments) + 1
    body.attachments.append(ParsedAttachment(
        filename=safe_filename(name, ctype, n), content_type=clean_text_line(ctype)[:255],
        size=len(data), sha256=hashlib.sha256(data).hexdigest(), content_id=cid, data=data))
