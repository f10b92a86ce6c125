"""Workflows: which statuses a ticket may have, who may move it where, what happens then.

A workflow is plain data built from TOML tables (`[workflows.NAME]`) or from a preset in
`routing.presets`. Everything here is pure: functions take a workflow and values and
return values; nothing reads the clock, the database or the config file.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

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


# --- building from TOML data ----------------------------------------------------------

_STATUS_KEYS = {"name", "label", "category", "actor", "customer_visible", "on_customer_reply",
                "notify", "next", "aliases", "work", "actors", "todo"}
_WORKFLOW_KEYS = {"label", "statuses", "initial", "close", "reopen", "customer_close",
                  "customer_close_from", "customer_may_reopen", "urgent_on_reopen",
                  "substatuses", "types", "timers", "extends", "customer_may",
                  "on_assign", "customer_approve"}


def build_workflows(tables: Mapping[str, Any]) -> dict[str, Workflow]:
    """The presets plus the config's `[workflows.NAME]` tables (which may replace them)."""
    from routing.presets import PRESETS

    merged: dict[str, Any] = dict(PRESETS)
    for name, table in tables.items():
        if not isinstance(table, Mapping):
            raise WorkflowError(f"[workflows] {name}: expected a table")
        base = table.get("extends")
        if base is not None:
            if base not in PRESETS:
                raise WorkflowError(f"[workflows.{name}] extends: expected one of "
                                    f"{', '.join(sorted(PRESETS))}, got {base!r}")
            table = {**PRESETS[base], **{k: v for k, v in table.items() if k != "extends"}}
        merged[name] = table
    return {name: build_workflow(name, table) for name, table in merged.items()}


def build_workflow(name: str, t: Mapping[str, Any]) -> Workflow:
    where = f"[workflows.{name}]"
    unknown = set(t) - _WORKFLOW_KEYS
    if unknown:
        raise WorkflowError(f"{where} {sorted(unknown)[0]}: unknown key (expected one of "
                            f"{', '.join(sorted(_WORKFLOW_KEYS))})")
    rows = t.get("statuses")
    if not isinstance(rows, list) or not rows:
        raise WorkflowError(f"{where} statuses: expected a non-empty list of status tables")
    statuses: dict[str, Status] = {}
    for n, row in enumerate(rows):
        s = _status(f"{where} statuses[{n}]", row)
        if s.name in statuses:
            raise WorkflowError(f"{where} statuses[{n}] name: expected a unique name, "
                                f"got {s.name!r} twice")
        statuses[s.name] = s

    def ref(key: str, default: str | None = None) -> str:
        value = t.get(key, default)
        if value is None:
            raise WorkflowError(f"{where} {key}: expected one of the statuses "
                                f"({', '.join(statuses)}); there is no default for it")
        if not isinstance(value, str) or slug(value) not in statuses:
            raise WorkflowError(f"{where} {key}: expected one of the statuses "
                                f"({', '.join(statuses)}), got {value!r}")
        return slug(value)

    first_closed = next((s.name for s in statuses.values() if s.category == "closed"), None)
    first_open = next((s.name for s in statuses.values() if s.category == "open"), None)
    close = ref("close", first_closed)
    sub_rows = _substatuses(where, t.get("substatuses", []))
    for s in statuses.values():
        for target in (s.next or ()):
            if target not in statuses:
                raise WorkflowError(f"{where} status {s.name} next: {target!r} is not a status")
        if s.on_customer_reply:
            main, _, sub = s.on_customer_reply.partition(",")
            if slug(main) not in statuses or (sub.strip() and slug(sub) not in sub_rows):
                raise WorkflowError(f"{where} status {s.name} on_customer_reply: expected a "
                                    f"status (and sub-status), got {s.on_customer_reply!r}")
    close_from = t.get("customer_close_from", [])
    if not isinstance(close_from, list) or any(slug(str(c)) not in statuses for c in close_from):
        raise WorkflowError(f"{where} customer_close_from: expected a list of statuses")
    timers = tuple(_timer(f"{where} timers[{n}]", row, statuses, sub_rows)
                   for n, row in enumerate(t.get("timers", [])))
    approve = _approvals(where, t.get("customer_approve", {}), statuses, sub_rows)
    return Workflow(
        on_assign=ref("on_assign") if t.get("on_assign") else "", customer_approve=approve,
        substatus_info=sub_rows, name=name, label=str(t.get("label", name)), statuses=statuses,
        initial=ref("initial", next(iter(statuses))), close=close,
        reopen=ref("reopen", first_open), customer_close=ref("customer_close", close),
        customer_close_from=tuple(slug(str(c)) for c in close_from),
        customer_may_reopen=_bool(where, "customer_may_reopen", t.get("customer_may_reopen",
                                                                      True)),
        urgent_on_reopen=_bool(where, "urgent_on_reopen", t.get("urgent_on_reopen", False)),
        types=_names(where, "types", t.get("types", [])), timers=timers,
        customer_may=_customer_may(where, t.get("customer_may", [])))


def _customer_may(where: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or any(v not in CUSTOMER_MAY for v in value):
        raise WorkflowError(f"{where} customer_may: expected a list of "
                            f"{', '.join(CUSTOMER_MAY)}, got {value!r}")
    return tuple(value)


def _status(where: str, row: Any) -> Status:
    if not isinstance(row, Mapping):
        raise WorkflowError(f"{where}: expected a table with name, label, category")
    unknown = set(row) - _STATUS_KEYS
    if unknown:
        raise WorkflowError(f"{where} {sorted(unknown)[0]}: unknown key")
    label = row.get("label") or row.get("name")
    if not isinstance(label, str) or not slug(label):
        raise WorkflowError(f"{where} label: expected a non-empty string")
    name = slug(str(row.get("name") or label))
    category = row.get("category", "open")
    if category not in CATEGORIES:
        raise WorkflowError(f"{where} category: expected one of {', '.join(CATEGORIES)}, "
                            f"got {category!r}")
    nxt = row.get("next")
    if nxt is not None and (not isinstance(nxt, list) or
                            not all(isinstance(x, str) for x in nxt)):
        raise WorkflowError(f"{where} next: expected a list of status names")
    notify = row.get("notify", [])
    if not isinstance(notify, list) or not all(isinstance(x, str) for x in notify):
        raise WorkflowError(f"{where} notify: expected a list of group names or addresses")
    actors = row.get("actors", [row.get("actor", "agent")])
    if not isinstance(actors, list) or not all(isinstance(a, str) for a in actors):
        raise WorkflowError(f"{where} actors: expected a list of role names")
    return Status(
        name=name, label=label, category=category, actor=actors[0] if actors else "none",
        actors=tuple(actors), todo=str(row.get("todo", "")),
        customer_visible=_bool(where, "customer_visible", row.get("customer_visible", True)),
        on_customer_reply=str(row.get("on_customer_reply", "")), notify=tuple(notify),
        next=None if nxt is None else tuple(slug(x) for x in nxt),
        aliases=tuple(slug(a) for a in row.get("aliases", [])),
        work=_bool(where, "work", row.get("work", False)))


_TIMER_KEYS = {"when", "days", "to", "remind"}


def _timer(where: str, row: Any, statuses, subs) -> Timer:
    if not isinstance(row, Mapping):
        raise WorkflowError(f"{where}: expected a table with when, days and to or remind")
    unknown = set(row) - _TIMER_KEYS
    if unknown:
        raise WorkflowError(f"{where} {sorted(unknown)[0]}: unknown key (expected one of "
                            f"{', '.join(sorted(_TIMER_KEYS))})")
    when, days = slug(str(row.get("when", ""))), row.get("days")
    to, remind = slug(str(row.get("to", ""))), str(row.get("remind", "")).strip().lower()
    if when not in statuses and when not in subs:
        raise WorkflowError(f"{where} when: expected a status or sub-status, got {when!r}")
    if not isinstance(days, int) or isinstance(days, bool) or days < 1:
        raise WorkflowError(f"{where} days: expected a whole number of days (1 or more)")
    if bool(to) == bool(remind):
        raise WorkflowError(f"{where}: expected either to (a status to move to) or remind "
                            f"({' or '.join(REMIND_WHOM)}), not both or neither")
    if to and to not in statuses:
        raise WorkflowError(f"{where} to: expected a status, got {to!r}")
    if remind and remind not in REMIND_WHOM:
        raise WorkflowError(f"{where} remind: expected {' or '.join(REMIND_WHOM)}, "
                            f"got {remind!r}")
    return Timer(when, days, to, remind)


def _substatuses(where: str, rows: Any) -> dict[str, Status]:
    """Sub-statuses: plain labels, or tables like a status's (name, label, aliases,
    actors, todo, customer_visible) so a label can change while the name stays."""
    if not isinstance(rows, list):
        raise WorkflowError(f"{where} substatuses: expected a list of names or tables")
    out: dict[str, Status] = {}
    for n, row in enumerate(rows):
        s = _status(f"{where} substatuses[{n}]", {"label": row} if isinstance(row, str)
                    else row)
        out[s.name] = s
    return out


def _approvals(where: str, table: Any, statuses, subs) -> dict[str, tuple[str, str]]:
    if not isinstance(table, Mapping):
        raise WorkflowError(f"{where} customer_approve: expected a table of "
                            "when = \"status, sub-status\"")
    out = {}
    for when, to in table.items():
        main, _, sub = str(to).partition(",")
        main, sub, when = slug(main), slug(sub), slug(when)
        if (when not in statuses and when not in subs) or (main and main not in statuses) \
                or (sub and sub not in subs):
            raise WorkflowError(f"{where} customer_approve {when}: expected a status or "
                                f"sub-status moving to \"status, sub-status\", got {to!r}")
        out[when] = (main, sub)
    return out


def _names(where: str, key: str, labels: Any) -> tuple[str, ...]:
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise WorkflowError(f"{where} {key}: expected a list of names")
    return tuple(slug(x) for x in labels)


def _bool(where: str, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise WorkflowError(f"{where} {key}: expected true or false, got {value!r}")
    return value
