"""Admin triage: the unassigned queue and the quarantine.

Assigning a queued mail finishes what routing could not decide, through the same
decisions (`routing.triage`) and the same apply step the pipeline uses, so an assigned
mail gets the same acknowledgement, notifications and threading as one routed
automatically. Each function runs inside the caller's unit of work.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update
from sqlmodel import Session

from mailgate.bootstrap import App
from mailgate.handlers import ServiceError
from mailgate.handlers.apply import apply_effects
from mailgate.handlers.directory import require_project
from mailgate.handlers.gather import for_tickets
from mailgate.handlers.tickets import load_ticket
from routing.decide import Incoming
from routing.disposition import Disposition
from routing.rules import MailFacts
from store import inbox
from store.models import Inbound, InboundState, Message


def unassigned_row(session: Session, inbound_id: int) -> tuple[Inbound, Message]:
    row = inbox.inbound_row(session=session, inbound_id=inbound_id)
    if row is None or row.state != InboundState.UNASSIGNED:
        raise ServiceError(f"no unassigned mail with id {inbound_id} "
                           "(see: mailgate unassigned list)")
    message = inbox.inbound_message(session=session, inbound_id=inbound_id)
    if message is None:
        raise ServiceError(f"unassigned mail {inbound_id} has no parsed message; "
                           "retry it from the quarantine")
    return row, message


def _admin(name: str | None) -> str:
    return f"admin:{name}" if name else "admin"


def _incoming(message: Message) -> Incoming:
    auto = Disposition.from_json(message.decision).auto
    facts = MailFacts(message.from_addr or None, "", (), message.subject, ())
    return Incoming(facts, message.from_name, message.message_id, message.text, 0, auto)


def assign_to_project(session: Session, app: App, *, inbound_id: int, project_slug: str,
                      add_contact: bool, quiet: bool, admin: str | None = None,
                      now: dt.datetime) -> int:
    from routing.triage import open_from_queue

    row, message = unassigned_row(session, inbound_id)
    require_project(session, project_slug)
    if not message.from_addr:
        raise ServiceError(f"mail {inbound_id} has no usable sender "
                           f"({row.reason}); it cannot open a ticket")
    batch = for_tickets(session, app, [], now)
    effects = open_from_queue(_incoming(message), project_slug, _admin(admin), batch.site,
                              batch.guard_facts(), quiet=quiet, add_contact=add_contact,
                              queue_id=inbound_id)
    applied = apply_effects(session, app, effects, site=batch.site, ctx=None, now=now,
                            batch=batch, existing_message=message.id)
    _done(session, row, applied.ticket, now)
    return applied.ticket


def assign_to_ticket(session: Session, app: App, *, inbound_id: int, number: int,
                     add_contact: bool, quiet: bool, admin: str | None = None,
                     now: dt.datetime) -> int:
    from routing.triage import file_into_ticket

    row, message = unassigned_row(session, inbound_id)
    load_ticket(session, number)
    batch = for_tickets(session, app, [number], now)
    ctx = batch.contexts[number]
    effects = file_into_ticket(_incoming(message), ctx, _admin(admin), batch.site,
                               batch.guard_facts(), quiet=quiet, add_contact=add_contact,
                               queue_id=inbound_id)
    apply_effects(session, app, effects, site=batch.site, ctx=ctx, now=now, batch=batch,
                  existing_message=message.id)
    _done(session, row, number, now)
    return number


def _done(session: Session, row: Inbound, ticket: int, now: dt.datetime) -> None:
    session.execute(update(Inbound).where(Inbound.id == row.id).values(
        state=InboundState.DONE, ticket_id=ticket, processed_at=now))


def mark_spam(session: Session, *, inbound_id: int, now: dt.datetime) -> None:
    row, _ = unassigned_row(session, inbound_id)
    session.execute(update(Inbound).where(Inbound.id == row.id).values(
        state=InboundState.SPAM, processed_at=now))


def requeue_quarantined(session: Session, *, inbound_ids: list[int] | None,
                        now: dt.datetime) -> list[int]:
    """Put quarantined mail back in line (all of it when ids is None)."""
    rows = inbox.inbound_rows(session=session, state=InboundState.QUARANTINED, limit=100_000)
    if inbound_ids is not None:
        wanted = set(inbound_ids)
        rows = [r for r in rows if r.id in wanted]
        missing = sorted(set(inbound_ids) - {r.id for r in rows})
        if missing:
            raise ServiceError(f"not in quarantine: {', '.join(map(str, missing))} "
                               "(see: mailgate quarantine list)")
    for row in rows:
        session.execute(update(Inbound).where(Inbound.id == row.id).values(
            state=InboundState.PENDING, attempts=0, next_attempt_at=None, lease_until=None,
            reason=f"retried from quarantine (was: {row.reason})"[:2000]))
    return [r.id for r in rows]


def claim_for_retry(session: Session, *, inbound_id: int, now: dt.datetime,
                    lease: dt.timedelta) -> bool:
    """Take one pending row for processing in this process (quarantine retry)."""
    result = session.execute(update(Inbound).where(
        Inbound.id == inbound_id, Inbound.state == InboundState.PENDING).values(
        state=InboundState.PROCESSING, attempts=1, lease_until=now + lease))
    return bool(result.rowcount)


def drop_quarantined(session: Session, *, inbound_ids: list[int], now: dt.datetime) -> list[int]:
    """Let go of quarantined mail for good: its bytes are deleted, a small row says when
    and why. All or nothing: an id that is not quarantined refuses the whole request."""
    rows = inbox.inbound_by_ids(session=session, ids=inbound_ids)
    wrong = [f"{i} ({rows[i].state})" if i in rows else f"{i} (no such mail)"
             for i in dict.fromkeys(inbound_ids)
             if i not in rows or rows[i].state != InboundState.QUARANTINED]
    if wrong:
        raise ServiceError(f"not in quarantine: {', '.join(wrong)} "
                           "(see: mailgate quarantine list)")
    dropped = []
    for i in dict.fromkeys(inbound_ids):
        if not inbox.forget(session=session, inbound_id=i, from_state=InboundState.QUARANTINED,
                            state=InboundState.DROPPED, now=now,
                            reason=f"dropped from the quarantine by an admin "
                                   f"(was: {rows[i].reason})"):
            # a quarantine retry took it in the meantime
            raise ServiceError(f"mail {i} left the quarantine meanwhile; nothing was dropped")
        dropped.append(i)
    return dropped
