"""Projects, contacts and agents: the handlers behind `mailgate project|contact|agent`.

They validate input and raise `ServiceError` with a sentence for the user; they run
inside the caller's unit of work and never commit.
"""

from __future__ import annotations

import re

from sqlmodel import Session

from mailgate.handlers import ServiceError
from routing.actors import NOTIFY_EVENTS
from routing.addresses import PROJECT_KEY_RE, is_valid_address, normalize_address
from store import people, settings
from store.models import Agent, AgentProject, Contact, Project

# bumped by every change to projects and agents, so processes that cache them reload
SITE_VERSION = "site.version"
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
ROLES = ("agent", "admin")


def valid_email(email: str) -> str:
    address = normalize_address(email)
    if not address or not is_valid_address(address) or "\n" in email or "\r" in email:
        raise ServiceError(f"not a valid email address: {email[:100]!r}")
    return address


def add_project(session: Session, *, slug: str, name: str, key: str | None = None,
                customers: list[str] = (), workflow: str = "support") -> Project:
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
    if people.projects_by_key(session=session, keys=[key]):
        raise ServiceError(f"project key {key!r} is used by another project")
    addresses = [valid_email(c) for c in customers]
    project = Project(slug=slug, name=name.strip(), key=key, workflow=workflow)
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
              project_slugs: list[str] = ()) -> Agent:
    address = valid_email(email)
    if not name.strip() or "\n" in name or "\r" in name:
        raise ServiceError("agent name must be one non-empty line")
    if people.agent_by_email(session=session, email=address):
        raise ServiceError(f"agent {address} exists already")
    projects = [require_project(session, slug) for slug in project_slugs]
    agent = Agent(email=address, name=name.strip(), role="admin" if admin else "agent",
                  all_projects=not projects)
    session.add(agent)
    session.flush()
    for p in projects:
        session.add(AgentProject(agent_id=agent.id, project_id=p.id))
    settings.bump(session=session, key=SITE_VERSION)
    return agent


def set_workflow(session: Session, *, slug: str, workflow: str) -> str:
    """Put a project on another workflow; returns the old one."""
    project = require_project(session, slug)
    old, project.workflow = project.workflow, workflow
    settings.bump(session=session, key=SITE_VERSION)
    return old


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
