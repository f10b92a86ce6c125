"""Workflows: which statuses a ticket may have, who may move it where, what happens then.

A workflow is plain data built from TOML tables (`[workflows.NAME]`) or from a preset in
`routing.presets`, by `routing.workflow_config`. Everything here is pure: functions take
a workflow and values and return values; nothing reads the clock, the database or the
config file.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from routing.names import pick

CATEGORIES = ("open", "waiting", "closed")


class WorkflowError(ValueError):
    """A workflow table is wrong; the message names the key (`[workflows.x] ...`)."""


def slug(text: str) -> str:
    """The name form of a label: lower case, words joined by '-' ("Waiting for data")."""
    return re.sub(r"[^\w]+", "-", text.strip().lower()).strip("-")


@dataclass(frozen=True)
class Status:
    name: str
    label: str
    category: str                       # open | waiting | closed
    actor: str = "agent"                # who acts next: agent | customer | a role's name
    customer_visible: bool = True       # customers are mailed when a ticket enters it
    on_customer_reply: str = ""         # status a customer's mail moves it to; "" = stays
    notify: tuple[str, ...] = ()        # groups or addresses mailed when a ticket enters it
    next: tuple[str, ...] | None = None  # statuses an agent may move to; None = any
    aliases: tuple[str, ...] = ()
    actors: tuple[str, ...] = ()        # every role who acts ("actor" is the first)
    todo: str = ""                      # what is to be done, in the workflow's language
    work: bool = False                  # work is done in it: needs contingent (routing.quota)

    @property
    def names(self) -> tuple[str, ...]:
        """Everything this status may be called by: name, label, aliases."""
        return (self.name, self.label, *self.aliases)


REMIND_WHOM = ("customer", "agents")
CUSTOMER_MAY = ("priority", "group")    # what `customer_may` may list
NOTIFY_CUSTOMER = ("visible-statuses", "every-change")   # `notify_customer`, default first


@dataclass(frozen=True)
class Timer:
    """After `days` without activity in status or sub-status `when`, the ticket moves to
    `to` by itself, or (a reminder) `remind` is mailed once: the customer or the agents."""

    when: str
    days: int
    to: str = ""
    remind: str = ""

    @property
    def key(self) -> str:
        """Names the timer in the ticket's log, so a reminder goes out once."""
        return f"{self.remind or 'move'} after {self.days} days in {self.when}"


@dataclass(frozen=True)
class Workflow:
    name: str
    label: str
    statuses: Mapping[str, Status]
    initial: str
    close: str                          # where an agent's /close goes
    reopen: str                         # where /reopen goes
    customer_close: str                 # where a customer's /close (confirmation) goes
    customer_close_from: tuple[str, ...]  # statuses in which a customer may /close
    customer_may_reopen: bool = True
    urgent_on_reopen: bool = False      # a reopened ticket is marked urgent (priority 3)
    types: tuple[str, ...] = ()
    timers: tuple[Timer, ...] = ()
    customer_may: tuple[str, ...] = ()  # fields customers may set too (CUSTOMER_MAY)
    # the second level, rows by name in order; empty = one-level workflow
    substatus_info: Mapping[str, Status] = field(default_factory=dict)
    on_assign: str = ""                 # where a ticket in `initial` goes once assigned
    # a customer's approval (/approve) in a status or sub-status (the key) moves the
    # ticket to (status, sub-status); an empty status keeps the ticket's
    customer_approve: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    # a customer's mail to a closed ticket (routing.followup): "" (added to it, as
    # before), reopen, new-ticket or reject; reopen_within_days reopens before that
    after_close: str = ""
    reopen_within_days: int | None = None
    # what customers are told (routing.every_change): "visible-statuses" = a status mail
    # when the ticket enters a customer-visible status; "every-change" = status,
    # priority, assignee and due date, all changes of one action in one mail
    notify_customer: str = "visible-statuses"
    # the language its labels and `todo` texts are written in (de, da, en; "" = not
    # said): customers of a project in another language are not shown its `todo`
    language: str = ""

    @cached_property
    def substatuses(self) -> tuple[str, ...]:
        return tuple(self.substatus_info)

    @cached_property
    def substatus_labels(self) -> dict[str, str]:
        return {n: s.label for n, s in self.substatus_info.items()}

    # -- lookups ---------------------------------------------------------------------
    def find_status(self, text: str) -> Status | None:
        """The status `text` names: a name, label or alias (case and accents aside), else
        a unique prefix of one; None when unknown or ambiguous."""
        return pick(text, self.statuses.values(), lambda s: s.names)

    def find_substatus(self, text: str) -> str | None:
        found = pick(text, self.substatus_info.values(), lambda s: s.names)
        return found.name if found else None

    def category(self, status: str) -> str:
        s = self.statuses.get(status)
        return s.category if s else "open"

    def status_label(self, status: str) -> str:
        s = self.statuses.get(status)
        return s.label if s else status


def workflow_named(workflows: Mapping[str, Workflow], name: str | None) -> Workflow:
    """The workflow called `name`, else the "support" one (always present: a preset)."""
    return workflows.get(name) or workflows["support"]


# --- decisions ------------------------------------------------------------------------


def may_move(wf: Workflow, current: str, target: str) -> str | None:
    """None when an agent may move a ticket from `current` to `target`, else why not."""
    if target not in wf.statuses:
        return f"unknown status {target!r}"
    here = wf.statuses.get(current)
    if here is None or here.next is None or target == current:
        return None
    if target in here.next or target in (wf.close, wf.reopen):
        return None
    allowed = ", ".join(here.next + tuple(t for t in (wf.close,) if t not in here.next))
    return f"{here.label} cannot move to {wf.status_label(target)} (allowed: {allowed})"


def after_customer_reply(wf: Workflow, status: str) -> tuple[str, str] | None:
    """(status, sub-status) a customer's plain reply moves the ticket to, or None."""
    s = wf.statuses.get(status)
    if s is None or not s.on_customer_reply:
        return None
    main, _, sub = s.on_customer_reply.partition(",")
    return main.strip(), slug(sub) if sub.strip() else ""


def customer_may_close(wf: Workflow, status: str) -> bool:
    return status in wf.customer_close_from


def customer_may_reopen(wf: Workflow, status: str) -> bool:
    return wf.customer_may_reopen and (wf.category(status) == "closed"
                                       or status in wf.customer_close_from)


def customer_approval(wf: Workflow, status: str, substatus: str) -> tuple[str, str] | None:
    """(status, sub-status) a customer's approval moves the ticket to, or None when the
    ticket asks for no approval now. The sub-status is asked first: it is the finer."""
    main, sub = wf.customer_approve.get(substatus) or wf.customer_approve.get(status) or ("", "")
    if not (main or sub):
        return None
    return main or status, sub or substatus


def after_assign(wf: Workflow, before_assignee: str, status: str, assignee: str) -> str:
    """The status a ticket has once it gets an assignee: `on_assign` when it was still in
    the initial status and had nobody (the document's "received" step), else unchanged."""
    if wf.on_assign and status == wf.initial and assignee and not before_assignee:
        return wf.on_assign
    return status


def customer_commands(wf: Workflow, status: str, substatus: str) -> tuple[str, ...]:
    """The customer verbs the workflow accepts on a ticket now; a mail to the customer
    offers these and no others."""
    verbs = []
    if customer_may_close(wf, status):
        verbs.append("close")
    if customer_may_reopen(wf, status):
        verbs.append("reopen")
    if customer_approval(wf, status, substatus):
        verbs.append("approve")
    return tuple(verbs)


def due_timer(wf: Workflow, status: str, substatus: str, days_in_state: float) -> Timer | None:
    """The move timer that has run out for a ticket `days_in_state` days quiet, if any."""
    for t in wf.timers:
        if t.to and t.when in (status, substatus) and days_in_state >= t.days:
            return t
    return None


def due_reminders(wf: Workflow, status: str, substatus: str, days_quiet: float,
                  sent: frozenset[str]) -> tuple[Timer, ...]:
    """Reminder timers that have run out and whose reminder (by `Timer.key`) has not been
    sent since the ticket's last activity."""
    return tuple(t for t in wf.timers
                 if t.remind and t.when in (status, substatus) and days_quiet >= t.days
                 and t.key not in sent)


def due_date_reminder(due: dt.date | None, today: dt.date, category: str,
                      reminded: frozenset[str]) -> bool:
    """Whether the agents should now be reminded that a ticket is due: the day has come,
    the ticket is not closed, and nobody was reminded of this same date before."""
    return (due is not None and due <= today and category != "closed"
            and due.isoformat() not in reminded)
