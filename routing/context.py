"""The plain data that decisions are made over: a ticket's state and its surroundings.

Handlers gather these values with a fixed, small set of queries and pass them in; nothing
here reads a database, a clock or a config file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property

from routing.actors import Person, Staff
from routing.quota import Budget
from routing.workflow import Workflow, workflow_named

PRIORITY_NAMES = {1: "low", 2: "normal", 3: "high"}


@dataclass(frozen=True)
class TicketState:
    """The fields of a ticket that commands, workflows and timers change."""

    number: int
    project: str
    status: str
    substatus: str = ""
    priority: int = 2
    assignee: str = ""            # agent email
    group: str = ""
    type: str = ""
    due: dt.date | None = None
    cc: frozenset[str] = frozenset()
    requester: str = ""
    urgent: bool = False
    owner: str = ""               # agent email: who keeps the overview (the handler is assignee)
    offer_state: str = ""         # "" | sent | accepted | declined
    offer_minutes: int = 0
    # facts for the quota rule, gathered, never stored on the ticket row: minutes booked
    # on this ticket, the part of them against its offer, and its project's contingent
    # (None: the project has no quota in use)
    booked: int = 0
    offer_used: int = 0
    quota: Budget | None = None


CHANGE_FIELDS = ("status", "substatus", "priority", "assignee", "group", "type", "due",
                 "project", "urgent", "owner", "offer_state", "offer_minutes")


def field_changes(before: TicketState, after: TicketState) -> list[tuple[str, str, str]]:
    """(field, old, new) for every field that differs, in a stable order; cc as one row
    per address added ("", addr) or removed (addr, "")."""
    out = []
    for name in CHANGE_FIELDS:
        old, new = getattr(before, name), getattr(after, name)
        if old != new:
            out.append((name, show_value(old), show_value(new)))
    out.extend(("cc", "", added) for added in sorted(after.cc - before.cc))
    out.extend(("cc", removed, "") for removed in sorted(before.cc - after.cc))
    return out


def show_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


@dataclass(frozen=True)
class World:
    """What planning may know beyond the ticket: agents, groups, projects."""

    agents: Mapping[str, tuple[str, frozenset[str] | None]] = field(default_factory=dict)
    groups: Mapping[str, str] = field(default_factory=dict)       # group -> owner email
    projects: Mapping[str, str] = field(default_factory=dict)     # slug -> workflow name
    # canned replies an agent may insert (/template NAME) -> why it cannot be used ("": it can)
    replies: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, staff: Staff, groups: Mapping[str, str],
           projects: Mapping[str, str], replies: Mapping[str, str] | None = None) -> World:
        return cls({a.email: (a.name, None if a.admin else a.projects)
                    for a in staff.agents.values()}, dict(groups), dict(projects),
                   dict(replies or {}))


@dataclass(frozen=True)
class ProjectInfo:
    slug: str
    name: str
    key: str
    workflow: str
    language: str = "en"          # of the mails its customers get: de | da | en
    domain: str = ""
    contact_person: str = ""
    invitation_url: str = ""
    signature: str = ""           # "" = the global [mail] signature
    # workflow roles played by agents here: ((role, (email, ...)), ...) (routing.roles)
    roles: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def role_map(self) -> dict[str, tuple[str, ...]]:
        return dict(self.roles)


@dataclass(frozen=True)
class TicketContext:
    """One ticket and everything a decision about it needs."""

    state: TicketState
    subject: str
    project: ProjectInfo
    workflow: Workflow
    customers: tuple[Person, ...] = ()     # requester first, then the others on it
    thread: tuple[str, ...] = ()           # Message-IDs for References, oldest first
    last_inbound: str = ""                 # Message-ID of the customer's latest mail
    deleted: bool = False
    updated: dt.datetime | None = None     # the ticket's last activity
    closed_at: dt.datetime | None = None   # when it was closed (None: open, or unknown)

    def evolve(self, **changes) -> TicketContext:
        return replace(self, **changes)

    @property
    def number(self) -> int:
        return self.state.number


@dataclass(frozen=True)
class Policy:
    """Settings decisions depend on, taken from the config once."""

    support_address: str
    support_name: str = "Support"
    signature: str = ""
    auto_reply_limit: int = 10               # per external address and window
    auto_reply_window_minutes: float = 10.0
    agent_ticket_limit: int = 20             # automatic mails to one agent about one ticket
    agent_ticket_window_minutes: float = 60.0
    max_forward_bytes: int = 26_214_400      # what an agent's files may add to a mail
    groups: Mapping[str, str] = field(default_factory=dict)   # group -> owner address
    group_keys: Mapping[str, str] = field(default_factory=dict)  # plus-address key -> group
    agent_trust: str = "token"               # [trust] agents: "token" | "verified"
    participants: str = "same-domain"        # [mail] participants: all | same-domain | none
    replies: Mapping[str, str] = field(default_factory=dict)  # canned replies (see World)


@dataclass(frozen=True)
class Site:
    """The installation as decisions see it: staff, projects, workflows, settings."""

    staff: Staff
    projects: Mapping[str, ProjectInfo]
    workflows: Mapping[str, Workflow]          # by workflow name
    policy: Policy

    def workflow_of(self, project: str) -> Workflow:
        info = self.projects.get(project)
        return workflow_named(self.workflows, info.workflow if info else "support")

    @cached_property
    def world(self) -> World:
        return World.of(self.staff, self.policy.groups,
                        {slug: p.workflow for slug, p in self.projects.items()},
                        self.policy.replies)
