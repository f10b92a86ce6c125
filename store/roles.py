"""Queries for the workflow roles agents play per project (`ProjectRole`).

Query functions take a keyword-only `session` and never commit.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete
from sqlmodel import Session, select

from store.models import Agent, Project, ProjectRole


def role_maps(*, session: Session) -> dict[str, dict[str, tuple[str, ...]]]:
    """Every project's roles: slug -> role -> agents' addresses (sorted). One query."""
    rows = session.exec(select(Project.slug, ProjectRole.role, Agent.email)
                        .join(ProjectRole, ProjectRole.project_id == Project.id)
                        .join(Agent, Agent.id == ProjectRole.agent_id)
                        .order_by(Project.slug, ProjectRole.role, Agent.email))
    out: dict[str, dict[str, list[str]]] = {}
    for slug, role, email in rows:
        out.setdefault(slug, {}).setdefault(role, []).append(email)
    return {slug: {role: tuple(emails) for role, emails in roles.items()}
            for slug, roles in out.items()}


def set_role(*, session: Session, project_id: int, role: str, agent_ids: Iterable[int]) -> None:
    """Make exactly `agent_ids` play `role` in the project (none: the role is unmapped)."""
    session.execute(delete(ProjectRole).where(ProjectRole.project_id == project_id,
                                              ProjectRole.role == role))
    session.add_all(ProjectRole(project_id=project_id, role=role, agent_id=i)
                    for i in dict.fromkeys(agent_ids))
    session.flush()
