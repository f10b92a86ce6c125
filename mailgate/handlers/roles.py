"""Workflow roles per project: the handler behind `mailgate project role`.

Validates input and raises `ServiceError` with a sentence for the user; runs inside the
caller's unit of work and never commits.
"""

from __future__ import annotations

from sqlmodel import Session

from mailgate.handlers import ServiceError
from mailgate.handlers.directory import SITE_VERSION, require_project
from routing.roles import CUSTOMER, find_role, role_label, workflow_roles
from routing.workflow import workflow_named
from store import people, roles, settings
from store.models import Project


def set_role(session: Session, workflows, *, slug: str, role: str,
             emails: list[str]) -> tuple[str, tuple[str, ...]]:
    """Make exactly the agents `emails` play `role` in project `slug` (none: unmap it).
    Returns the role's key and the agents. Refuses a role the project's workflow does
    not name, the customer role (the ticket's customers play it), and addresses that
    are no active agent of the project."""
    project = require_project(session, slug)
    wf = workflow_named(workflows, project.workflow)
    known = workflow_roles(wf)
    found = find_role(role, known)
    if found is None:
        raise ServiceError(f"workflow {wf.name} of project {slug} has no role {role[:60]!r} "
                           f"(roles: {', '.join(known) or 'none'})")
    if found == CUSTOMER:
        raise ServiceError(f"the role {CUSTOMER} is played by each ticket's customers; "
                           "it takes no agents")
    wanted = list(dict.fromkeys(e.strip().lower() for e in emails))
    agents = {a.email: (a, slugs) for a, slugs in
              people.active_agents_with_projects(session=session)}
    for email in wanted:
        if email not in agents:
            raise ServiceError(f"{email[:254]} is no agent (see: mailgate agent list)")
        agent, slugs = agents[email]
        if not (agent.all_projects or agent.role == "admin" or slug in slugs):
            raise ServiceError(f"agent {email} does not work on project {slug}")
    roles.set_role(session=session, project_id=project.id, role=found,
                   agent_ids=[agents[e][0].id for e in wanted])
    settings.bump(session=session, key=SITE_VERSION)
    return found, tuple(sorted(wanted))


def role_report(session: Session, workflows, project: Project) -> list[dict]:
    """Every role of the project's workflow with who plays it: the mapped agents, and
    for owner and handler what stands in when a ticket has none."""
    wf = workflow_named(workflows, project.workflow)
    mapped = roles.role_maps(session=session).get(project.slug, {})
    rows = []
    for role in workflow_roles(wf):
        row = {"role": role, "label": role_label(role, project.language),
               "agents": list(mapped.get(role, ()))}
        if role == CUSTOMER:
            row["played_by"] = "the ticket's customers"
        elif role in ("owner", "handler"):
            row["played_by"] = "the ticket's " + ("owner" if role == "owner" else "assignee")
        rows.append(row)
    return rows
