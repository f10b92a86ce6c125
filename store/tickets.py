"""Queries about tickets, their messages, participants, thread references and log.

Each takes a keyword-only `session` and never commits. The lookups the mail pipeline
makes take many tickets at once and answer with one statement; the writes are plain
inserts and updates (SQLAlchemy Core, no ORM objects on the hot path).
"""

from __future__ import annotations

import datetime as dt
from collections import namedtuple
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Select, bindparam, delete, func, or_, update
from sqlalchemy.orm import defer
from sqlmodel import Session, select

from store import later
from store.db import empty_value, large_write, write_blob
from store.models import (
    Attachment,
    Contact,
    Event,
    Message,
    Project,
    ThreadRef,
    Ticket,
    TicketContact,
    utcnow,
)

# --- lookups for a batch of mail --------------------------------------------------------


def tickets_with_project(*, session: Session, numbers: Iterable[int],
                         ) -> list[tuple[TicketRow, ProjectRow]]:
    """Each ticket with its project, as plain rows (read only; the tables' column names
    as attributes): Core, one statement, no ORM objects."""
    numbers = sorted(set(numbers))
    if not numbers:
        return []
    cut = len(_TICKET_COLUMNS)
    return [(TicketRow._make(r[:cut]), ProjectRow._make(r[cut:]))
            for r in session.connection().execute(_WITH_PROJECT, {"numbers": numbers})]


_TICKET_COLUMNS = tuple(Ticket.__table__.c)
_PROJECT_COLUMNS = tuple(Project.__table__.c)
TicketRow = namedtuple("TicketRow", [c.key for c in _TICKET_COLUMNS])
ProjectRow = namedtuple("ProjectRow", [c.key for c in _PROJECT_COLUMNS])
_WITH_PROJECT = (select(*_TICKET_COLUMNS, *_PROJECT_COLUMNS)
                 .join_from(Ticket.__table__, Project.__table__,
                            Project.__table__.c.id == Ticket.__table__.c.project_id)
                 .where(Ticket.__table__.c.id.in_(bindparam("numbers", expanding=True))))


def people_of(*, session: Session, numbers: Iterable[int]) -> dict[int, list[tuple[str, str, str]]]:
    """(email, name, role) of everyone on the customer side of each ticket, requester first."""
    numbers = sorted(set(numbers))
    out: dict[int, list[tuple[str, str, str]]] = {n: [] for n in numbers}
    if not numbers:
        return out
    for ticket_id, email, name, role in session.connection().execute(
            _PEOPLE_OF, {"numbers": numbers}):
        out[ticket_id].append((email, name, role))
    return out


def thread_index(*, session: Session, msgids: Iterable[str]) -> dict[str, int]:
    msgids = sorted(set(m for m in msgids if m))
    if not msgids:
        return {}
    rows = session.connection().execute(_THREAD_INDEX, {"msgids": msgids})
    return {m: t for m, t in rows}   # the newest reference wins


def thread_heads(*, session: Session, numbers: Iterable[int], latest: int = 10,
                 ) -> dict[int, list[str]]:
    """For each ticket: its first Message-ID and its `latest` newest, oldest first (what
    a References header carries)."""
    numbers = sorted(set(numbers))
    out: dict[int, list[str]] = {n: [] for n in numbers}
    if not numbers:
        return out
    rows = session.connection().execute(_THREAD_HEADS, {"numbers": numbers, "latest": latest})
    for ticket_id, msgid in rows:
        if msgid not in out[ticket_id]:
            out[ticket_id].append(msgid)
    return out


def last_inbound_ids(*, session: Session, numbers: Iterable[int]) -> dict[int, str]:
    """The Message-ID of each ticket's latest incoming message that has one."""
    numbers = sorted(set(numbers))
    if not numbers:
        return {}
    return dict(session.connection().execute(_LAST_INBOUND, {"numbers": numbers}).all())


# The batch lookups above, built once (Core, expanding IN lists): building and caching a
# statement per call cost about as much as running it.
_REFS, _PEOPLE, _CONTACTS_T = ThreadRef.__table__, TicketContact.__table__, Contact.__table__
_PEOPLE_OF = (select(_PEOPLE.c.ticket_id, _CONTACTS_T.c.email, _CONTACTS_T.c.name,
                     _PEOPLE.c.role)
              .join(_CONTACTS_T, _CONTACTS_T.c.id == _PEOPLE.c.contact_id)
              .where(_PEOPLE.c.ticket_id.in_(bindparam("numbers", expanding=True)))
              .order_by(_PEOPLE.c.ticket_id, _PEOPLE.c.role.desc(), _CONTACTS_T.c.email))
_THREAD_INDEX = (select(_REFS.c.msgid, _REFS.c.ticket_id)
                 .where(_REFS.c.msgid.in_(bindparam("msgids", expanding=True)))
                 .order_by(_REFS.c.id))


def _thread_heads() -> Select:
    newest = func.row_number().over(partition_by=_REFS.c.ticket_id,
                                    order_by=_REFS.c.id.desc()).label("newest")
    oldest = func.row_number().over(partition_by=_REFS.c.ticket_id,
                                    order_by=_REFS.c.id).label("oldest")
    ranked = (select(_REFS.c.ticket_id, _REFS.c.msgid, _REFS.c.id, newest, oldest)
              .where(_REFS.c.ticket_id.in_(bindparam("numbers", expanding=True))).subquery())
    return (select(ranked.c.ticket_id, ranked.c.msgid)
            .where(or_(ranked.c.newest <= bindparam("latest"), ranked.c.oldest == 1))
            .order_by(ranked.c.ticket_id, ranked.c.id))


def _last_inbound() -> Select:
    m = Message.__table__
    newest = func.row_number().over(partition_by=m.c.ticket_id,
                                    order_by=m.c.id.desc()).label("newest")
    ranked = (select(m.c.ticket_id, m.c.message_id, newest)
              .where(m.c.ticket_id.in_(bindparam("numbers", expanding=True)),
                     m.c.direction == "in", m.c.message_id != "").subquery())
    return select(ranked.c.ticket_id, ranked.c.message_id).where(ranked.c.newest == 1)


_THREAD_HEADS, _LAST_INBOUND = _thread_heads(), _last_inbound()


def tickets_of_sender(*, session: Session, email: str, limit: int = 500) -> tuple[int, ...]:
    return tuple(session.exec(select(TicketContact.ticket_id)
                              .join(Contact, Contact.id == TicketContact.contact_id)
                              .where(Contact.email == email)
                              .order_by(TicketContact.ticket_id.desc()).limit(limit)))


# --- writes -------------------------------------------------------------------------------


# Statements built once: executed with parameters on the session's connection, they are
# compiled once and cached, which is most of the cost of a small insert.
_TICKETS, _MESSAGES = Ticket.__table__, Message.__table__
_INSERT_TICKET = _TICKETS.insert().returning(_TICKETS.c.id)
_INSERT_MESSAGE = _MESSAGES.insert().returning(_MESSAGES.c.id)


def insert_ticket(*, session: Session, values: dict[str, Any]) -> int:
    return session.connection().execute(_INSERT_TICKET, values).scalar_one()


def update_ticket(*, session: Session, number: int, values: dict[str, Any]) -> None:
    """Change a ticket. While the unit holds inserts (`store.later`: a batch of mail,
    which keeps its tickets' current values in their contexts) the change waits for the
    batch's one statement per set of columns; otherwise it is made at once."""
    later.update(session, _TICKETS, number, values)


def insert_message(*, session: Session, values: dict[str, Any]) -> int:
    """Store a message; its id is known at once. While the unit holds inserts
    (`store.later`) the row waits for the batch's one executemany under an id reserved
    for it: nothing in the batch reads a message back."""
    if not later.holding(session):
        return session.connection().execute(_INSERT_MESSAGE, values).scalar_one()
    row_id = later.next_id(session, _MESSAGES)
    later.insert(session, _MESSAGES, [{**values, "id": row_id}])
    return row_id


def reserve_message_ids(*, session: Session, count: int) -> None:
    """Ids for the next `count` messages the unit holds (one statement for the batch)."""
    later.reserve_ids(session, _MESSAGES, count)


def update_message(*, session: Session, message_id: int, values: dict[str, Any]) -> None:
    session.connection().execute(update(_MESSAGES).where(_MESSAGES.c.id == message_id), values)


def message_msgid(*, session: Session, message_id: int) -> str:
    return session.exec(select(Message.message_id).where(Message.id == message_id)).first() or ""


def insert_rows(*, session: Session, model, rows: Sequence[dict[str, Any]]) -> None:
    """Plain bulk insert (one executemany) of dicts into `model`'s table."""
    if rows:
        session.connection().execute(model.__table__.insert(), list(rows))


def insert_later(*, session: Session, model, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows nothing reads back in this transaction: held until it commits when
    the unit holds inserts (`store.later`), else at once."""
    later.insert(session, model.__table__, rows)


_ATTACHMENTS = Attachment.__table__
_INSERT_ATTACHMENT = _ATTACHMENTS.insert().returning(_ATTACHMENTS.c.id)


def insert_attachments(*, session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Store files (held with their message while the unit holds inserts); a large one
    goes in a piece at a time (store.db.write_blob), after the held rows."""
    small = [r for r in rows if not large_write(session, len(r["data"]))]
    insert_later(session=session, model=Attachment, rows=small)
    if len(small) == len(rows):
        return
    later.flush(session)
    conn = session.connection()
    for r in rows:
        if large_write(session, len(r["data"])):
            rest = {k: v for k, v in r.items() if k != "data"}
            row_id = conn.execute(_INSERT_ATTACHMENT.values(
                **rest, data=empty_value(session, len(r["data"])))).scalar_one()
            write_blob(session, "attachment", "data", row_id, r["data"])


def add_ticket_contacts(*, session: Session, ticket_id: int,
                        contacts: Sequence[tuple[int, str]], new: bool = False) -> None:
    """Put (contact id, role) on a ticket unless already there. A `new` ticket has
    nobody on it yet: its rows are held with the batch's other inserts (nothing in the
    batch reads them back; its people travel in the batch's ticket context)."""
    if not contacts:
        return
    have = set() if new else set(session.exec(select(TicketContact.contact_id)
                                              .where(TicketContact.ticket_id == ticket_id)))
    rows = [{"ticket_id": ticket_id, "contact_id": cid, "role": role}
            for cid, role in dict(contacts).items() if cid not in have]
    (insert_later if new else insert_rows)(session=session, model=TicketContact, rows=rows)


def remove_ticket_contacts(*, session: Session, ticket_id: int, emails: Iterable[str]) -> None:
    emails = list(emails)
    if emails:
        ids = select(Contact.id).where(Contact.email.in_(emails))
        session.execute(delete(TicketContact).where(
            TicketContact.ticket_id == ticket_id, TicketContact.role != "requester",
            TicketContact.contact_id.in_(ids)))


def add_thread_ref(*, session: Session, msgid: str, ticket_id: int) -> None:
    if msgid:
        # every column given, as the outbox's references are: one run of held rows
        insert_later(session=session, model=ThreadRef, rows=[{
            "msgid": msgid, "ticket_id": ticket_id, "created_at": utcnow()}])


# --- reading for people (CLI) ---------------------------------------------------------------


def ticket(*, session: Session, number: int) -> Ticket | None:
    return session.get(Ticket, number)


def ticket_contacts(*, session: Session, ticket_id: int) -> list[tuple[Contact, str]]:
    rows = session.exec(select(Contact, TicketContact.role)
                        .join(TicketContact, TicketContact.contact_id == Contact.id)
                        .where(TicketContact.ticket_id == ticket_id)
                        .order_by(TicketContact.role.desc(), Contact.email))
    return [(c, r) for c, r in rows]


def list_tickets(*, session: Session, project: str | None = None, status: str | None = None,
                 search: str | None = None, include_deleted: bool = False,
                 limit: int = 1000, statuses: Iterable[str] | None = None,
                 assignee_id: int | None = None, requester: str | None = None,
                 priority: int | None = None, due_before: dt.date | None = None,
                 sort: str = "number") -> list[tuple[Ticket, str]]:
    """Tickets, newest first (or by `sort`: updated | priority | due); `statuses`
    keeps those in any of them, `due_before` those due before that day."""
    q = select(Ticket, Project.slug).join(Project, Project.id == Ticket.project_id)
    if assignee_id is not None:
        q = q.where(Ticket.assignee_id == assignee_id)
    if requester:
        q = q.join(Contact, Contact.id == Ticket.requester_id).where(
            func.lower(Contact.email) == requester.strip().lower())
    if priority is not None:
        q = q.where(Ticket.priority == priority)
    if due_before is not None:
        q = q.where(Ticket.due_date.is_not(None), Ticket.due_date < due_before)
    if search:
        # literal substring: %, _ and \ in the search text match themselves
        q = q.where(func.lower(Ticket.subject).contains(search.lower(), autoescape=True))
    if project:
        q = q.where(Project.slug == project)
    if status:
        q = q.where(Ticket.status == status)
    if statuses is not None:
        q = q.where(Ticket.status.in_(sorted(statuses)))
    if not include_deleted:
        q = q.where(Ticket.deleted_at.is_(None))
    order = {"updated": (Ticket.updated_at.desc(),),
             "priority": (Ticket.priority.desc(), Ticket.updated_at.desc()),
             # undated last, on both databases (NULLS LAST is not portable SQL)
             "due": (Ticket.due_date.is_(None), Ticket.due_date)}.get(sort, ())
    return [(t, s) for t, s in session.exec(q.order_by(*order, Ticket.id.desc()).limit(limit))]


def ticket_messages(*, session: Session, ticket_id: int) -> list[Message]:
    return list(session.exec(select(Message).where(Message.ticket_id == ticket_id)
                             .order_by(Message.created_at, Message.id)))


def last_message(*, session: Session, ticket_id: int) -> Message | None:
    return session.exec(select(Message).where(Message.ticket_id == ticket_id)
                        .order_by(Message.id.desc()).limit(1)).first()


def ticket_events(*, session: Session, ticket_id: int) -> list[Event]:
    return list(session.exec(select(Event).where(Event.ticket_id == ticket_id)
                             .order_by(Event.at, Event.id)))


def attachments_of(*, session: Session, message_ids: Iterable[int],
                   with_data: bool = False) -> dict[int, list[Attachment]]:
    ids = list(message_ids)
    out: dict[int, list[Attachment]] = {i: [] for i in ids}
    if not ids:
        return out
    q = select(Attachment).where(Attachment.message_row_id.in_(ids)).order_by(Attachment.id)
    if not with_data:
        q = q.options(defer(Attachment.data))
    for a in session.exec(q):
        out[a.message_row_id].append(a)
    return out


# --- timers -----------------------------------------------------------------------------


def open_ticket_count(*, session: Session) -> int:
    """Tickets neither closed nor deleted."""
    return session.exec(select(func.count()).select_from(Ticket).where(
        Ticket.closed_at.is_(None), Ticket.deleted_at.is_(None))).one()


def open_tickets_page(*, session: Session, after_id: int, limit: int,
                      workflows: Iterable[str] | None = None,
                      quiet_since: dt.datetime | None = None,
                      due_by: dt.date | None = None) -> list[tuple[Ticket, Project]]:
    """Open (not closed, not deleted) tickets with ids above `after_id`, in id order: a
    page of the timer scan. `workflows` limits it to projects on those workflows,
    `quiet_since` to tickets without activity since then, `due_by` to tickets due on or
    before that day."""
    query = (select(Ticket, Project).join(Project, Project.id == Ticket.project_id)
             .where(Ticket.id > after_id, Ticket.deleted_at.is_(None),
                    Ticket.closed_at.is_(None)))
    if workflows is not None:
        query = query.where(Project.workflow.in_(sorted(workflows)))
    if quiet_since is not None:
        query = query.where(Ticket.updated_at <= quiet_since)
    if due_by is not None:
        query = query.where(Ticket.due_date.is_not(None), Ticket.due_date <= due_by)
    return list(session.exec(query.order_by(Ticket.id).limit(limit)).all())


def event_details(*, session: Session, numbers: Iterable[int], kind: str,
                  ) -> dict[int, list[tuple[dt.datetime, str]]]:
    """(time, detail) of each ticket's events of one kind: which reminders went out."""
    numbers = sorted(set(numbers))
    out: dict[int, list[tuple[dt.datetime, str]]] = {n: [] for n in numbers}
    if not numbers:
        return out
    for ticket_id, at, detail in session.exec(select(Event.ticket_id, Event.at, Event.detail)
                                              .where(Event.ticket_id.in_(numbers),
                                                     Event.kind == kind)):
        out[ticket_id].append((at, detail))
    return out


# --- admin changes across tickets --------------------------------------------------------


def project_tickets(*, session: Session, project_id: int) -> list[Ticket]:
    """The project's tickets that are not deleted, in number order."""
    return list(session.exec(select(Ticket).where(Ticket.project_id == project_id,
                                                  Ticket.deleted_at.is_(None))
                             .order_by(Ticket.id)))


def inline_files(*, session: Session, message_id: int) -> list[tuple[int, str, str]]:
    """(id, file name, Content-ID) of a message's attachments that have a Content-ID."""
    return [tuple(r) for r in session.exec(
        select(Attachment.id, Attachment.filename, Attachment.content_id)
        .where(Attachment.message_row_id == message_id, Attachment.content_id != "")
        .order_by(Attachment.id))]
