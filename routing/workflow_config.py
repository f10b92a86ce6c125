"""Reading workflows from config: `[workflows.NAME]` tables and the presets, checked.

`build_workflows` merges the presets of `routing.presets` with the config's tables (a
table may `extends` a preset) and builds each into a `routing.workflow.Workflow`; a
wrong table raises `WorkflowError` naming the key. Pure: TOML data in, workflows out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from routing.after_close import read_after_close
from routing.presets import PRESETS
from routing.workflow import (
    CATEGORIES,
    CUSTOMER_MAY,
    NOTIFY_CUSTOMER,
    REMIND_WHOM,
    Status,
    Timer,
    Workflow,
    WorkflowError,
    slug,
)

_STATUS_KEYS = {"name", "label", "category", "actor", "customer_visible", "on_customer_reply",
                "notify", "next", "aliases", "work", "actors", "todo"}
_WORKFLOW_KEYS = {"label", "statuses", "initial", "close", "reopen", "customer_close",
                  "customer_close_from", "customer_may_reopen", "urgent_on_reopen",
                  "substatuses", "types", "timers", "extends", "customer_may",
                  "on_assign", "customer_approve", "after_close", "reopen_within_days",
                  "notify_customer", "language"}


def build_workflows(tables: Mapping[str, Any]) -> dict[str, Workflow]:
    """The presets plus the config's `[workflows.NAME]` tables (which may replace them)."""
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
    after_close, reopen_days = read_after_close(where, t, WorkflowError)
    return Workflow(
        on_assign=ref("on_assign") if t.get("on_assign") else "", customer_approve=approve,
        after_close=after_close, reopen_within_days=reopen_days,
        substatus_info=sub_rows, name=name, label=str(t.get("label", name)), statuses=statuses,
        initial=ref("initial", next(iter(statuses))), close=close,
        reopen=ref("reopen", first_open), customer_close=ref("customer_close", close),
        customer_close_from=tuple(slug(str(c)) for c in close_from),
        customer_may_reopen=_bool(where, "customer_may_reopen", t.get("customer_may_reopen",
                                                                      True)),
        urgent_on_reopen=_bool(where, "urgent_on_reopen", t.get("urgent_on_reopen", False)),
        types=_names(where, "types", t.get("types", [])), timers=timers,
        customer_may=_customer_may(where, t.get("customer_may", [])),
        notify_customer=_notify_customer(where, t.get("notify_customer", NOTIFY_CUSTOMER[0])),
        language=str(t.get("language", "")))


def _notify_customer(where: str, value: Any) -> str:
    if value not in NOTIFY_CUSTOMER:
        raise WorkflowError(f"{where} notify_customer: expected one of "
                            f"{', '.join(NOTIFY_CUSTOMER)}, got {value!r}")
    return value


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
