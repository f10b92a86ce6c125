"""Queries over the tables. Each takes a keyword-only `session` and never commits.

Lookups that routing needs are shaped into the plain values of `routing.rules` here,
so routing itself never sees a session.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import func, or_, text, update
from sqlalchemy.orm import defer
from sqlmodel import Session, select

from routing.rules import TicketView
from store.models import (
    Agent,
    AgentProject,
    Attachment,
    Contact,
    ContactProject,
    Event,
    Inbound,
    Message,
    Outbox,
    Project,
    Setting,
    Suppression,
    ThreadRef,
    Ticket,
    TicketContact,
)

# --- settings ---------------------------------------------------------------------------


def get_setting(*, session: Session, key: str) -> str | None:
    row = session.get(Setting, key)
    return row.value if row else None


def set_setting(*, session: Session, key: str, value: str) -> None:
    row = session.get(Setting, key)
    if row is None:
        session.add(Setting(key=key, value=value))
    else:
        row.value = value


# --- projects and people ----------------------------------------------------------------


def project_by_slug(*, session: Session, slug: str) -> Project | None:
    return session.exec(select(Project).where(Project.slug == slug)).first()


def projects(*, session: Session) -> list[Project]:
    return list(session.exec(select(Project).order_by(Project.slug)))


def projects_by_key(*, session: Session, keys: Iterable[str]) -> dict[str, str]:
    keys = list(keys)
    if not keys:
        return {}
    rows = session.exec(select(Project.key, Project.slug).where(Project.key.in_(keys)))
    return {k: s for k, s in rows}


def contact_by_email(*, session: Session, email: str) -> Contact | None:
    return session.exec(select(Contact).where(Contact.email == email)).first()


def ensure_contact(*, session: Session, email: str, name: str = "") -> Contact:
    contact = contact_by_email(session=session, email=email)
    if contact is None:
        contact = Contact(email=email, name=name)
        session.add(contact)
        session.flush()
    elif name and not contact.name:
        contact.name = name
    return contact


def link_contact_project(*, session: Session, contact: Contact, project: Project) -> bool:
    """Register a contact to a project; False if it already was."""
    if session.get(ContactProject, (contact.id, project.id)):
        return False
    session.add(ContactProject(contact_id=contact.id, project_id=project.id))
    return True


def contact_project_slugs(*, session: Session, email: str) -> tuple[str, ...]:
    rows = session.exec(
        select(Project.slug).join(ContactProject, ContactProject.project_id == Project.id)
        .join(Contact, Contact.id == ContactProject.contact_id).where(Contact.email == email))
    return tuple(sorted(rows))


def contacts_of_project(*, session: Session, project: Project) -> list[Contact]:
    return list(session.exec(
        select(Contact).join(ContactProject, ContactProject.contact_id == Contact.id)
        .where(ContactProject.project_id == project.id).order_by(Contact.email)))


def agent_by_email(*, session: Session, email: str) -> Agent | None:
    return session.exec(select(Agent).where(Agent.email == email)).first()


def agents(*, session: Session) -> list[Agent]:
    return list(session.exec(select(Agent).order_by(Agent.email)))


def agent_project_slugs(*, session: Session, agent: Agent) -> list[str]:
    rows = session.exec(select(Project.slug).join(AgentProject,
                                                   AgentProject.project_id == Project.id)
                        .where(AgentProject.agent_id == agent.id))
    return sorted(rows)


def agents_of_project(*, session: Session, project_id: int) -> list[Agent]:
    """Active agents who work on a project: admins, all-project agents and members."""
    member = select(AgentProject.agent_id).where(AgentProject.project_id == project_id)
    return list(session.exec(
        select(Agent).where(Agent.active)
        .where(or_(Agent.role == "admin", Agent.all_projects, Agent.id.in_(member)))
        .order_by(Agent.email)))


def agent_can_work_on(*, session: Session, agent: Agent, project_id: int) -> bool:
    if not agent.active:
        return False
    if agent.role == "admin" or agent.all_projects:
        return True
    return session.get(AgentProject, (agent.id, project_id)) is not None


# --- tickets ----------------------------------------------------------------------------


def ticket(*, session: Session, number: int) -> Ticket | None:
    return session.get(Ticket, number)


def ticket_contacts(*, session: Session, ticket_id: int) -> list[tuple[Contact, str]]:
    rows = session.exec(select(Contact, TicketContact.role)
                        .join(TicketContact, TicketContact.contact_id == Contact.id)
                        .where(TicketContact.ticket_id == ticket_id)
                        .order_by(TicketContact.role.desc(), Contact.email))
    return [(c, r) for c, r in rows]


def add_ticket_contact(*, session: Session, ticket_id: int, contact: Contact,
                       role: str = "cc") -> bool:
    if session.get(TicketContact, (ticket_id, contact.id)):
        return False
    session.add(TicketContact(ticket_id=ticket_id, contact_id=contact.id, role=role))
    return True


def remove_ticket_contact(*, session: Session, ticket_id: int, email: str) -> None:
    contact = contact_by_email(session=session, email=email)
    if contact is None:
        return
    row = session.get(TicketContact, (ticket_id, contact.id))
    if row is not None and row.role != "requester":
        session.delete(row)


def ticket_participants(*, session: Session, t: Ticket) -> frozenset[str]:
    people = {c.email for c, _ in ticket_contacts(session=session, ticket_id=t.id)}
    people.update(a.email for a in agents_of_project(session=session, project_id=t.project_id))
    if t.assignee_id:
        assignee = session.get(Agent, t.assignee_id)
        if assignee and assignee.active:
            people.add(assignee.email)
    return frozenset(people)


def ticket_views(*, session: Session, numbers: Iterable[int]) -> dict[int, TicketView]:
    numbers = sorted(set(numbers))
    if not numbers:
        return {}
    out = {}
    for t, slug in session.exec(select(Ticket, Project.slug)
                                .join(Project, Project.id == Ticket.project_id)
                                .where(Ticket.id.in_(numbers))):
        out[t.id] = TicketView(t.id, slug, t.deleted_at is not None,
                               ticket_participants(session=session, t=t))
    return out


def thread_index(*, session: Session, msgids: Iterable[str]) -> dict[str, int]:
    msgids = list(msgids)
    if not msgids:
        return {}
    rows = session.exec(select(ThreadRef.msgid, ThreadRef.ticket_id)
                        .where(ThreadRef.msgid.in_(msgids)).order_by(ThreadRef.id))
    return {m: t for m, t in rows}   # the newest reference wins


def add_thread_ref(*, session: Session, msgid: str, ticket_id: int) -> None:
    if msgid:
        session.add(ThreadRef(msgid=msgid, ticket_id=ticket_id))


def tickets_of_sender(*, session: Session, email: str, limit: int = 500) -> tuple[int, ...]:
    as_contact = (select(TicketContact.ticket_id)
                  .join(Contact, Contact.id == TicketContact.contact_id)
                  .where(Contact.email == email)
                  .order_by(TicketContact.ticket_id.desc()).limit(limit))
    return tuple(session.exec(as_contact))


def list_tickets(*, session: Session, project: str | None = None, status: str | None = None,
                 search: str | None = None, include_deleted: bool = False,
                 limit: int = 1000) -> list[tuple[Ticket, str]]:
    q = select(Ticket, Project.slug).join(Project, Project.id == Ticket.project_id)
    if search:
        # literal substring: %, _ and \ in the search text match themselves
        q = q.where(func.lower(Ticket.subject).contains(search.lower(), autoescape=True))
    if project:
        q = q.where(Project.slug == project)
    if status:
        q = q.where(Ticket.status == status)
    if not include_deleted:
        q = q.where(Ticket.deleted_at.is_(None))
    return [(t, s) for t, s in session.exec(q.order_by(Ticket.id.desc()).limit(limit))]


def ticket_messages(*, session: Session, ticket_id: int) -> list[Message]:
    return list(session.exec(select(Message).where(Message.ticket_id == ticket_id)
                             .order_by(Message.created_at, Message.id)))


def last_message(*, session: Session, ticket_id: int, direction: str | None = None,
                 ) -> Message | None:
    q = select(Message).where(Message.ticket_id == ticket_id)
    if direction:
        q = q.where(Message.direction == direction)
    return session.exec(q.order_by(Message.id.desc()).limit(1)).first()


def thread_msgids(*, session: Session, ticket_id: int, limit: int = 10) -> list[str]:
    """The ticket's first Message-ID and its latest ones, oldest first, for References."""
    first = session.exec(select(ThreadRef.msgid).where(ThreadRef.ticket_id == ticket_id)
                         .order_by(ThreadRef.id).limit(1)).first()
    latest = list(session.exec(select(ThreadRef.msgid).where(ThreadRef.ticket_id == ticket_id)
                               .order_by(ThreadRef.id.desc()).limit(limit)))
    ordered = ([first] if first else []) + list(reversed(latest))
    return list(dict.fromkeys(ordered))


def ticket_events(*, session: Session, ticket_id: int) -> list[Event]:
    return list(session.exec(select(Event).where(Event.ticket_id == ticket_id)
                             .order_by(Event.at, Event.id)))


def attachments_of(*, session: Session, message_ids: Iterable[int]) -> dict[int, list[Attachment]]:
    ids = list(message_ids)
    out: dict[int, list[Attachment]] = {i: [] for i in ids}
    if not ids:
        return out
    for a in session.exec(select(Attachment).options(defer(Attachment.data))
                          .where(Attachment.message_row_id.in_(ids)).order_by(Attachment.id)):
        out[a.message_row_id].append(a)
    return out


# --- inbound ----------------------------------------------------------------------------


def claim_inbound(*, session: Session, now: dt.datetime, lease: dt.timedelta,
                  limit: int) -> list[int]:
    """Take due pending rows (and rows whose worker died) and count the attempt now,
    so a mail that kills the process is still counted."""
    due = (select(Inbound.id)
           .where(or_(Inbound.state == "pending",
                      (Inbound.state == "processing") & (Inbound.lease_until < now)))
           .where(or_(Inbound.next_attempt_at.is_(None), Inbound.next_attempt_at <= now))
           .order_by(Inbound.id).limit(limit).with_for_update(skip_locked=True))
    ids = list(session.exec(due))
    if ids:
        session.execute(update(Inbound).where(Inbound.id.in_(ids))
                        .values(state="processing", attempts=Inbound.attempts + 1,
                                lease_until=now + lease))
    return ids


def inbound_rows(*, session: Session, state: str, limit: int = 1000,
                 offset: int = 0) -> list[Inbound]:
    return list(session.exec(select(Inbound).options(defer(Inbound.raw))
                             .where(Inbound.state == state)
                             .order_by(Inbound.id).offset(offset).limit(limit)))


def inbound_message(*, session: Session, inbound_id: int) -> Message | None:
    return session.exec(select(Message).where(Message.inbound_id == inbound_id)
                        .order_by(Message.id).limit(1)).first()


def message_by_dedup(*, session: Session, key: str) -> Message | None:
    return session.exec(select(Message).where(Message.dedup_key == key)).first()


def count_by_state(*, session: Session, model) -> dict[str, int]:
    rows = session.exec(select(model.state, func.count()).group_by(model.state))
    return {s: n for s, n in rows}


# --- outbox -----------------------------------------------------------------------------


def claim_outbox(*, session: Session, now: dt.datetime, lease: dt.timedelta,
                 limit: int) -> list[int]:
    due = (select(Outbox.id)
           .where(or_(Outbox.state == "pending",
                      (Outbox.state == "sending") & (Outbox.lease_until < now)))
           .where(Outbox.next_attempt_at <= now)
           .order_by(Outbox.next_attempt_at, Outbox.id).limit(limit)
           .with_for_update(skip_locked=True))
    ids = list(session.exec(due))
    if ids:
        session.execute(update(Outbox).where(Outbox.id.in_(ids))
                        .values(state="sending", lease_until=now + lease))
    return ids


def outbox_rows(*, session: Session, state: str | None = None, limit: int = 1000) -> list[Outbox]:
    q = select(Outbox).options(defer(Outbox.raw))
    if state:
        q = q.where(Outbox.state == state)
    return list(session.exec(q.order_by(Outbox.id.desc()).limit(limit)))


def lock_recipient(*, session: Session, rcpt: str) -> None:
    """Serialise the cap check for one address across instances (PostgreSQL; SQLite's
    write lock already does)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:r))"), {"r": rcpt})


def automatic_mail_count(*, session: Session, rcpt: str, since: dt.datetime) -> int:
    return session.exec(select(func.count()).select_from(Outbox).where(
        Outbox.rcpt == rcpt, Outbox.automatic.is_(True), Outbox.created_at >= since)).one()


def suppressed_until(*, session: Session, address: str, now: dt.datetime) -> dt.datetime | None:
    row = session.get(Suppression, address)
    return row.until if row is not None and row.until > now else None


def suppress(*, session: Session, address: str, until: dt.datetime, reason: str) -> None:
    row = session.get(Suppression, address)
    if row is None:
        session.add(Suppression(address=address, until=until, reason=reason[:500]))
    else:
        row.until, row.reason = max(row.until, until), reason[:500]


def outbox_by_verp(*, session: Session, mail_from: str) -> Outbox | None:
    return session.exec(select(Outbox).where(Outbox.mail_from == mail_from)).first()


def sent_message_id(*, session: Session, msgid: str) -> bool:
    return session.exec(select(Outbox.id).where(Outbox.message_id == msgid)).first() is not None


def next_outbox_due(*, session: Session) -> dt.datetime | None:
    return session.exec(select(func.min(Outbox.next_attempt_at))
                        .where(Outbox.state == "pending")).first()


# --- timers and reminders -----------------------------------------------------------------


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


def lock_job(*, session: Session, name: str) -> None:
    """Serialise one timed job's transactions across instances (PostgreSQL; SQLite's
    write transactions already are), so two instances never send the same reminder."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:n))"),
                        {"n": f"job:{name}"})


def event_details(*, session: Session, ticket_id: int, kind: str,
                  since: dt.datetime | None = None) -> frozenset[str]:
    """The details of a ticket's events of one kind (since a moment): which reminders
    went out already."""
    query = select(Event.detail).where(Event.ticket_id == ticket_id, Event.kind == kind)
    if since is not None:
        query = query.where(Event.at >= since)
    return frozenset(session.exec(query).all())
