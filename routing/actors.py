"""Who is writing: one classification of a mail's sender, used by every decision.

A sender is an admin, an agent (of some or all projects), a customer of the ticket in
question (its requester or someone on it), or a stranger. The same function answers for
mail, timers and the command line, so a person is never an agent in one place and a
customer in another. Pure: the staff list and the ticket's people are passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

NOTIFY_EVENTS = ("new_ticket", "customer_reply", "assigned", "status_change", "file_uploaded",
                 "reminder", "agent_replied", "change_request")


@dataclass(frozen=True)
class Person:
    email: str
    name: str = ""


class ActorKind(StrEnum):
    ADMIN = "admin"
    AGENT = "agent"
    CUSTOMER = "customer"
    STRANGER = "stranger"
    SYSTEM = "system"


@dataclass(frozen=True)
class AgentInfo:
    """An active agent as decisions see it."""

    email: str
    name: str = ""
    admin: bool = False
    projects: frozenset[str] | None = None     # None: every project
    notify: frozenset[str] = frozenset()       # events that mail this agent

    def works_on(self, project: str) -> bool:
        return self.admin or self.projects is None or project in self.projects

    def wants(self, event: str) -> bool:
        return event in self.notify


@dataclass(frozen=True)
class Staff:
    """Every active agent, by address."""

    agents: Mapping[str, AgentInfo] = field(default_factory=dict)

    def get(self, email: str) -> AgentInfo | None:
        return self.agents.get(email)

    def of_project(self, project: str) -> tuple[AgentInfo, ...]:
        return tuple(a for _, a in sorted(self.agents.items()) if a.works_on(project))

    def name_of(self, email: str) -> str:
        agent = self.agents.get(email)
        return agent.name if agent else ""


@dataclass(frozen=True)
class Actor:
    email: str
    kind: str                                   # an ActorKind value
    projects: frozenset[str] | None = None      # an agent's projects; None = all
    name: str = ""

    def may_work_on(self, project: str) -> bool:
        return self.kind == ActorKind.ADMIN or (
            self.kind == ActorKind.AGENT and (self.projects is None or project in self.projects))


SYSTEM = Actor("system", ActorKind.SYSTEM)


def classify_actor(email: str | None, staff: Staff, *, requester: str = "",
                   cc: frozenset[str] = frozenset(), name: str = "") -> Actor:
    """The one answer to "who is this?" for a ticket with `requester` and `cc`."""
    if not email:
        return Actor("", ActorKind.STRANGER, name=name)
    agent = staff.get(email)
    if agent is not None:
        kind = ActorKind.ADMIN if agent.admin else ActorKind.AGENT
        return Actor(email, kind, None if agent.admin else agent.projects,
                     agent.name or name)
    if email == requester or email in cc:
        return Actor(email, ActorKind.CUSTOMER, name=name)
    return Actor(email, ActorKind.STRANGER, name=name)
