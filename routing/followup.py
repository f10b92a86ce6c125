"""Follow-ups to closed tickets: what a customer's mail to a closed ticket does.

A workflow's `after_close` chooses, as Zammad's "follow-up possible" and OTRS's queue
"follow-up option" do: `reopen` (the ticket goes to the workflow's `reopen` status, and
is marked urgent where the workflow says so), `new-ticket` (a new ticket in the same
project that links the old one; the old one stays closed) or `reject` (the mail is kept
on the old ticket without reopening it, and the sender is told to write a new mail, as
OTRS's "reject" does). `reopen_within_days` is Zammad's "follow-up possible until N
days": within N days of closing (N included) the mail reopens, later the policy applies;
it goes with `new-ticket` or `reject` only (with `reopen` it would change nothing).
Without `after_close` a mail to a closed ticket is added to it as before, its status
left to the workflow's `on_customer_reply`.

Only a person's mail is a follow-up: automatic mail and agents' mail are added to the
ticket as always. Pure: `now` and the moment the ticket closed are passed in.
"""

from __future__ import annotations

import re
from dataclasses import replace

from routing.actors import Person
from routing.after_close import APPEND, NEW_TICKET, REJECT, REOPEN, FollowUp, follow_up
from routing.context import TicketState
from routing.effects import (
    Audience,
    Direction,
    Effects,
    LogEvent,
    MailIntent,
    MailKind,
    Outcome,
    StoreMessage,
)

# the policy itself lives in routing.after_close (routing.workflow reads it from there);
# it is re-exported so that callers deciding a follow-up need one module
__all__ = ["APPEND", "NEW_TICKET", "REJECT", "REOPEN", "FollowUp", "follow_up", "linked_to_old",
           "noted", "rejected"]

# --- what the two policies that leave the old ticket closed cause -----------------------


def linked_to_old(effects: Effects, old: int, fu: FollowUp) -> Effects:
    """A new ticket's effects (decide's own) made a follow-up of closed ticket `old`:
    the two are linked, and the acknowledgement names the old number."""
    note = f"a new ticket following up closed ticket #{old}: {fu.reason}"

    def naming(mails: tuple[MailIntent, ...]) -> tuple[MailIntent, ...]:
        return tuple(replace(m, follows=old) if m.kind is MailKind.ACK else m for m in mails)

    # the old ticket's [#N] leaves the subject: our mails tag the new ticket's number
    subject = re.sub(rf"\s*\[#{old}\]", "", effects.open.subject).strip() or "(no subject)"
    return replace(
        effects, open=replace(effects.open, follows=old, subject=subject),
        mails=naming(effects.mails),
        dropped=tuple(replace(d, mail=naming((d.mail,))[0]) for d in effects.dropped),
        events=(*effects.events, LogEvent("follow-up", effects.open.requester.email,
                                          f"follows up closed ticket #{old}", new=str(old))),
        disposition=_noted(effects.disposition, note, fu, old))


def rejected(body: str, customer: Person, state: TicketState, fu: FollowUp, *,
             message_id: str, answer: bool) -> Effects:
    """The mail stays on the closed ticket (nothing is lost, the ticket stays closed) and
    the sender is told to write a new mail (`answer`: not to automatic mail)."""
    notice = (MailIntent(MailKind.NOTICE, customer, "followup_rejected",
                         "tells the sender that the closed ticket takes no follow-ups",
                         Audience.CUSTOMER, auto="auto-replied", in_reply_to=message_id),
              ) if answer else ()
    return Effects(Outcome.DONE, fu.reason, message=StoreMessage(
        Direction.IN, "customer", body), after=state, mails=notice,
        events=(LogEvent("follow-up", customer.email,
                         f"not reopened: {fu.reason}"),))


def noted(disposition: dict, fu: FollowUp) -> dict:
    """The stored disposition with what the follow-up did."""
    return _noted(disposition, f"follow-up to a closed ticket: {fu.action} ({fu.reason})",
                  fu, None)


def _noted(disposition: dict, note: str, fu: FollowUp, old: int | None) -> dict:
    return {**disposition, "notes": [*disposition.get("notes", ()), note],
            "follow_up": {"action": fu.action, "reason": fu.reason, "closed_ticket": old}}
