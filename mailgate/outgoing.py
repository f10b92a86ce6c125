"""Compose the mails mailgate writes: acknowledgements, forwarded replies, notifications.

Every mail goes to one recipient, so its Reply-To carries a token issued to exactly that
person. From is always the support address (an agent's reply shows the agent's name in
front of it), the subject carries the ticket tag, and threading headers point at the
mail being answered. Header values are built only from cleaned one-line text: a subject
or name holding CR/LF cannot add a header or a recipient (Python 3.11.7 does not check
this itself). Composing is pure apart from the random Message-ID; queueing is elsewhere.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

from mailgate.parsing import clean_text_line
from mailgate.templating import Rendered
from routing.addresses import clean_display_name, plus_address, split_address
from routing.rules import SUBJECT_TAG_RE
from routing.tokens import make_token

LOOP_HEADER = "X-Mailgate-Loop"
INLINE_LOGO_BYTES = 16_384   # an inline image smaller than this is a signature logo


@dataclass(frozen=True)
class OutgoingMail:
    kind: str
    ticket: int | None
    rcpt: str
    mail_from: str       # envelope sender: a VERP address unique to this mail
    message_id: str      # without angle brackets
    subject: str
    raw: bytes
    automatic: bool


@dataclass(frozen=True)
class Person:
    email: str
    name: str = ""


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

    def compose(self, *, kind: str, rendered: Rendered, ticket: int | None, to: Person,
                now: dt.datetime, from_name: str | None = None, auto: str | None = None,
                in_reply_to: str = "", references: tuple[str, ...] = (),
                reply_purpose: str = "reply", attachments: Sequence = ()) -> OutgoingMail:
        """One mail to one person. `auto` is the RFC 3834 Auto-Submitted value or None;
        `attachments` have filename, content_type and data (already safe names)."""
        subject = clean_text_line(rendered.subject)[:300]
        if ticket is not None and not SUBJECT_TAG_RE.search(subject):
            subject = f"[#{ticket}] {subject}"
        msg = EmailMessage(policy=SMTP)
        msg["From"] = _address(from_name or self.support_name, self.support_address)
        msg["To"] = _address(to.name, to.email)
        if ticket is not None:
            reply = self.token_address(ticket, to.email, purpose=reply_purpose, today=now.date())
            msg["Reply-To"] = _address(self.support_name, reply)
        msg["Subject"] = subject
        msg["Date"] = format_datetime(now.astimezone(dt.UTC))
        message_id = make_msgid(idstring=f"mg{ticket or 0}", domain=self.domain)
        msg["Message-ID"] = message_id
        if in_reply_to:
            msg["In-Reply-To"] = f"<{in_reply_to}>"
        refs = [r for r in references if r][-20:]
        if refs:
            msg["References"] = " ".join(f"<{r}>" for r in refs)
        if auto:
            msg["Auto-Submitted"] = auto
            msg["X-Auto-Response-Suppress"] = "All"
        msg[LOOP_HEADER] = self.loop_marker
        if ticket is not None:
            msg["X-Mailgate-Ticket"] = str(ticket)
        msg.set_content(rendered.body, charset="utf-8", cte="quoted-printable")
        for a in attachments:
            maintype, _, subtype = a.content_type.partition("/")
            if not (maintype.isascii() and subtype.isascii() and maintype and subtype) \
                    or maintype in ("multipart", "message"):
                maintype, subtype = "application", "octet-stream"
            msg.add_attachment(a.data, maintype=maintype.lower(), subtype=subtype.lower(),
                               filename=clean_text_line(a.filename)[:200] or "attachment")
        return OutgoingMail(kind=kind, ticket=ticket, rcpt=to.email,
                            mail_from=self.verp_address(), message_id=message_id.strip("<>"),
                            subject=subject, raw=msg.as_bytes(policy=SMTP),
                            automatic=auto is not None)

    def verp_address(self) -> str:
        tag = base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()
        return plus_address(self.support_address, f"b.{tag}")


def _address(name: str, email: str) -> Address:
    local, domain = split_address(email)
    return Address(display_name=clean_display_name(name), username=local, domain=domain)


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
