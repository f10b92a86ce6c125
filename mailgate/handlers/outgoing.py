"""Outgoing mail an admin steps in on: send again, cancel, lift a bounce suppression.

`why_not` decides, per mail, whether a request applies to it (a pure function over the
mail's state); the handlers check every id first and then change rows only from the
state they were checked in, so a mail the daemon takes meanwhile is never half-changed.
All or nothing: one id that does not fit refuses the whole request. Each function runs
inside the caller's unit of work.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlmodel import Session

from mailgate.handlers import ServiceError
from store import outbox
from store.models import OutboxState, Suppression

# A bounced mail may go again: the admin has reason to think the address works now (the
# suppression guard stopped only mail decided after the bounce, never this one).
RETRYABLE = (OutboxState.FAILED, OutboxState.PENDING, OutboxState.BOUNCED)
# A dropped mail can be cancelled too: that is how an admin says "seen" to a mail a guard
# stopped, so it stops counting in `mailgate status`.
CANCELLABLE = (OutboxState.PENDING, OutboxState.FAILED, OutboxState.DROPPED)


def why_not(verb: str, state: str | None, has_content: bool = True) -> str | None:
    """Why `verb` ("retry" or "cancel") does not apply to a mail in `state` (None: no such
    mail), or None when it does."""
    if state is None:
        return "no such mail"
    if state == OutboxState.SENDING:
        return "being handed to the relay right now; try again in a minute"
    if verb == "retry":
        if state not in RETRYABLE:
            return f"{state}; only failed, bounced or pending mail is sent again"
        if not has_content:
            return f"{state} long ago; its content is no longer kept"
        return None
    if state in (OutboxState.SENT, OutboxState.BOUNCED):
        return f"{state} already; sent mail cannot be cancelled"
    if state not in CANCELLABLE:
        return state
    return None


def _check(session: Session, verb: str, ids: list[int]) -> dict[int, tuple[str, str, bool, str]]:
    rows = outbox.admin_view(session=session, ids=ids)
    wrong = []
    for i in dict.fromkeys(ids):
        state, _, has_content, _ = rows.get(i, (None, "", False, ""))
        why = why_not(verb, state, has_content)
        if why:
            wrong.append(f"{i} ({why})")
    if wrong:
        raise ServiceError(f"cannot {verb}: {'; '.join(wrong)} (see: mailgate outbox list)")
    return rows


@dataclass(frozen=True)
class Retried:
    count: int
    bounced_to: tuple[str, ...] = ()   # addresses of bounced mails sent again


def retry(session: Session, *, ids: list[int] | None, now: dt.datetime) -> Retried:
    """Send the listed mails (or every failed one) again on the next outbox run."""
    if not ids:
        return Retried(outbox.make_due(session=session, ids=None, now=now))
    rows = _check(session, "retry", ids)
    for i in dict.fromkeys(ids):
        if not outbox.requeue(session=session, outbox_id=i, from_states=RETRYABLE, now=now):
            raise ServiceError(f"outgoing mail {i} changed meanwhile; nothing was retried")
    bounced = sorted({rows[i][1] for i in ids if rows[i][0] == OutboxState.BOUNCED})
    return Retried(len(set(ids)), tuple(bounced))


def cancel(session: Session, *, ids: list[int]) -> int:
    """Cancel queued, failed or dropped mails: they are never sent and stop counting."""
    rows = _check(session, "cancel", ids)
    for i in dict.fromkeys(ids):
        last = rows[i][3]
        note = f"cancelled by an admin; before: {last}" if last else "cancelled by an admin"
        if not outbox.cancel(session=session, outbox_id=i, from_states=CANCELLABLE,
                             last_error=note):
            raise ServiceError(f"outgoing mail {i} changed meanwhile; nothing was cancelled")
    return len(set(ids))


def suppressions(session: Session, *, now: dt.datetime) -> list[Suppression]:
    return outbox.suppressions(session=session, now=now)


def lift_suppression(session: Session, *, address: str, now: dt.datetime) -> None:
    """Automatic mail to `address` flows again (until it bounces hard again)."""
    if not outbox.unsuppress(session=session, address=address.strip(), now=now):
        raise ServiceError(f"{address.strip()[:254]} is not suppressed "
                           "(see: mailgate suppression list)")
