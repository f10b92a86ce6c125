"""The customer's overview: `/list` answered with the sender's own requests.

A mail whose whole text is `/list` (or `/liste`, `/oversigt`; case and accents aside),
sent to the support address or any project address, opens no ticket: its sender gets one
mail listing the requests they are on — open ones and those closed lately — with
number, subject, status, whose turn it is and the last change. The same list may close
an acknowledgement (`[mail] ack_lists_open`).

Whose requests: the sender address's, matched on that address only; someone on no
ticket gets an empty list. Trust: the answer goes to the From address, never to a
Reply-To or the envelope sender, so a forged From sends the list to its real owner, not
to the forger; and when the From can be checked ([mail] trusted_authserv_id or
verify_dkim, as for customers' commands) and fails, nothing is answered. Automatic mail
is never answered. Every request is recorded (the inbound row's reason, the stored
message's disposition). Pure.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from routing.actors import Person
from routing.context import Site, TicketState
from routing.effects import (
    Audience,
    Direction,
    Effects,
    MailIntent,
    MailKind,
    Outcome,
    StoreMessage,
)
from routing.every_change import status_text
from routing.names import key
from routing.replytext import split_reply
from routing.workflow import Workflow

RULE = "overview"
WORDS = ("list", "liste", "oversigt")           # en, de, da (README "Customer commands")
_KEYS = frozenset(key(w) for w in WORDS)
_LINE = re.compile(r"^/([^\W\d_][\w-]{0,19})$")
# a line that starts with "/" once blanks (and Gmail's tracker, which the split drops)
# are stripped: without one the text cannot be a /list, and splitting it is skipped
_SLASH_LINE = re.compile(r"(?:\A|[\r\n])[\s\u1427]*/")


@dataclass(frozen=True)
class Request:
    """A ticket the sender is on, as gathered for their overview."""

    number: int
    subject: str
    project: str
    status: str
    substatus: str
    updated: dt.datetime


def asks_overview(text: str) -> bool:
    """Whether what the author wrote (quotes and signature aside) is `/list` alone."""
    if "/" not in (text or "") or not _SLASH_LINE.search(text):
        return False    # the split keeps lines as written: none starts with a slash
    lines = [line.strip() for line in split_reply(text or "").body.splitlines()
             if line.strip()]
    m = _LINE.match(lines[0]) if len(lines) == 1 else None
    return m is not None and key(m.group(1)) in _KEYS


def turn(wf: Workflow, status: str) -> str:
    """Whose turn it is in `status`, as the customer is told: customer, team, both or ""
    (the workflow names nobody, as in a closed ticket)."""
    s = wf.statuses.get(status)
    actors = s.actors if s is not None else ()
    if not actors:
        return ""
    theirs = "customer" in actors
    return "both" if theirs and len(actors) > 1 else "customer" if theirs else "team"


def request_rows(requests: tuple[Request, ...], site: Site, *, open_only: bool = False,
                 ) -> tuple[dict, ...]:
    """The rows the templates list: open requests first, then the closed ones, each
    newest first."""
    rows = []
    for r in requests:
        wf = site.workflow_of(r.project)
        is_open = wf.category(r.status) != "closed"
        if open_only and not is_open:
            continue
        info = site.projects.get(r.project)
        rows.append({"number": r.number, "subject": r.subject,
                     "project": info.name if info else r.project,
                     "status_label": status_text(wf, TicketState(r.number, r.project, r.status,
                                                                 r.substatus)),
                     "open": is_open, "turn": turn(wf, r.status),
                     "updated": r.updated.date().isoformat()})
    opened = sorted((r for r in rows if r["open"]), key=lambda r: r["updated"], reverse=True)
    closed = sorted((r for r in rows if not r["open"]), key=lambda r: r["updated"],
                    reverse=True)
    return tuple(opened + closed)


def answer_overview(sender: Person, requests: tuple[Request, ...], site: Site, *,
                    project: str, text: str, message_id: str, automatic: bool,
                    verified: bool, unverified_why: str = "",
                    ) -> tuple[Effects, list[str]]:
    """The effects of a /list mail (unguarded) and the notes for its disposition."""
    rows = request_rows(requests, site)
    opened = sum(1 for r in rows if r["open"])
    notes: list[str] = []
    mails: tuple[MailIntent, ...] = ()
    if automatic:
        why = "not answered: automatic mail"
    elif not verified:
        why = f"not answered: the sender could not be verified ({unverified_why})"
    else:
        why = (f"answered with the sender's own requests ({opened} open, "
               f"{len(rows) - opened} closed lately)")
        mails = (MailIntent(MailKind.OVERVIEW, sender, "overview", "the customer asked for "
                            "their requests (/list)", Audience.CUSTOMER, auto="auto-replied",
                            in_reply_to=message_id, requests=rows, project=project),)
    notes.append(f"{RULE}: {why}")
    author = "customer" if requests else "stranger"
    return Effects(Outcome.DONE, f"a /list request, {why}", RULE, mails=mails,
                   message=StoreMessage(Direction.IN, author, text)), notes
