"""Queries for the agent's desk: a project's log (messages and events in time), the
done marks on messages, and the stored bytes behind a message or an attachment.

Each takes a keyword-only `session` and never commits; `set_done` is the one write,
called by `mailgate.handlers.desk` inside its unit of work.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import Connection, func, update
from sqlalchemy.orm import defer
from sqlmodel import Session, select

from store import inbox
from store.db import large_blob, read_blob
from store.models import Attachment, Event, Message, Outbox, Project, Ticket

# `log SLUG` (and `--undone`) walks these newest first and stops at its limit, whatever
# the size of the project's history
DESK_INDEXES = ("CREATE INDEX IF NOT EXISTS ix_message_created ON message (created_at, id)",
                "CREATE INDEX IF NOT EXISTS ix_message_undone ON message (created_at, id) "
                "WHERE direction = 'in' AND done_at IS NULL")


def create_desk_index(conn: Connection) -> None:
    for ddl in DESK_INDEXES:
        conn.exec_driver_sql(ddl)


def messages_on_tickets(*, session: Session, ids: Iterable[int]) -> dict[int, Message]:
    """The messages among `ids` that sit on a ticket that is not deleted."""
    ids = sorted(set(ids))
    if not ids:
        return {}
    rows = session.exec(select(Message).join(Ticket, Ticket.id == Message.ticket_id)
                        .options(defer(Message.html), defer(Message.full_text))
                        .where(Message.id.in_(ids), Ticket.deleted_at.is_(None)))
    return {m.id: m for m in rows}


def set_done(*, session: Session, ids: Iterable[int], at: dt.datetime | None,
             by: str) -> None:
    ids = sorted(set(ids))
    if ids:
        session.connection().execute(update(Message.__table__)
                                     .where(Message.__table__.c.id.in_(ids))
                                     .values(done_at=at, done_by=by))


def undone_by_project(*, session: Session) -> dict[str, int]:
    """slug -> incoming messages on live tickets nobody has ticked off yet."""
    rows = session.exec(select(Project.slug, func.count(Message.id))
                        .join(Ticket, Ticket.project_id == Project.id)
                        .join(Message, Message.ticket_id == Ticket.id)
                        .where(Message.direction == "in", Message.done_at.is_(None),
                               Ticket.deleted_at.is_(None))
                        .group_by(Project.slug))
    return {slug: n for slug, n in rows if n}


def project_log(*, session: Session, project_id: int, since: dt.datetime | None = None,
                until: dt.datetime | None = None, direction: str | None = None,
                done: bool | None = None, with_messages: bool = True,
                with_events: bool = True, limit: int = 2000,
                ) -> tuple[list[tuple[Message, Ticket]], list[tuple[Event, Ticket]]]:
    """The project's messages and events in the time range, oldest first (each list
    capped at `limit`, newest kept)."""
    msgs: list[tuple[Message, Ticket]] = []
    events: list[tuple[Event, Ticket]] = []
    # SQLite, without statistics, would start from the project's tickets and sort all
    # their messages; "+ 0" keeps it off that index, so it walks messages by time
    in_project = (Ticket.project_id + 0 if session.get_bind().dialect.name == "sqlite"
                  else Ticket.project_id) == project_id
    if with_messages:
        q = (select(Message, Ticket).join(Ticket, Ticket.id == Message.ticket_id)
             .options(defer(Message.html), defer(Message.full_text))
             .where(in_project, Ticket.deleted_at.is_(None)))
        if since:
            q = q.where(Message.created_at >= since)
        if until:
            q = q.where(Message.created_at < until)
        if direction:
            q = q.where(Message.direction == direction)
        if done:
            q = q.where(Message.done_at.is_not(None))
        elif done is False:     # what is left to do: incoming mail nobody ticked off
            q = q.where(Message.direction == "in", Message.done_at.is_(None))
        msgs = list(session.exec(q.order_by(Message.created_at.desc(), Message.id.desc())
                                 .limit(limit)))[::-1]
    if with_events:
        q = (select(Event, Ticket).join(Ticket, Ticket.id == Event.ticket_id)
             .where(Ticket.project_id == project_id, Ticket.deleted_at.is_(None)))
        if since:
            q = q.where(Event.at >= since)
        if until:
            q = q.where(Event.at < until)
        events = list(session.exec(q.order_by(Event.at.desc(), Event.id.desc())
                                   .limit(limit)))[::-1]
    return msgs, events


def status_changes(*, session: Session, numbers: Iterable[int],
                   ) -> dict[int, list[tuple[dt.datetime, str, str]]]:
    """(time, old, new) of each ticket's status events, oldest first: what a message's
    "status at that time" is read from."""
    numbers = sorted(set(numbers))
    out: dict[int, list[tuple[dt.datetime, str, str]]] = {n: [] for n in numbers}
    if not numbers:
        return out
    for ticket_id, at, old, new in session.exec(
            select(Event.ticket_id, Event.at, Event.old, Event.new)
            .where(Event.ticket_id.in_(numbers), Event.kind == "status")
            .order_by(Event.at, Event.id)):
        out[ticket_id].append((at, old, new))
    return out


def raw_of_message(*, session: Session, message: Message) -> bytes | None:
    """The mail as it arrived (the inbound row), else as it was sent (the outbox row
    with the same Message-ID), else None."""
    if message.inbound_id is not None:
        raw = inbox.raw_of(session=session, inbound_id=message.inbound_id)
        if raw:                    # retention may have let the bytes go
            return bytes(raw)
    if message.message_id:
        raw = session.exec(select(Outbox.raw).where(Outbox.message_id == message.message_id,
                                                    Outbox.raw != b"")
                           .order_by(Outbox.id).limit(1)).first()
        if raw:
            return bytes(raw)
    return None


def attachment(*, session: Session, attachment_id: int) -> tuple[Attachment, bytes] | None:
    """An attachment on a live ticket (or in the unassigned queue) with its bytes."""
    a = session.exec(select(Attachment).options(defer(Attachment.data))
                     .where(Attachment.id == attachment_id)).first()
    if a is None:
        return None
    m = session.get(Message, a.message_row_id)
    if m is not None and m.ticket_id is not None:
        t = session.get(Ticket, m.ticket_id)
        if t is None or t.deleted_at is not None:
            return None
    if large_blob(session, a.size):
        return a, bytes(read_blob(session, "attachment", "data", a.id, a.size))
    data = session.exec(select(Attachment.data).where(Attachment.id == attachment_id)).one()
    return a, bytes(data)


def status_at(changes: list[tuple[dt.datetime, str, str]], at: dt.datetime,
              current: str) -> str:
    """A ticket's status at `at`, from its status changes (oldest first): the new value
    of the last change at or before it, else the old value of the first change after
    it, else the status it has now."""
    before = [new for when, _, new in changes if when <= at]
    if before:
        return before[-1]
    return changes[0][1] if changes else current
