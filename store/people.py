"""Queries about projects, contacts and agents. Each takes a keyword-only `session` and
never commits; batch lookups take many keys and answer with one query."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, delete, update
from sqlmodel import Session, select

from store.models import (
    Agent,
    AgentProject,
    Contact,
    ContactProject,
    Project,
    ProjectRole,
    Ticket,
    TicketContact,
)


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
    return senders_projects(session=session, emails=[email]).get(email, ())


def senders_projects(*, session: Session, emails: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """The projects each address is a registered contact of."""
    return {e: s for e, s in senders_contacts(session=session, emails=emails).items() if s}


def senders_contacts(*, session: Session, emails: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Each address that is a contact at all -> the projects it is a registered contact
    of (maybe none): one statement tells the caller who is known, too."""
    session.flush()     # as an ORM query would: a contact linked just now counts
    return {e: slugs for e, (_, _, slugs) in known_contacts(session=session,
                                                            emails=emails).items()}


def known_contacts(*, session: Session, emails: Iterable[str],
                   ) -> dict[str, tuple[int, str, tuple[str, ...]]]:
    """Each address that is a contact -> (its id, its name, the projects it is a
    registered contact of): one statement."""
    emails = sorted(set(e for e in emails if e))
    if not emails:
        return {}
    out: dict[str, tuple[int, str, list[str]]] = {}
    for email, contact_id, name, slug in session.connection().execute(
            _SENDERS, {"emails": emails}):
        out.setdefault(email, (contact_id, name, []))[2].extend(
            [slug] if slug is not None else [])
    return {e: (i, n, tuple(sorted(s))) for e, (i, n, s) in out.items()}


# built once (Core, an expanding IN list): building it per batch cost as much as running it
_SENDERS = (select(Contact.__table__.c.email, Contact.__table__.c.id, Contact.__table__.c.name,
                   Project.__table__.c.slug)
            .outerjoin(ContactProject.__table__,
                       ContactProject.__table__.c.contact_id == Contact.__table__.c.id)
            .outerjoin(Project.__table__,
                       Project.__table__.c.id == ContactProject.__table__.c.project_id)
            .where(Contact.__table__.c.email.in_(bindparam("emails", expanding=True))))


def contacts_of_project(*, session: Session, project: Project) -> list[Contact]:
    return list(session.exec(
        select(Contact).join(ContactProject, ContactProject.contact_id == Contact.id)
        .where(ContactProject.project_id == project.id).order_by(Contact.email)))


def all_contacts(*, session: Session) -> list[Contact]:
    return list(session.exec(select(Contact).order_by(Contact.email)))


def agent_by_email(*, session: Session, email: str) -> Agent | None:
    return session.exec(select(Agent).where(Agent.email == email)).first()


def agents(*, session: Session) -> list[Agent]:
    return list(session.exec(select(Agent).order_by(Agent.email)))


def agents_project_slugs(*, session: Session, ids: Iterable[int]) -> dict[int, list[str]]:
    """The slugs of the projects each agent is limited to (one query for all)."""
    ids = sorted(set(ids))
    out: dict[int, list[str]] = {}
    if not ids:
        return out
    for agent_id, slug in session.exec(
            select(AgentProject.agent_id, Project.slug)
            .join(Project, Project.id == AgentProject.project_id)
            .where(AgentProject.agent_id.in_(ids)).order_by(Project.slug)):
        out.setdefault(agent_id, []).append(slug)
    return out


def active_agents_with_projects(*, session: Session) -> list[tuple[Agent, frozenset[str]]]:
    """Every active agent with the slugs of its projects (two queries in all)."""
    staff = list(session.exec(select(Agent).where(Agent.active).order_by(Agent.email)))
    slugs: dict[int, set[str]] = {}
    for agent_id, slug in session.exec(select(AgentProject.agent_id, Project.slug)
                                       .join(Project, Project.id == AgentProject.project_id)):
        slugs.setdefault(agent_id, set()).add(slug)
    return [(a, frozenset(slugs.get(a.id, ()))) for a in staff]


def agent_emails(*, session: Session, ids: Iterable[int]) -> dict[int, str]:
    ids = sorted(set(ids))
    if not ids:
        return {}
    return dict(session.connection().execute(_AGENT_EMAILS, {"ids": ids}).all())


def contact_emails(*, session: Session, ids: Iterable[int]) -> dict[int, str]:
    ids = sorted(set(ids))
    if not ids:
        return {}
    return dict(session.exec(select(Contact.id, Contact.email).where(Contact.id.in_(ids))).all())


def agent_ids(*, session: Session, emails: Iterable[str]) -> dict[str, int]:
    emails = sorted(set(e for e in emails if e))
    if not emails:
        return {}
    return dict(session.connection().execute(_AGENT_IDS, {"emails": emails}).all())


# asked for every batch (its tickets' agents) and for tickets that change hands: built
# once, as Core (an ORM select costs more to set up than these take to run)
_AGENTS = Agent.__table__
_AGENT_EMAILS = select(_AGENTS.c.id, _AGENTS.c.email).where(
    _AGENTS.c.id.in_(bindparam("ids", expanding=True)))
_AGENT_IDS = select(_AGENTS.c.email, _AGENTS.c.id).where(
    _AGENTS.c.email.in_(bindparam("emails", expanding=True)))


_CONTACTS = Contact.__table__
_INSERT_CONTACT = _CONTACTS.insert().returning(_CONTACTS.c.id)
_FIND_CONTACT = select(_CONTACTS.c.id, _CONTACTS.c.name).where(
    _CONTACTS.c.email == bindparam("email"))


def contact_row(*, session: Session, email: str, name: str = "") -> tuple[int, str]:
    """(id, name) of the contact with this address, made if it is new (Core: hot path)."""
    conn = session.connection()
    row = conn.execute(_FIND_CONTACT, {"email": email}).first()
    if row is None:
        return conn.execute(_INSERT_CONTACT, {"email": email, "name": name}).scalar_one(), name
    if name and not row.name:
        name_contact(session=session, contact_id=row.id, name=name)
        return row.id, name
    return row.id, row.name


def name_contact(*, session: Session, contact_id: int, name: str) -> None:
    session.connection().execute(_NAME_CONTACT, {"contact_id": contact_id, "new_name": name})


_NAME_CONTACT = update(_CONTACTS).where(_CONTACTS.c.id == bindparam("contact_id")).values(
    name=bindparam("new_name"))


_LINKS = ContactProject.__table__
_FIND_LINK = select(_LINKS.c.contact_id).where(_LINKS.c.contact_id == bindparam("c"),
                                               _LINKS.c.project_id == bindparam("p"))


def link_contact(*, session: Session, contact_id: int, project_id: int) -> bool:
    """Register a contact to a project; False if it already was (Core: hot path)."""
    conn = session.connection()
    if conn.execute(_FIND_LINK, {"c": contact_id, "p": project_id}).first() is not None:
        return False
    conn.execute(_LINKS.insert(), {"contact_id": contact_id, "project_id": project_id})
    return True


def project_ids(*, session: Session) -> dict[str, int]:
    return dict(session.exec(select(Project.slug, Project.id)).all())


# --- removing people (admin) ----------------------------------------------------------------


def unassign_agent(*, session: Session, agent_id: int) -> list[int]:
    """Unassign every ticket (deleted ones too) from an agent, as handler and as owner;
    returns the numbers of the tickets it handled that are not deleted."""
    shown = list(session.exec(select(Ticket.id).where(Ticket.assignee_id == agent_id,
                                                      Ticket.deleted_at.is_(None))
                              .order_by(Ticket.id)))
    session.execute(update(Ticket).where(Ticket.assignee_id == agent_id)
                    .values(assignee_id=None).execution_options(synchronize_session=False))
    # the owner column points at the agent too: a removed agent owns nothing any more
    session.execute(update(Ticket).where(Ticket.owner_id == agent_id)
                    .values(owner_id=None).execution_options(synchronize_session=False))
    return shown


def delete_agent(*, session: Session, agent_id: int) -> None:
    """Delete an agent, its project memberships and the roles it played (its tickets
    must be unassigned first)."""
    session.execute(delete(AgentProject).where(AgentProject.agent_id == agent_id))
    session.execute(delete(ProjectRole).where(ProjectRole.agent_id == agent_id))
    session.execute(delete(Agent).where(Agent.id == agent_id))


def unlink_contact(*, session: Session, contact_id: int, project_id: int | None = None) -> int:
    """Unregister a contact from one project (all when None); returns how many links went."""
    q = delete(ContactProject).where(ContactProject.contact_id == contact_id)
    if project_id is not None:
        q = q.where(ContactProject.project_id == project_id)
    return session.execute(q).rowcount or 0


def delete_contact_if_unused(*, session: Session, contact_id: int) -> bool:
    """Delete a contact no ticket names (as requester or participant) and no project
    lists; False (and kept) if any does: the tickets keep who wrote them."""
    for users in (select(Ticket.id).where(Ticket.requester_id == contact_id),
                  select(TicketContact.ticket_id).where(TicketContact.contact_id == contact_id),
                  select(ContactProject.project_id).where(ContactProject.contact_id == contact_id)):
        if session.exec(users.limit(1)).first() is not None:
            return False
    session.execute(delete(Contact).where(Contact.id == contact_id))
    return True


def rename_project(*, session: Session, project_id: int, name: str) -> None:
    session.execute(update(Project).where(Project.id == project_id).values(name=name))


def update_project(*, session: Session, project_id: int, values: dict[str, str]) -> None:
    """Set some of a project's plain fields (language, domain, contact person, ...)."""
    if values:
        session.execute(update(Project).where(Project.id == project_id).values(**values))
