"""Compose the mails mailgate writes, as wire bytes, from a rendered template.

Every mail goes to one recipient, so its Reply-To carries a token issued to exactly that
person. From is always the support address (an agent's reply shows the agent's name in
front of it), the subject carries the ticket tag, and threading headers point at the
mail being answered. Header values are built only from cleaned one-line text: a subject
or name holding CR/LF cannot add a header or a recipient (Python 3.11.7 does not check
this itself).

Composing is cheap on purpose: headers are written once as text (RFC 2047 only where a
value is not ASCII), the body is quoted-printable by binascii, files are base64; no
`EmailMessage` tree and no policy objects per mail. Pure apart from the random MIME
boundary; the Message-ID is chosen when the mail is queued.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import encode_rfc2231, format_datetime, formataddr

from mailgate.mail.templating import Rendered
from mailgate.mail.text import clean_text_line
from routing.actors import Person
from routing.addresses import clean_display_name, plus_address, split_address
from routing.loops import LOOP_HEADER
from routing.rules import SUBJECT_TAG_RE
from routing.tokens import make_token

INLINE_LOGO_BYTES = 16_384   # an inline image smaller than this is a signature logo
CRLF = "\r\n"


@dataclass(frozen=True)
class FileToSend:
    filename: str
    content_type: str
    data: bytes


class Composer:
    def __init__(self, *, support_address: str, support_name: str, token_secret: bytes,
                 loop_marker: str) -> None:
        self.support_address = support_address
        self.support_name = support_name
        self.domain = split_address(support_address)[1]
        self.secret = token_secret
        self.loop_marker = loop_marker

    def token_address(self, ticket: int, recipient: str, *, purpose: str = "reply",
                      today: dt.date) -> str:
        token = make_token(secret=self.secret, purpose=purpose, ticket=ticket,
                           recipient=recipient, issued=today)
        return plus_address(self.support_address, token)

    def message_id(self, ticket: int | None) -> str:
        """A new Message-ID (without angle brackets)."""
        return f"mg{ticket or 0}.{secrets.token_hex(10)}@{self.domain}"

    def verp_address(self) -> str:
        tag = base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()
        return plus_address(self.support_address, f"b.{tag}")

    def compose(self, *, rendered: Rendered, ticket: int | None, to: Person, message_id: str,
                date: dt.datetime, from_name: str = "", auto: str | None = None,
                in_reply_to: str = "", references: Sequence[str] = (),
                files: Sequence[FileToSend] = (), reply_address: str = "") -> tuple[str, bytes]:
        """(subject, wire bytes) of one mail to one person. `auto` is the RFC 3834
        Auto-Submitted value or None; `reply_address` is the recipient's token address
        when the caller has made it already (else it is made here)."""
        subject = clean_text_line(rendered.subject)[:300]
        if ticket is not None and not SUBJECT_TAG_RE.search(subject):
            subject = f"[#{ticket}] {subject}"
        lines = [_h("From", _addr(from_name or self.support_name, self.support_address)),
                 _h("To", _addr(to.name, to.email))]
        if ticket is not None:
            reply = reply_address or self.token_address(ticket, to.email, today=date.date())
            lines.append(_h("Reply-To", _addr(self.support_name, reply)))
        lines += [_text_header("Subject", subject),
                  _h("Date", format_datetime(date.astimezone(dt.UTC))),
                  _h("Message-ID", f"<{message_id}>")]
        if in_reply_to:
            lines.append(_h("In-Reply-To", f"<{in_reply_to}>"))
        refs = [r for r in references if r][-20:]
        if refs:
            lines.append("References: " + (CRLF + " ").join(f"<{r}>" for r in refs))
        if auto:
            lines += [_h("Auto-Submitted", auto), _h("X-Auto-Response-Suppress", "All")]
        lines.append(_h(LOOP_HEADER, self.loop_marker))
        if ticket is not None:
            lines.append(_h("X-Mailgate-Ticket", str(ticket)))
        lines.append("MIME-Version: 1.0")
        text = _text_part(rendered.body)
        if not files:
            # utf-8: an internationalised address is written raw (RFC 6532)
            return subject, (CRLF.join(lines) + CRLF).encode("utf-8") + text
        boundary = f"=_mg{secrets.token_hex(12)}"
        lines.append(f'Content-Type: multipart/mixed; boundary="{boundary}"')
        out = [(CRLF.join(lines) + CRLF + CRLF).encode("utf-8")]
        for part in (text, *(_file_part(f) for f in files)):
            out += [f"--{boundary}{CRLF}".encode("ascii"), part, CRLF.encode("ascii")]
        out.append(f"--{boundary}--{CRLF}".encode("ascii"))
        return subject, b"".join(out)


def _h(name: str, value: str) -> str:
    return f"{name}: {value}"


def _text_header(name: str, value: str) -> str:
    if value.isascii() and len(value) < 900:
        return f"{name}: {value}"
    return f"{name}: " + encoded_words(value)


def encoded_words(value: str, chunk: int = 45) -> str:
    """RFC 2047 B-encoded words of at most 45 bytes of UTF-8 each (a word stays under 75
    characters), split between characters, folded one word per line."""
    data = value.encode("utf-8")
    words, start = [], 0
    while start < len(data):
        end = min(start + chunk, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:   # not inside a character
            end -= 1
        words.append(f"=?utf-8?b?{base64.b64encode(data[start:end]).decode('ascii')}?=")
        start = end
    return (CRLF + " ").join(words)


@functools.lru_cache(maxsize=4096)   # the same few senders and recipients, again and again
def _addr(name: str, email: str) -> str:
    local, domain = split_address(email)
    address = f"{local}@{domain}"
    if address.isascii():
        return formataddr((clean_display_name(name), address), charset="utf-8")
    # a UTF-8 local part (jürgen@…) is written raw, as RFC 6532 allows; formataddr
    # refuses it, so it formats the name around a stand-in (the relay asks for SMTPUTF8)
    shown = formataddr((clean_display_name(name), "x@x"), charset="utf-8")
    return shown[:-len("<x@x>")] + f"<{address}>" if shown.endswith(">") else address


def _text_part(body: str) -> bytes:
    """A text/plain part (its headers, a blank line, the body) in UTF-8."""
    data = body.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    if data.isascii() and all(len(line) <= 76 for line in data.split(b"\n")):
        head, encoded = "7bit", data
    else:
        head, encoded = "quoted-printable", binascii.b2a_qp(data, istext=True)
    return (f"Content-Type: text/plain; charset=utf-8{CRLF}Content-Transfer-Encoding: {head}"
            f"{CRLF}{CRLF}").encode("ascii") + encoded.replace(b"\n", b"\r\n")


def _file_part(f: FileToSend) -> bytes:
    maintype, _, subtype = f.content_type.lower().partition("/")
    if not (maintype.isascii() and subtype.isascii() and maintype.isalnum() and subtype
            and all(c.isalnum() or c in "+.-_" for c in subtype)) \
            or maintype in ("multipart", "message"):
        maintype, subtype = "application", "octet-stream"
    name = clean_text_line(f.filename)[:200] or "attachment"
    if name.isascii() and '"' not in name and "\\" not in name:
        disposition = f'attachment; filename="{name}"'
    else:
        disposition = f"attachment; filename*={encode_rfc2231(name, 'utf-8')}"
    head = (f"Content-Type: {maintype}/{subtype}{CRLF}Content-Disposition: {disposition}{CRLF}"
            f"Content-Transfer-Encoding: base64{CRLF}{CRLF}").encode("ascii")
    return head + base64.encodebytes(f.data).replace(b"\n", b"\r\n")


def attachments_to_send(attachments: Sequence, budget: int) -> tuple[list, list]:
    """Which files of an agent's reply go to the customer: all but small inline images
    (signature logos), as long as they fit in `budget` bytes once base64-encoded. Returns
    (to send, left out); what is left out stays on the ticket and is named in the mail."""
    chosen, left_out, used = [], [], 0
    for a in attachments:
        if a.content_id and a.content_type.startswith("image/") and a.size < INLINE_LOGO_BYTES:
            continue
        cost = a.size * 4 // 3 + 1024
        if used + cost > budget:
            left_out.append(a)
            continue
        chosen.append(a)
        used += cost
    return chosen, left_out
