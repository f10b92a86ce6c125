"""Queries that let go of what is no longer needed ([retention] in the config).

Each takes a keyword-only `session`, never commits, and returns how many rows it
touched. Parsed messages and their attachments are never deleted here, except those of
mail marked spam (which never reached a ticket).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, or_, update
from sqlmodel import Session, select

from store.models import (
    Attachment,
    Inbound,
    InboundPiece,
    InboundState,
    Message,
    Outbox,
    OutboxState,
)

# processed for good: nothing will read the bytes again to decide (quarantined mail is
# kept for a retry, unassigned mail for an admin to file; spam is its own setting)
RAW_DONE = (InboundState.DONE, InboundState.DUPLICATE, InboundState.DROPPED,
            InboundState.BOUNCE)
# the relay took it, a guard stopped it or an admin cancelled it; failed mail stays shown
OUTBOX_DONE = (OutboxState.SENT, OutboxState.BOUNCED, OutboxState.DROPPED,
               OutboxState.CANCELLED)
DISMISSED = "dropped from the quarantine%"   # the reason `quarantine drop` writes


def prune_raw(*, session: Session, before: dt.datetime) -> int:
    """Let go of the bytes of mail processed before `before`; the row (size, checksum,
    envelope) and the parsed message stay."""
    result = session.execute(update(Inbound).where(
        Inbound.state.in_(RAW_DONE), Inbound.processed_at < before, Inbound.raw != b"")
        .values(raw=b"").execution_options(synchronize_session=False))
    pieced = list(session.exec(select(InboundPiece.inbound_id).distinct().where(
        InboundPiece.inbound_id.in_(select(Inbound.id).where(
            Inbound.state.in_(RAW_DONE), Inbound.processed_at < before)))))
    if pieced:                     # a large mail's bytes are kept a piece per row
        session.execute(delete(InboundPiece).where(InboundPiece.inbound_id.in_(pieced))
                        .execution_options(synchronize_session=False))
    return (result.rowcount or 0) + len(pieced)


def prune_spam(*, session: Session, before: dt.datetime) -> int:
    """Delete mail marked spam, and quarantined mail an admin dropped, processed before
    `before`: the rows, and the messages and files of spam (they are on no ticket)."""
    ids = list(session.exec(select(Inbound.id).where(
        Inbound.processed_at < before,
        or_(Inbound.state == InboundState.SPAM,
            (Inbound.state == InboundState.DROPPED) & Inbound.reason.like(DISMISSED)))))
    if not ids:
        return 0
    messages = select(Message.id).where(Message.inbound_id.in_(ids),
                                        Message.ticket_id.is_(None))
    session.execute(delete(Attachment).where(Attachment.message_row_id.in_(messages))
                    .execution_options(synchronize_session=False))
    session.execute(delete(Message).where(Message.inbound_id.in_(ids),
                                          Message.ticket_id.is_(None))
                    .execution_options(synchronize_session=False))
    # a message filed on a ticket after all keeps its text; it just forgets where from
    session.execute(update(Message).where(Message.inbound_id.in_(ids)).values(inbound_id=None)
                    .execution_options(synchronize_session=False))
    session.execute(delete(InboundPiece).where(InboundPiece.inbound_id.in_(ids))
                    .execution_options(synchronize_session=False))
    result = session.execute(delete(Inbound).where(Inbound.id.in_(ids))
                             .execution_options(synchronize_session=False))
    return result.rowcount or 0


def prune_outbox(*, session: Session, before: dt.datetime) -> int:
    """Delete outgoing mail that was done with (sent, bounced, stopped, cancelled) before
    `before`; the Message-IDs stay in the thread index, so replies still find their
    ticket."""
    result = session.execute(delete(Outbox).where(
        Outbox.state.in_(OUTBOX_DONE), Outbox.created_at < before)
        .execution_options(synchronize_session=False))
    return result.rowcount or 0
