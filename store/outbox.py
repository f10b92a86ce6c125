"""Queries over the outbox, the bounce suppressions and the loop-guard counts.

Each takes a keyword-only `session` and never commits. Every per-mail lookup the
pipeline makes here has an index (Message-ID, recipient and time, VERP address), so its
cost does not grow with the history kept.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import bindparam, case, delete, func, or_, update
from sqlalchemy import select as core_select
from sqlalchemy.orm import defer
from sqlmodel import Session, select

from store import later
from store.models import Outbox, OutboxState, Suppression

_COUNTED = (OutboxState.PENDING, OutboxState.SENDING, OutboxState.SENT, OutboxState.FAILED,
            OutboxState.BOUNCED)   # everything but dropped mail went (or goes) out


_OUTBOX = Outbox.__table__
_RECORD = (update(_OUTBOX).where(_OUTBOX.c.id == bindparam("b_id"))
           .values({c: bindparam(f"b_{c}") for c in (
               "attempts", "lease_until", "last_error", "state", "sent_at", "next_attempt_at",
               "raw", "subject", "relay_reply")}))


def insert_mails(*, session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Queue mails (held until the commit when the unit holds inserts: `store.later`)."""
    later.insert(session, _OUTBOX, rows)


def record_attempts(*, session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Write back delivery attempts: dicts with id, attempts, lease_until, last_error,
    state, sent_at, next_attempt_at, raw, subject, relay_reply (one statement for all)."""
    if rows:
        session.connection().execute(_RECORD, [{f"b_{k}": v for k, v in r.items()}
                                               for r in rows])


def sent_message_ids(*, session: Session, msgids: Iterable[str]) -> frozenset[str]:
    msgids = sorted(set(m for m in msgids if m))
    if not msgids:
        return frozenset()
    return frozenset(session.connection().execute(_SENT_IDS, {"ids": msgids}).scalars())


def automatic_counts(*, session: Session, addresses: Iterable[str], recent_since: dt.datetime,
                     day_since: dt.datetime) -> tuple[dict[str, int], dict[str, int]]:
    """Automatic mails per address: (since `recent_since`, since `day_since`)."""
    addresses = sorted(set(a for a in addresses if a))
    if not addresses:
        return {}, {}
    rows = session.connection().execute(_AUTOMATIC, {
        "addresses": addresses, "recent_since": recent_since, "day_since": day_since})
    recent_n, day_n = {}, {}
    for rcpt, r, d in rows:
        recent_n[rcpt], day_n[rcpt] = int(r or 0), int(d)
    return recent_n, day_n


def agent_ticket_counts(*, session: Session, agents: Iterable[str], tickets: Iterable[int],
                        since: dt.datetime) -> dict[tuple[str, int], int]:
    agents, tickets = sorted(set(agents)), sorted(set(tickets))
    if not agents or not tickets:
        return {}
    rows = session.connection().execute(_AGENT_TICKET, {"agents": agents, "tickets": tickets,
                                                        "since": since})
    return {(r, t): int(n) for r, t, n in rows}


def suppressed(*, session: Session, addresses: Iterable[str],
               now: dt.datetime) -> dict[str, dt.datetime]:
    addresses = sorted(set(a for a in addresses if a))
    if not addresses:
        return {}
    return dict(session.connection().execute(_SUPPRESSED, {"addresses": addresses,
                                                           "now": now}).all())


# the lookups every batch of mail makes, built once (Core: an ORM select costs more to
# set up than these take to run)
_SENT_IDS = core_select(_OUTBOX.c.message_id).where(
    _OUTBOX.c.message_id.in_(bindparam("ids", expanding=True)))
_AUTOMATIC = (core_select(_OUTBOX.c.rcpt,
                          func.sum(case((_OUTBOX.c.created_at >= bindparam("recent_since"), 1),
                                        else_=0)),
                          func.count())
              .where(_OUTBOX.c.rcpt.in_(bindparam("addresses", expanding=True)),
                     _OUTBOX.c.automatic.is_(True), _OUTBOX.c.created_at >= bindparam("day_since"),
                     _OUTBOX.c.state.in_(_COUNTED))
              .group_by(_OUTBOX.c.rcpt))
_AGENT_TICKET = (core_select(_OUTBOX.c.rcpt, _OUTBOX.c.ticket_id, func.count())
                 .where(_OUTBOX.c.rcpt.in_(bindparam("agents", expanding=True)),
                        _OUTBOX.c.ticket_id.in_(bindparam("tickets", expanding=True)),
                        _OUTBOX.c.automatic.is_(True), _OUTBOX.c.created_at >= bindparam("since"),
                        _OUTBOX.c.state.in_(_COUNTED))
                 .group_by(_OUTBOX.c.rcpt, _OUTBOX.c.ticket_id))
_SUPPRESSION = Suppression.__table__
_SUPPRESSED = core_select(_SUPPRESSION.c.address, _SUPPRESSION.c.until).where(
    _SUPPRESSION.c.address.in_(bindparam("addresses", expanding=True)),
    _SUPPRESSION.c.until > bindparam("now"))


def suppress(*, session: Session, address: str, until: dt.datetime, reason: str) -> None:
    row = session.get(Suppression, address)
    if row is None:
        session.add(Suppression(address=address, until=until, reason=reason[:500]))
    else:
        row.until, row.reason = max(row.until, until), reason[:500]


def mark_bounced(*, session: Session, outbox_id: int, error: str) -> str | None:
    """Record a delivery report on the mail it answers; returns its recipient."""
    row = session.get(Outbox, outbox_id)
    if row is None:
        return None
    row.last_error = error[:2000]
    if row.state == OutboxState.SENT:
        row.state = OutboxState.BOUNCED
    return row.rcpt


def by_verp(*, session: Session, mail_from: str) -> Outbox | None:
    return session.exec(select(Outbox).options(defer(Outbox.raw))
                        .where(Outbox.mail_from == mail_from)).first()


# what the sender needs of a claimed mail: to compose it (if it has no bytes yet) and to
# write its attempt back
_SENDING = (_OUTBOX.c.id, _OUTBOX.c.mail_from, _OUTBOX.c.rcpt, _OUTBOX.c.raw,
            _OUTBOX.c.attempts, _OUTBOX.c.created_at, _OUTBOX.c.subject, _OUTBOX.c.last_error,
            _OUTBOX.c.next_attempt_at, _OUTBOX.c.template, _OUTBOX.c.payload,
            _OUTBOX.c.ticket_id, _OUTBOX.c.message_id)


def claim_due(*, session: Session, now: dt.datetime, lease: dt.timedelta,
              limit: int) -> list[Any]:
    """Lease up to `limit` due mails and return them (`_SENDING` columns, in the order they
    fell due) in one statement: an UPDATE of the due rows, RETURNING what sending needs.
    A mail leased by an instance that died is due again once its lease runs out; on
    PostgreSQL rows another instance is claiming right now are skipped, not waited for."""
    rows = session.connection().execute(_CLAIM, {"now": now, "new_lease": now + lease,
                                                 "limit": limit}).all()
    return sorted(rows, key=lambda r: (r.next_attempt_at, r.id))


def next_due(*, session: Session) -> dt.datetime | None:
    """When the earliest pending mail falls due (a retry's backoff), or None."""
    return session.connection().execute(_NEXT_DUE).scalar()


# the sender's statements, run every few seconds or more often: built once
_DUE = (core_select(_OUTBOX.c.id)
        .where(or_(_OUTBOX.c.state == OutboxState.PENDING,
                   (_OUTBOX.c.state == OutboxState.SENDING)
                   & (_OUTBOX.c.lease_until < bindparam("now"))))
        .where(_OUTBOX.c.next_attempt_at <= bindparam("now"))
        .order_by(_OUTBOX.c.next_attempt_at, _OUTBOX.c.id).limit(bindparam("limit"))
        .with_for_update(skip_locked=True))
_CLAIM = (update(_OUTBOX).where(_OUTBOX.c.id.in_(_DUE.scalar_subquery()))
          .values(state=OutboxState.SENDING, lease_until=bindparam("new_lease"))
          .returning(*_SENDING))
_NEXT_DUE = core_select(func.min(_OUTBOX.c.next_attempt_at)).where(
    _OUTBOX.c.state == OutboxState.PENDING)


def outbox_rows(*, session: Session, state: str | None = None, limit: int = 1000) -> list[Outbox]:
    q = select(Outbox).options(defer(Outbox.raw), defer(Outbox.payload))
    if state:
        q = q.where(Outbox.state == state)
    return list(session.exec(q.order_by(Outbox.id.desc()).limit(limit)))


def dropped_since(*, session: Session, since: dt.datetime) -> int:
    return session.exec(select(func.count()).select_from(Outbox).where(
        Outbox.state == OutboxState.DROPPED, Outbox.created_at >= since)).one()


def oldest_pending(*, session: Session) -> tuple[dt.datetime, str] | None:
    return session.exec(select(Outbox.created_at, Outbox.last_error)
                        .where(Outbox.state.in_([OutboxState.PENDING, OutboxState.SENDING]))
                        .order_by(Outbox.created_at).limit(1)).first()


def compact_sent(*, session: Session, before: dt.datetime) -> int:
    """Drop the bytes and the plan of mail the relay took before `before`; the row stays
    (small) so a reply can still be threaded and our own mail recognised."""
    result = session.execute(update(Outbox).where(
        Outbox.state.in_([OutboxState.SENT, OutboxState.BOUNCED, OutboxState.DROPPED,
                          OutboxState.CANCELLED]),
        Outbox.created_at < before, or_(Outbox.template != "", Outbox.raw != b""))
        .values(raw=b"", payload=None, template="")
        .execution_options(synchronize_session=False))
    return result.rowcount or 0


def make_due(*, session: Session, ids: Sequence[int] | None, now: dt.datetime) -> int:
    """Make failed (or the listed failed or pending) mails due now; returns how many."""
    q = update(Outbox).where(Outbox.state.in_([OutboxState.FAILED, OutboxState.PENDING]))
    q = q.where(Outbox.id.in_(list(ids))) if ids else q.where(Outbox.state == OutboxState.FAILED)
    return session.execute(q.values(state=OutboxState.PENDING, next_attempt_at=now)
                           .execution_options(synchronize_session=False)).rowcount or 0


# --- an admin stepping in (outbox retry/cancel, suppression list/remove) ----------------


def admin_view(*, session: Session, ids: Iterable[int]) -> dict[int, tuple[str, str, bool, str]]:
    """id -> (state, recipient, whether it still has its content, last error)."""
    ids = sorted(set(ids))
    if not ids:
        return {}
    content = or_(Outbox.template != "", Outbox.raw != b"")
    rows = session.exec(select(Outbox.id, Outbox.state, Outbox.rcpt, content, Outbox.last_error)
                        .where(Outbox.id.in_(ids)))
    return {i: (state, rcpt, bool(has), err or "") for i, state, rcpt, has, err in rows}


def requeue(*, session: Session, outbox_id: int, from_states: Iterable[str],
            now: dt.datetime) -> bool:
    """Make one mail due now if it is still in one of `from_states`."""
    result = session.execute(update(Outbox).where(
        Outbox.id == outbox_id, Outbox.state.in_(list(from_states))).values(
        state=OutboxState.PENDING, next_attempt_at=now, lease_until=None)
        .execution_options(synchronize_session=False))
    return bool(result.rowcount)


def cancel(*, session: Session, outbox_id: int, from_states: Iterable[str],
           last_error: str) -> bool:
    """Cancel one mail if it is still in one of `from_states`."""
    result = session.execute(update(Outbox).where(
        Outbox.id == outbox_id, Outbox.state.in_(list(from_states))).values(
        state=OutboxState.CANCELLED, lease_until=None, last_error=last_error[:2000])
        .execution_options(synchronize_session=False))
    return bool(result.rowcount)


def suppressions(*, session: Session, now: dt.datetime) -> list[Suppression]:
    """The suppressions in force, the newest first."""
    return list(session.exec(select(Suppression).where(Suppression.until > now)
                             .order_by(Suppression.created_at.desc(), Suppression.address)))


def unsuppress(*, session: Session, address: str, now: dt.datetime) -> int:
    """Lift the suppressions in force for an address (any case); returns how many."""
    result = session.execute(delete(Suppression).where(
        func.lower(Suppression.address) == address.lower(), Suppression.until > now)
        .execution_options(synchronize_session=False))
    return result.rowcount or 0
