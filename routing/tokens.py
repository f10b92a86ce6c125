"""Reply tokens: the signed plus-address that ties a reply to a ticket and a person.

A token looks like `r42.4bq.k3j5x7tqh2mzv6aa` in `support+r42.4bq.k3j5x7tqh2mzv6aa@…`:
purpose (`r` reply, `n` internal note), ticket number, issue day (base 36, days since
2020-01-01) and an HMAC-SHA256 over purpose, ticket, issue day and the address the token
was issued to, cut to 80 bits and written in lower-case base 32, so MTAs that change the
case of a local part do no harm. Verification recomputes the MAC for the sender of the
reply, so a token only works for the person it was mailed to.

Pure: keys, the clock and what is known about the ticket are passed in. Every failure
has its own code and a sentence an admin can act on.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass

EPOCH = dt.date(2020, 1, 1)
PURPOSES = {"r": "reply", "n": "note"}
_CODES = {v: k for k, v in PURPOSES.items()}
MAC_CHARS = 16
_TOKEN_RE = re.compile(r"^([rn])([1-9][0-9]{0,11})\.([0-9a-z]{1,6})\.([a-z2-7]+)$")
_DIAGNOSE_LIMIT = 500  # how many of the sender's other tickets to try when a MAC fails


@dataclass(frozen=True)
class TokenKey:
    secret: bytes
    valid_until: dt.date | None = None  # None: the current key; a date: retired, in grace


@dataclass(frozen=True)
class ParsedToken:
    purpose: str
    ticket: int
    issued: dt.date
    mac: str


@dataclass(frozen=True)
class TicketFacts:
    """What the verifier needs to know about the ticket a token names."""

    exists: bool
    deleted: bool = False
    participants: frozenset[str] = frozenset()


@dataclass(frozen=True)
class TokenVerdict:
    ok: bool
    code: str              # "ok" or a failure code
    reason: str
    ticket: int | None = None
    purpose: str | None = None


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if not n:
            return out


def _mac(secret: bytes, purpose: str, ticket: int, day: int, recipient: str) -> str:
    msg = f"mailgate-token-v1|{purpose}|{ticket}|{day}|{recipient.lower()}".encode()
    digest = hmac.new(secret, msg, hashlib.sha256).digest()[:10]
    return base64.b32encode(digest).decode("ascii").lower()[:MAC_CHARS]


def make_token(*, secret: bytes, purpose: str, ticket: int, recipient: str,
               issued: dt.date) -> str:
    day = (issued - EPOCH).days
    code = _CODES[purpose]
    return f"{code}{ticket}.{_b36(day)}.{_mac(secret, purpose, ticket, day, recipient)}"


def parse_token(detail: str) -> ParsedToken | None:
    m = _TOKEN_RE.match(detail.lower())
    if not m or len(m.group(4)) != MAC_CHARS:
        return None
    code, ticket, day, mac = m.groups()
    try:
        issued = EPOCH + dt.timedelta(days=int(day, 36))
    except OverflowError:
        return None
    return ParsedToken(PURPOSES[code], int(ticket), issued, mac)


def _matches(keys: Sequence[TokenKey], tok: ParsedToken, ticket: int, who: str) -> TokenKey | None:
    day = (tok.issued - EPOCH).days
    for key in keys:
        if hmac.compare_digest(_mac(key.secret, tok.purpose, ticket, day, who), tok.mac):
            return key
    return None


def verify_token(detail: str, *, sender: str | None, keys: Sequence[TokenKey],
                 today: dt.date, max_age_days: int, ticket: TicketFacts,
                 sender_tickets: Sequence[int] = ()) -> TokenVerdict:
    """Check a token for the mail's sender; `ticket` describes the ticket it names."""
    tok = parse_token(detail)
    if tok is None:
        return TokenVerdict(False, "token-malformed",
                            "reply address token is malformed or truncated")
    fail = _verdict_for(tok)
    if not sender:
        return fail("token-no-sender", "reply token cannot be checked without a clear sender")
    key = _matches(keys, tok, tok.ticket, sender)
    if key is None:
        return _diagnose(tok, sender, keys, ticket, sender_tickets)
    if key.valid_until is not None and today > key.valid_until:
        return fail("token-retired", "reply token was signed with a retired secret whose "
                                     f"grace period ended {key.valid_until.isoformat()}")
    if tok.issued > today + dt.timedelta(days=1):
        return fail("token-future", "reply token claims to be issued in the future")
    if max_age_days and (today - tok.issued).days > max_age_days:
        return fail("token-expired", f"reply token expired (issued {tok.issued.isoformat()}, "
                                     f"older than {max_age_days} days)")
    if not ticket.exists:
        return fail("token-no-ticket", f"reply token names ticket #{tok.ticket}, which does "
                                       "not exist")
    if ticket.deleted:
        return fail("token-ticket-deleted", f"reply token names ticket #{tok.ticket}, which "
                                            "was deleted")
    return TokenVerdict(True, "ok", f"valid {tok.purpose} token for ticket #{tok.ticket}",
                        tok.ticket, tok.purpose)


def _verdict_for(tok: ParsedToken):
    def fail(code: str, reason: str) -> TokenVerdict:
        return TokenVerdict(False, code, reason, tok.ticket, tok.purpose)

    return fail


def _diagnose(tok: ParsedToken, sender: str, keys: Sequence[TokenKey], ticket: TicketFacts,
              sender_tickets: Sequence[int]) -> TokenVerdict:
    """The MAC does not fit this sender and ticket: find out the most likely story."""
    fail = _verdict_for(tok)
    for other in sorted(ticket.participants - {sender})[:_DIAGNOSE_LIMIT]:
        if _matches(keys, tok, tok.ticket, other):
            return fail("token-other-recipient",
                        f"reply token of ticket #{tok.ticket} was issued to {other}, not to "
                        f"the sender {sender} (forwarded notification?)")
    for number in list(sender_tickets)[:_DIAGNOSE_LIMIT]:
        if number != tok.ticket and _matches(keys, tok, number, sender):
            return fail("token-other-ticket",
                        f"reply token belongs to ticket #{number} but names ticket "
                        f"#{tok.ticket} (altered address)")
    return fail("token-bad-signature",
                "reply token signature does not match (damaged or forged address)")
