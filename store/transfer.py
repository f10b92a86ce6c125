"""Queries behind `mailgate export` and `mailgate import`: a ticket with everything
stored about it, as plain rows, and the same rows written back.

Each takes a keyword-only `session` and never commits. Rows are dicts of column values;
ids are the caller's to map (a ticket keeps its number only when it is free).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, SQLModel, select

from store import desk, inbox, tickets
from store.db import BLOB_PIECES, large_blob, read_blob
from store.models import (
    Agent,
    Attachment,
    ImportedExport,
    Inbound,
    Message,
    Project,
    ThreadRef,
    Ticket,
    TicketContact,
)


def columns(row: SQLModel, *, leave_out: Iterable[str] = ()) -> dict[str, Any]:
    skip = set(leave_out)
    return {c.name: getattr(row, c.name) for c in row.__table__.columns if c.name not in skip}


# --- reading ------------------------------------------------------------------------------


def ticket_numbers(*, session: Session, project_id: int | None) -> list[int]:
    q = select(Ticket.id).where(Ticket.deleted_at.is_(None)).order_by(Ticket.id)
    if project_id is not None:
        q = q.where(Ticket.project_id == project_id)
    return list(session.exec(q))


def ticket_rows(*, session: Session, number: int) -> dict[str, Any] | None:
    """The ticket, its project, people, messages (each with its raw mail and inbound
    row, when kept), attachments (with their bytes), log and thread references."""
    t = session.get(Ticket, number)
    if t is None:
        return None
    staff = {a.id: a.email for a in session.exec(select(Agent).where(
        Agent.id.in_([i for i in (t.assignee_id, t.owner_id) if i is not None])))}
    messages = tickets.ticket_messages(session=session, ticket_id=number)
    files = tickets.attachments_of(session=session, message_ids=[m.id for m in messages])
    inbound = {r.id: r for r in session.exec(select(Inbound).where(Inbound.id.in_(
        [m.inbound_id for m in messages if m.inbound_id is not None])))} if messages else {}
    return {
        "ticket": t, "project": session.get(Project, t.project_id),
        "assignee": staff.get(t.assignee_id), "owner": staff.get(t.owner_id),
        "contacts": tickets.ticket_contacts(session=session, ticket_id=number),
        "messages": [(m, desk.raw_of_message(session=session, message=m),
                      inbound.get(m.inbound_id),
                      [(a, _file_bytes(session, a)) for a in files[m.id]]) for m in messages],
        "events": tickets.ticket_events(session=session, ticket_id=number),
        "thread_refs": sorted(set(session.exec(select(ThreadRef.msgid)
                                               .where(ThreadRef.ticket_id == number))))}


def _file_bytes(session: Session, a: Attachment) -> bytes:
    if large_blob(session, a.size):
        return bytes(read_blob(session, "attachment", "data", a.id, a.size))
    return bytes(session.exec(select(Attachment.data).where(Attachment.id == a.id)).one())


# --- writing ------------------------------------------------------------------------------


def imported(*, session: Session, export_id: str) -> ImportedExport | None:
    return session.get(ImportedExport, export_id)


def mark_imported(*, session: Session, export_id: str, source: str, tickets_map: str) -> None:
    session.add(ImportedExport(export_id=export_id, source=source[:2000], tickets=tickets_map))


def taken_numbers(*, session: Session, numbers: Iterable[int]) -> set[int]:
    numbers = sorted(set(numbers))
    return set(session.exec(select(Ticket.id).where(Ticket.id.in_(numbers)))) if numbers \
        else set()


def taken_dedup_keys(*, session: Session, keys: Iterable[str]) -> set[str]:
    keys = sorted(set(k for k in keys if k))
    return set(session.exec(select(Message.dedup_key).where(Message.dedup_key.in_(keys)))) \
        if keys else set()


def insert_ticket(*, session: Session, values: dict[str, Any], number: int | None) -> int:
    """Insert with the number given (free, checked by the caller) or a new one."""
    if number is not None:
        values = {**values, "id": number}
    return session.connection().execute(Ticket.__table__.insert().returning(
        Ticket.__table__.c.id), values).scalar_one()


def fix_ticket_sequence(*, session: Session) -> None:
    """Tickets inserted with their own number leave PostgreSQL's sequence behind; move it
    past the highest number (SQLite takes the highest rowid + 1 by itself)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT setval(pg_get_serial_sequence('ticket', 'id'), "
                             "(SELECT max(id) FROM ticket))"))


def insert_inbound(*, session: Session, values: dict[str, Any], raw: bytes) -> int:
    """An incoming mail's row with its bytes (a large one in pieces, as the spool does)."""
    piecewise = len(raw) > BLOB_PIECES
    row_id = session.connection().execute(Inbound.__table__.insert().returning(
        Inbound.__table__.c.id), {**values, "raw": b"" if piecewise else raw}).scalar_one()
    if piecewise:
        inbox.write_pieces(session=session, inbound_id=row_id, pieces=inbox.slices(raw))
    return row_id


def insert_one(*, session: Session, model, values: dict[str, Any]) -> int:
    return session.connection().execute(model.__table__.insert().returning(
        model.__table__.c.id), values).scalar_one()


def add_contacts(*, session: Session, ticket_id: int,
                 people: Sequence[tuple[int, str]]) -> None:
    tickets.insert_rows(session=session, model=TicketContact, rows=[
        {"ticket_id": ticket_id, "contact_id": c, "role": role} for c, role in people])


def agents_by_email(*, session: Session, emails: Iterable[str]) -> dict[str, int]:
    emails = sorted(set(e for e in emails if e))
    return dict(session.exec(select(Agent.email, Agent.id).where(Agent.email.in_(emails)))) \
        if emails else {}

