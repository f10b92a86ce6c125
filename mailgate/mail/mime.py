"""Walk a parsed MIME tree: the text and HTML bodies, the attachments, the defects.

Works on the standard library's `email.message.Message` (compat32: it keeps what the
sender wrote and never raises on odd input). The text/plain parts that are not
attachments are the body text; the first text/html part is the HTML body (later ones in
a multipart/mixed continue it, as Apple Mail writes them; any other extra HTML document
is kept as an attachment). Every other leaf is an attachment with its bytes exactly as
they decode (mail.transfer); unnamed ones are called `file-N.<ext by type>`; an attached
mail (message/rfc822) is one attachment named `<its subject>.eml`; a winmail.dat also
gives the files inside it; uuencoded blocks in a text body become attachments. Text is
decoded by the charset chain of mail.charsets, each fallback recorded as a defect. Pure.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from dataclasses import dataclass, field
from email.message import Message

from mailgate.mail.charsets import decode_text
from mailgate.mail.large import Extracted
from mailgate.mail.text import (
    clean_text_line,
    decode_header_value,
    safe_filename,
    unescape_8bit,
    unfold,
)
from mailgate.mail.tnef import is_tnef, read_tnef
from mailgate.mail.transfer import decoded_payload, inline_uuencoded


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
    hint: str = ""                  # the first charset the mail declares anywhere
    tnef_text: str = ""             # a winmail.dat's message text (its body when none else)
    originals: dict[int, bytes] = field(default_factory=dict)  # attached mails' own bytes
    tnef_html: str = ""


def header_values(msg: Message, name: str, hint: str = "") -> list[str]:
    """Every value of header `name` as the sender wrote it, unfolded, its 8-bit bytes
    decoded (`hint`: the charset the mail's text declares). (compat32's own `get` wraps
    8-bit values in a Header whose str() turns every such byte into U+FFFD.)"""
    name = name.lower()
    return [unfold(unescape_8bit(str(v), hint)) for k, v in msg.raw_items()
            if k.lower() == name]


def first_value(msg: Message, name: str, hint: str = "") -> str:
    values = header_values(msg, name, hint)
    return values[0] if values else ""


def walk(msg: Message, large: Extracted | None = None,
         originals: dict[int, bytes] | None = None) -> Body:
    """`originals`: attached mails' exact bytes by id(part) (mail.rfc822)."""
    body = Body(hint=_first_charset(msg), originals=originals or {})
    stack: list[tuple[Message, str]] = [(msg, "")]
    while stack:
        part, parent = stack.pop()
        body.defects.extend(type(d).__name__ for d in getattr(part, "defects", ()))
        ctype = part.get_content_type()
        if ctype == "message/rfc822" and part is not msg:
            _attached_mail(part, body)
            continue
        if part.is_multipart():
            payload = part.get_payload()
            stack.extend(reversed([(p, ctype) for p in payload if isinstance(p, Message)]))
            continue
        filename = _filename(part, body.hint)
        attached = part.get_content_disposition() == "attachment" or filename
        if ctype == "text/plain" and not attached:
            text, found = inline_uuencoded(_text(part, body))
            body.text.append(text)
            for name, data in found:
                body.defects.append(f"uuencoded file {name[:60]!r} in the text")
                _add(body, decode_header_value(name), "application/octet-stream", "", data)
        elif ctype == "text/html" and not attached and (
                not body.html or parent == "multipart/mixed"):
            body.html.append(_text(part, body))
        else:
            _attachment(part, ctype, filename or "", body, large)
    if (body.tnef_text.strip() or body.tnef_html.strip()) and not any(
            t.strip() for t in (*body.text, *body.html)):
        # Outlook sent the text only inside its winmail.dat (often only as RTF)
        body.text.append(body.tnef_text)
        body.html.append(body.tnef_html)
        body.defects.append("the text was read from winmail.dat")
    return body


def _filename(part: Message, hint: str) -> str | None:
    """The part's file name. compat32 turns raw 8-bit bytes in a header (a UTF-8 or KOI8
    name written without RFC 2231) into U+FFFD; such a name is read again from the
    headers with their bytes decoded as header text is."""
    name = part.get_filename()
    if name is None or "\ufffd" not in name:
        return name
    fixed = Message()
    for header in ("Content-Disposition", "Content-Type"):
        for value in header_values(part, header, hint)[:1]:
            fixed[header] = value
    return fixed.get_filename() or name


def _first_charset(msg: Message) -> str:
    """The first charset a part declares: what a client wrote the rest of the mail in."""
    for part in msg.walk():
        charset = part.get_param("charset")
        if isinstance(charset, str) and charset.strip():
            return charset.strip()[:40]
    return ""


def _text(part: Message, body: Body) -> str:
    data, defects = decoded_payload(part)
    body.defects.extend(defects)
    text, defect = decode_text(data, part.get_content_charset() or "", body.hint)
    if defect:
        body.defects.append(defect)
    return text


def _attachment(part: Message, ctype: str, filename: str, body: Body,
                large: Extracted | None) -> None:
    number = part.get(large.header) if large is not None else None
    if number is not None and number.strip().isdigit() \
            and int(number) < len(large.bodies):
        data = large.bodies[int(number)]               # decoded beforehand (mail.large)
    else:
        data, defects = decoded_payload(part)
        body.defects.extend(defects)
    cid = clean_text_line(str(part.get("Content-ID") or "")).strip("<>")[:255]
    name = decode_header_value(filename)
    _add(body, name, ctype, cid, data)
    if is_tnef(ctype, name, data):
        inside = read_tnef(data)
        if inside.defect:
            body.defects.append(inside.defect)
        body.tnef_text, body.tnef_html = inside.text, inside.html
        for inner, content in inside.files:
            _add(body, inner, mimetypes.guess_type(inner)[0] or "application/octet-stream",
                 "", content)


def _attached_mail(part: Message, body: Body) -> None:
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else None
    if isinstance(inner, Message):
        data = body.originals.get(id(part)) or inner.as_bytes()
        subject = decode_header_value(first_value(inner, "Subject"))
    else:
        data = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""
        subject = ""
    # a file name is the mail's subject, not whatever a client made up (ATT00001.eml)
    name = (re.sub(r"[/\\]", "_", subject) + ".eml" if subject.strip() else
            decode_header_value(part.get_filename() or ""))
    _add(body, name, "message/rfc822", "", data)


def _add(body: Body, name: str, ctype: str, cid: str, data: bytes) -> None:
    n = len(body.attachments) + 1
    body.attachments.append(ParsedAttachment(
        filename=safe_filename(name, ctype, n), content_type=clean_text_line(ctype)[:255],
        size=len(data), sha256=hashlib.sha256(data).hexdigest(), content_id=cid, data=data))
