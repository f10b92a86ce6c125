"""Queries behind `mailgate trace`: one incoming mail and everything it caused.

Each takes a keyword-only `session` and never commits; one query per kind of record.
Raw bytes are never loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, func, text
from sqlalchemy.orm import defer
from sqlmodel import Session, select

from store.inbox import pieces_size
from store.models import Attachment, Event, Inbound, Message, Outbox, Ticket


def create_trace_index(conn: Connection) -> None:
    """Mails sent because of an incoming one, found without a scan (not in the model:
    see `Outbox.inbound_id`)."""
    conn.execute(text("CREATE INDEX IF NOT EXISTS ix_outbox_inbound_id "
                      "ON outbox (inbound_id)"))


@dataclass(frozen=True)
class Path:
    inbound: Inbound
    stored: int                        # bytes still kept (0: pruned or dropped)
    message: Message | None
    attachments: int
    ticket: Ticket | None
    events: list[Event]
    outbox: list[Outbox]


def inbound_ids_by_msgid(*, session: Session, msgid: str) -> list[int]:
    """Incoming mails stored with this Message-ID (without angle brackets), oldest first."""
    return list(session.exec(select(Message.inbound_id).where(
        Message.message_id == msgid, Message.inbound_id.is_not(None))
        .order_by(Message.inbound_id)))


def outbox_by_msgid(*, session: Session, msgid: str) -> Outbox | None:
    return session.exec(select(Outbox).options(defer(Outbox.raw), defer(Outbox.payload))
                        .where(Outbox.message_id == msgid).order_by(Outbox.id)).first()


def path_of(*, session: Session, inbound_id: int) -> Path | None:
    row = session.exec(select(Inbound).options(defer(Inbound.raw))
                       .where(Inbound.id == inbound_id)).first()
    if row is None:
        return None
    stored = session.exec(select(func.length(Inbound.raw))
                          .where(Inbound.id == inbound_id)).one() or \
        pieces_size(session=session, inbound_id=inbound_id)
    message = session.exec(select(Message).where(Message.inbound_id == inbound_id)
                           .order_by(Message.id).limit(1)).first()
    files = 0
    if message is not None:
        files = session.exec(select(func.count()).select_from(Attachment)
                             .where(Attachment.message_row_id == message.id)).one()
    number = row.ticket_id or (message.ticket_id if message is not None else None)
    ticket = session.get(Ticket, number) if number is not None else None
    events = list(session.exec(select(Event).where(Event.inbound_id == inbound_id)
                               .order_by(Event.at, Event.id)))
    sent = list(session.exec(select(Outbox).options(defer(Outbox.raw), defer(Outbox.payload))
                             .where(Outbox.inbound_id == inbound_id).order_by(Outbox.id)))
    return Path(row, int(stored), message, int(files), ticket, events, sent)
