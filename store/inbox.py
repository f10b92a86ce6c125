"""Queries over the durable inbox: raw mail as it arrived and its processing state.

Each takes a keyword-only `session` and never commits. Rows are claimed with a lease
(SKIP LOCKED where the database has it), so a process that dies mid-batch leaves its
mail to be taken again once the lease runs out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, case, delete, func, or_, update
from sqlalchemy.orm import defer
from sqlmodel import Session, select

from store.db import BLOB_PIECES, large_blob, read_blob
from store.models import Inbound, InboundPiece, InboundState, Message


def claim_inbound(*, session: Session, now: dt.datetime, lease: dt.timedelta,
                  limit: int, mine: Iterable[int] = ()) -> list[int]:
    """Take due pending rows (and rows whose worker died) and count the attempt now,
    so a mail that kills the process is still counted. `mine`: rows the caller claimed
    before and applies before these (they hold no sender's newer mail back)."""
    conn = session.connection()
    senders = dict(conn.execute(_DUE, {"now": now, "limit": limit}).all())
    # on SQLite one instance owns the database: no other claim can hold a sender's
    # older mail, so the order query is only for several instances on PostgreSQL
    ids = (list(senders) if conn.dialect.name == "sqlite"
           else _in_sender_order(session, senders, now, set(mine)))
    if ids:
        conn.execute(_TAKE, {"ids": ids, "new_lease": now + lease})
    return ids


# claiming runs before every batch: its statements are built once (Core)
_INBOUND = Inbound.__table__
_DUE = (select(_INBOUND.c.id, _INBOUND.c.mail_from)
        .where(or_(_INBOUND.c.state == InboundState.PENDING,
                   (_INBOUND.c.state == InboundState.PROCESSING)
                   & (_INBOUND.c.lease_until < bindparam("now"))))
        .where(or_(_INBOUND.c.next_attempt_at.is_(None),
                   _INBOUND.c.next_attempt_at <= bindparam("now")))
        .order_by(_INBOUND.c.id).limit(bindparam("limit")).with_for_update(skip_locked=True))
_TAKE = (update(_INBOUND).where(_INBOUND.c.id.in_(bindparam("ids", expanding=True)))
         .values(state=InboundState.PROCESSING, attempts=_INBOUND.c.attempts + 1,
                 lease_until=bindparam("new_lease")))


def _in_sender_order(session: Session, senders: dict[int, str], now: dt.datetime,
                     mine: set[int]) -> list[int]:
    """Leave out a mail while an older one of its envelope sender is still to be applied
    outside this claim (in another instance's batch, or skipped as locked by one): one
    sender's mails reach their ticket in the order they arrived, whichever instances
    take them. An older mail waiting for a retry later does not hold the newer ones.
    `senders`: claimable id -> envelope sender, in id order; one query (the live rows
    are found through ix_inbound_state_next)."""
    ids = list(senders)
    if not ids:
        return ids
    ordered = sorted({m for m in senders.values() if m and m != UNKNOWN_SENDER})
    if not ordered:
        return ids
    live = or_((Inbound.state == InboundState.PROCESSING) & (Inbound.lease_until >= now),
               (Inbound.state == InboundState.PENDING)
               & or_(Inbound.next_attempt_at.is_(None), Inbound.next_attempt_at <= now))
    oldest = dict(session.exec(select(Inbound.mail_from, func.min(Inbound.id))
                               .where(Inbound.mail_from.in_(ordered), live,
                                      Inbound.id.not_in([*ids, *mine]))
                               .group_by(Inbound.mail_from)).all())
    return [i for i in ids if senders[i] not in oldest or i < oldest[senders[i]]]


# The stored envelope sender of a mail whose envelope nobody told us (piped without
# --sender or Return-Path). Not "": that is the null sender, which marks a bounce. The
# column holds text, so "unknown" is a value no reverse-path can be (no ingest path
# stores angle brackets); `claimed` turns it back into None.
UNKNOWN_SENDER = "<unknown>"


@dataclass(frozen=True)
class ClaimedRow:
    id: int
    raw: bytes | bytearray
    rcpt_tos: list[str]
    mail_from: str | None     # "" the null sender, None unknown
    source: str
    attempts: int
    size: int = 0
    pieced: bool = False      # `raw` is only the first piece of the mail (see `claimed`)


def claimed(*, session: Session, ids: Sequence[int]) -> list[ClaimedRow]:
    """The claimed rows with their bytes, in id order. A mail stored in pieces comes
    with only its first piece in `raw` and `pieced` set (the rest: `raw_pieces`); a large
    one stored whole by an older version is read whole."""
    if not ids:
        return []
    small = case((Inbound.size <= BLOB_PIECES, Inbound.raw), else_=None)
    rows = session.exec(select(Inbound.id, small, Inbound.size, Inbound.rcpt_tos,
                               Inbound.mail_from, Inbound.source, Inbound.attempts)
                        .where(Inbound.id.in_(list(ids)),
                               Inbound.state == InboundState.PROCESSING)
                        .order_by(Inbound.id)).all()
    out = []
    for row_id, raw, size, rcpt_tos, mail_from, source, attempts in rows:
        pieced = False
        if raw is None:
            first = session.exec(select(InboundPiece.data).where(
                InboundPiece.inbound_id == row_id, InboundPiece.seq == 0)).first()
            raw, pieced = (first, True) if first is not None else (None, False)
        if raw is None:
            raw = _stored_whole(session, row_id, size)
        out.append(ClaimedRow(row_id, raw, rcpt_tos,
                              None if mail_from == UNKNOWN_SENDER else mail_from, source,
                              attempts, size, pieced))
    return out


def finish(*, session: Session, rows: Sequence[dict[str, Any]], now: dt.datetime) -> None:
    """Set each row's final state: dicts with row_id, state, reason, ticket_id."""
    if not rows:
        return
    session.connection().execute(_FINISH, [
        {"row_id": r["row_id"], "new_state": r["state"], "why": r["reason"][:2000],
         "ticket": r.get("ticket_id"), "done_at": now} for r in rows])


_FINISH = (update(Inbound.__table__).where(Inbound.__table__.c.id == bindparam("row_id"))
           .values(state=bindparam("new_state"), reason=bindparam("why"),
                   ticket_id=bindparam("ticket"), processed_at=bindparam("done_at"),
                   lease_until=None))


def release(*, session: Session, ids: Sequence[int], reason: str,
            next_attempt_at: dt.datetime) -> None:
    """Put claimed rows back in line to be tried again later."""
    if ids:
        session.execute(update(Inbound).where(Inbound.id.in_(list(ids)))
                        .values(state=InboundState.PENDING, reason=reason[:2000],
                                lease_until=None, next_attempt_at=next_attempt_at))


def existing_dedup(*, session: Session, keys: Iterable[str]) -> dict[str, tuple[int, int, Any]]:
    """dedup key -> (message id, inbound id, ticket id) of mail stored before."""
    keys = sorted(set(k for k in keys if k))
    if not keys:
        return {}
    rows = session.connection().execute(_DEDUP, {"keys": keys})
    return {k: (m, i, t) for k, m, i, t in rows}


_MESSAGE = Message.__table__
_DEDUP = select(_MESSAGE.c.dedup_key, _MESSAGE.c.id, _MESSAGE.c.inbound_id,
                _MESSAGE.c.ticket_id).where(
    _MESSAGE.c.dedup_key.in_(bindparam("keys", expanding=True)))   # every batch: built once


def inbound_rows(*, session: Session, state: str, limit: int = 1000,
                 offset: int = 0) -> list[Inbound]:
    return list(session.exec(select(Inbound).options(defer(Inbound.raw))
                             .where(Inbound.state == state)
                             .order_by(Inbound.id).offset(offset).limit(limit)))


def inbound_row(*, session: Session, inbound_id: int) -> Inbound | None:
    return session.exec(select(Inbound).options(defer(Inbound.raw))
                        .where(Inbound.id == inbound_id)).first()


def raw_of(*, session: Session, inbound_id: int) -> bytes | bytearray | None:
    """A mail's bytes, whole, however they are stored: b"" when retention let them go,
    None when there is no such row."""
    row = session.exec(select(func.length(Inbound.raw), Inbound.size)
                       .where(Inbound.id == inbound_id)).first()
    if row is None:
        return None
    stored, size = row
    if not stored:            # a large mail is kept a piece per row
        return _joined(session, inbound_id, size) or b""
    return _stored_whole(session, inbound_id, stored)


def _stored_whole(session: Session, inbound_id: int, size: int) -> bytes | bytearray:
    """Bytes kept in the row itself (a large mail by an older version: on SQLite read a
    piece at a time into one buffer)."""
    if large_blob(session, size):
        return read_blob(session, "inbound", "raw", inbound_id, size)
    return session.exec(select(Inbound.raw).where(Inbound.id == inbound_id)).one()


# --- large mail, a piece per row (store.models.InboundPiece) -------------------------------
_PIECES = InboundPiece.__table__


def slices(data) -> Iterator[memoryview]:
    """A buffer cut into the pieces `write_pieces` stores, without copying it."""
    view = memoryview(data)
    for at in range(0, len(view), BLOB_PIECES):
        yield view[at:at + BLOB_PIECES]


def write_pieces(*, session: Session, inbound_id: int, pieces: Iterable) -> None:
    """Store a large mail's bytes a piece per row (its `raw` stays empty); `pieces` is
    read one at a time, so no more than one piece is held here."""
    conn = session.connection()
    for seq, piece in enumerate(pieces):
        conn.execute(_PIECES.insert(), {"inbound_id": inbound_id, "seq": seq, "data": piece})


def raw_pieces(*, session: Session, inbound_id: int) -> Iterator[bytes]:
    """A large mail's bytes, a piece at a time (nothing when it is stored whole)."""
    seqs = list(session.exec(select(InboundPiece.seq).where(
        InboundPiece.inbound_id == inbound_id).order_by(InboundPiece.seq)))
    for seq in seqs:
        yield session.exec(select(InboundPiece.data).where(
            InboundPiece.inbound_id == inbound_id, InboundPiece.seq == seq)).one()


def pieces_size(*, session: Session, inbound_id: int) -> int:
    return session.exec(select(func.coalesce(func.sum(func.length(InboundPiece.data)), 0))
                        .where(InboundPiece.inbound_id == inbound_id)).one()


def drop_pieces(*, session: Session, inbound_ids) -> None:
    """Let go of the pieces of these rows (`inbound_ids`: ids or a select of them)."""
    session.execute(delete(InboundPiece).where(InboundPiece.inbound_id.in_(inbound_ids))
                    .execution_options(synchronize_session=False))


def _joined(session: Session, inbound_id: int, size: int) -> bytearray | None:
    """A large mail's pieces read into one buffer of its size, or None if it is stored
    whole (written before pieces, or imported)."""
    out, at = None, 0
    for piece in raw_pieces(session=session, inbound_id=inbound_id):
        if out is None:
            out = bytearray(size)
        out[at:at + len(piece)] = piece
        at += len(piece)
    if out is not None and at != size:
        del out[at:]
    return out


def inbound_message(*, session: Session, inbound_id: int) -> Message | None:
    return session.exec(select(Message).where(Message.inbound_id == inbound_id)
                        .order_by(Message.id).limit(1)).first()


def inbound_messages(*, session: Session, inbound_ids: Iterable[int]) -> dict[int, Message]:
    ids = sorted(set(inbound_ids))
    if not ids:
        return {}
    out: dict[int, Message] = {}
    for m in session.exec(select(Message).where(Message.inbound_id.in_(ids))
                          .order_by(Message.id)):
        out.setdefault(m.inbound_id, m)
    return out


def count_by_state(*, session: Session, model) -> dict[str, int]:
    rows = session.exec(select(model.state, func.count()).group_by(model.state))
    return {s: n for s, n in rows}


def inbound_by_ids(*, session: Session, ids: Iterable[int]) -> dict[int, Inbound]:
    ids = sorted(set(ids))
    if not ids:
        return {}
    return {r.id: r for r in session.exec(select(Inbound).options(defer(Inbound.raw))
                                          .where(Inbound.id.in_(ids)))}


def forget(*, session: Session, inbound_id: int, from_state: str, state: str, reason: str,
           now: dt.datetime) -> bool:
    """Let go of a mail's bytes for good, if it is still in `from_state`; the small row
    stays, so the same IMAP message is not fetched again and the counts stay true."""
    result = session.execute(update(Inbound).where(
        Inbound.id == inbound_id, Inbound.state == from_state).values(
        state=state, raw=b"", reason=reason[:2000], processed_at=now, lease_until=None,
        next_attempt_at=None).execution_options(synchronize_session=False))
    if result.rowcount:
        drop_pieces(session=session, inbound_ids=[inbound_id])
    return bool(result.rowcount)
