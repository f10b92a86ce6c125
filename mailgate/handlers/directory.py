"""Projects, contacts and agents: the handlers behind `mailgate project|contact|agent`.

They validate input and raise `ServiceError` with a sentence for the user; they run
inside the caller's unit of work and never commit.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlmodel import Session

from mailgate.handlers import ServiceError
from mailgate.mail.templating import LANGUAGES
from routing.actors import NOTIFY_EVENTS
from routing.addresses import PROJECT_KEY_RE, is_valid_address, normalize_address
from store import people, settings, tickets
from store.models import Agent, AgentProject, Contact, Event, Project

# bumped by every change to projects and agents, so processes that cache them reload
SITE_VERSION = "site.version"
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


def valid_email(email: str) -> str:
    address = normalize_address(email)
    if not address or not is_valid_address(address) or "\n" in email or "\r" in email:
        raise ServiceError(f"not a valid email address: {email[:100]!r}")
    return address


def add_project(session: Session, *, slug: str, name: str, key: str | None = None,
                customers: list[str] = (), workflow: str = "support",
                group_keys: dict[str, str] | None = None, language: str = "en") -> Project:
    if not SLUG_RE.match(slug):
        raise ServiceError(f"project slug {slug!r} must be 1-40 lower-case letters, digits "
                           "or '-', starting with a letter or digit")
    key = (key or slug).lower()
    if not PROJECT_KEY_RE.match(key):
        raise ServiceError(f"project key {key!r} must be 1-40 lower-case letters, digits, "
                           "'-' or '_' (no dots: dotted plus-addresses are reply tokens)")
    if not name.strip() or "\n" in name:
        raise ServiceError("project name must be one non-empty line")
    if people.project_by_slug(session=session, slug=slug):
        raise ServiceError(f"project {slug!r} exists already")
    if key in (group_keys or {}):
        raise ServiceError(f"project key {key!r} is the address key of group "
                           f"{group_keys[key]} ([groups.{group_keys[key]}] key)")
    if people.projects_by_key(session=session, keys=[key]):
        raise ServiceError(f"project key {key!r} is used by another project")
    addresses = [valid_email(c) for c in customers]
    project = Project(slug=slug, name=name.strip(), key=key, workflow=workflow,
                      language=valid_language(language))
    session.add(project)
    session.flush()
    for address in addresses:
        contact = people.ensure_contact(session=session, email=address)
        people.link_contact_project(session=session, contact=contact, project=project)
    settings.bump(session=session, key=SITE_VERSION)
    return project


def require_project(session: Session, slug: str) -> Project:
    project = people.project_by_slug(session=session, slug=slug)
    if project is None:
        raise ServiceError(f"no project {slug!r} (see: mailgate project list)")
    return project


def add_contact(session: Session, *, email: str, project_slugs: list[str],
                name: str = "") -> tuple[Contact, list[str]]:
    """Register an address to projects; returns the contact and the newly linked slugs."""
    address = valid_email(email)
    if "\n" in name or "\r" in name:
        raise ServiceError("contact name must be one line")
    projects = [require_project(session, slug) for slug in project_slugs]
    contact = people.ensure_contact(session=session, email=address, name=name.strip())
    if name.strip():
        contact.name = name.strip()
    linked = [p.slug for p in projects
              if people.link_contact_project(session=session, contact=contact, project=p)]
    return contact, linked


def add_agent(session: Session, *, email: str, name: str, admin: bool = False,
              project_slugs: list[str] = (), force: bool = False) -> Agent:
    address = valid_email(email)
    if not name.strip() or "\n" in name or "\r" in name:
        raise ServiceError("agent name must be one non-empty line")
    if people.agent_by_email(session=session, email=address):
        raise ServiceError(f"agent {address} exists already")
    projects = [require_project(session, slug) for slug in project_slugs]
    if not force and people.contact_by_email(session=session, email=address):
        # as an agent, a customer address would run commands on its own tickets and
        # work on other projects' tickets: that must be meant, not a slip
        where = ", ".join(people.contact_project_slugs(session=session, email=address))
        scope = ", ".join(project_slugs) if projects else "every project"
        what = f"a customer contact (of {where})" if where else "a known customer address"
        raise ServiceError(f"{address} is {what}; as an agent it would work on {scope}; "
                           "add --force if that is intended")
    agent = Agent(email=address, name=name.strip(), role="admin" if admin else "agent",
                  all_projects=not projects)
    session.add(agent)
    session.flush()
    for p in projects:
        session.add(AgentProject(agent_id=agent.id, project_id=p.id))
    settings.bump(session=session, key=SITE_VERSION)
    return agent


def remove_agent(session: Session, *, email: str, now: dt.datetime) -> list[int]:
    """Remove an agent: its tickets become unassigned (an event on each), and the address
    has no agent authority any more, whatever tokens it holds. Returns those tickets."""
    address = normalize_address(email) or email.strip().lower()
    agent = people.agent_by_email(session=session, email=address)
    if agent is None:
        raise ServiceError(f"no agent {address[:254]} (see: mailgate agent list)")
    numbers = people.unassign_agent(session=session, agent_id=agent.id)
    statuses = {t.id: t.status for t, _ in tickets.tickets_with_project(session=session,
                                                                         numbers=numbers)}
    tickets.insert_rows(session=session, model=Event, rows=[
        {"ticket_id": n, "at": now, "actor": "admin", "kind": "assignee", "old": agent.email,
         "new": "", "status": statuses.get(n, ""), "detail": "agent removed"}
        for n in numbers])
    people.delete_agent(session=session, agent_id=agent.id)
    settings.bump(session=session, key=SITE_VERSION)
    return numbers


def remove_contact(session: Session, *, email: str,
                   project_slug: str | None = None) -> tuple[list[str], bool]:
    """Unregister an address from a project (from all without one): mail from it no
    longer opens tickets there by itself. Returns the slugs it left and whether the
    contact is gone entirely (it stays while tickets name it)."""
    address = normalize_address(email) or email.strip().lower()
    contact = people.contact_by_email(session=session, email=address)
    if contact is None:
        raise ServiceError(f"no contact {address[:254]} (see: mailgate contact list)")
    slugs = list(people.contact_project_slugs(session=session, email=contact.email))
    if project_slug is not None:
        project = require_project(session, project_slug)
        if project.slug not in slugs:
            raise ServiceError(f"{contact.email} is not a contact of {project.slug}")
        people.unlink_contact(session=session, contact_id=contact.id, project_id=project.id)
        return [project.slug], False
    people.unlink_contact(session=session, contact_id=contact.id)
    gone = people.delete_contact_if_unused(session=session, contact_id=contact.id)
    if not slugs and not gone:
        raise ServiceError(f"{contact.email} is not a contact of any project (it stays on "
                           "the tickets it wrote)")
    return slugs, gone


def rename_project(session: Session, *, slug: str, name: str) -> str:
    """Give a project another display name (its slug and addresses stay); returns the
    old name."""
    project = require_project(session, slug)
    if not name.strip() or "\n" in name or "\r" in name:
        raise ServiceError("project name must be one non-empty line")
    old = project.name
    people.rename_project(session=session, project_id=project.id, name=name.strip()[:200])
    settings.bump(session=session, key=SITE_VERSION)
    return old


PROJECT_FIELDS = {"language": 8, "domain": 253, "contact_person": 200,
                  "invitation_url": 2000, "signature": 20_000}   # and their longest value


def valid_language(language: str) -> str:
    if language not in LANGUAGES:
        raise ServiceError(f"language {language!r} is not one of {', '.join(LANGUAGES)}")
    return language


def set_project(session: Session, *, slug: str, values: dict[str, str]) -> Project:
    """Set a project's language and the fields its mails may name; "" clears a field."""
    project = require_project(session, slug)
    unknown = set(values) - set(PROJECT_FIELDS)
    if unknown:
        raise ServiceError(f"unknown project field(s): {', '.join(sorted(unknown))}")
    for name, value in values.items():
        if len(value) > PROJECT_FIELDS[name]:
            raise ServiceError(f"{name} is longer than {PROJECT_FIELDS[name]} characters")
        if name != "signature" and ("\n" in value or "\r" in value):
            raise ServiceError(f"{name} must be one line")
    if "language" in values:
        valid_language(values["language"])
    people.update_project(session=session, project_id=project.id, values=values)
    settings.bump(session=session, key=SITE_VERSION)
    session.refresh(project)
    return project


def notified_about(agent: Agent) -> list[str]:
    chosen = {e.strip() for e in (agent.notify or "").split(",")}
    return [e for e in NOTIFY_EVENTS if e in chosen]


def choose_notifications(session: Session, *, email: str, on: list[str],
                         off: list[str]) -> Agent:
    agent = people.agent_by_email(session=session, email=email.strip().lower())
    if agent is None:
        raise ServiceError(f"no agent {email}")
    chosen = (set(notified_about(agent)) | set(on)) - set(off)
    agent.notify = ",".join(e for e in NOTIFY_EVENTS if e in chosen)
    settings.bump(session=session, key=SITE_VERSION)
    return agent
