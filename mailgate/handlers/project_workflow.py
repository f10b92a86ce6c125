"""Putting a project on another workflow (`mailgate project workflow SLUG NAME`).

A ticket must never sit in a status its workflow does not know: no command could move
it, no timer would fire, and `ticket list --status` could not name it. So the change is
refused while tickets are in statuses the new workflow lacks, unless the admin says
where each of those statuses goes (`--map OLD=NEW`); every ticket moved gets a status
event in its log. `plan_change` decides (pure); `change_workflow` gathers and applies
in the caller's unit of work.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlmodel import Session

from mailgate.handlers import ServiceError
from mailgate.handlers.directory import SITE_VERSION, require_project
from routing.workflow import Workflow, slug
from store import settings, tickets
from store.models import Event


@dataclass(frozen=True)
class Plan:
    moves: Mapping[str, str]       # status a ticket is in -> the status it moves to
    stranded: Mapping[str, int]    # statuses the new workflow lacks, unmapped -> tickets


def resolve_map(pairs: Sequence[tuple[str, str]], in_use: Mapping[str, int],
                old: Workflow | None, new: Workflow) -> dict[str, str]:
    """`--map OLD=NEW` pairs as status names: OLD a status tickets are in (or one of the
    old workflow), NEW one of the new workflow, each by name or label in any case."""
    out: dict[str, str] = {}
    for old_text, new_text in pairs:
        found = old.find_status(old_text) if old is not None else None
        source = slug(old_text) if slug(old_text) in in_use else (found.name if found else "")
        if not source:
            raise ServiceError(f"--map {old_text}={new_text}: no ticket of the project is in "
                               f"a status {old_text!r}")
        target = new.find_status(new_text)
        if target is None:
            raise ServiceError(f"--map {old_text}={new_text}: workflow {new.name} has no "
                               f"status {new_text!r} (known: {', '.join(new.statuses)})")
        out[source] = target.name
    return out


def plan_change(in_use: Mapping[str, int], new: Workflow, mapping: Mapping[str, str]) -> Plan:
    """What happens to the tickets when their project moves to `new`: `in_use` counts
    tickets by status, `mapping` is where the admin sends a status."""
    moves = {s: mapping[s] for s in in_use if s in mapping and mapping[s] != s}
    stranded = {s: n for s, n in sorted(in_use.items())
                if s not in new.statuses and s not in mapping}
    return Plan(moves, stranded)


def change_workflow(session: Session, *, project_slug: str, workflow: str,
                    workflows: Mapping[str, Workflow], pairs: Sequence[tuple[str, str]] = (),
                    actor: str = "admin", now: dt.datetime) -> tuple[str, dict[str, int]]:
    """Put a project on another workflow; returns the old one's name and how many
    tickets moved to each new status (keyed "old -> new")."""
    new = workflows.get(workflow)
    if new is None:
        raise ServiceError(f"unknown workflow {workflow!r} (known: {', '.join(workflows)})")
    project = require_project(session, project_slug)
    rows = tickets.project_tickets(session=session, project_id=project.id)
    in_use = Counter(t.status for t in rows)
    plan = plan_change(in_use, new, resolve_map(pairs, in_use, workflows.get(project.workflow),
                                                new))
    if plan.stranded:
        lacking = ", ".join(f"{s} ({n})" for s, n in plan.stranded.items())
        raise ServiceError(f"project {project.slug}: tickets are in statuses workflow "
                           f"{new.name} lacks: {lacking}; move them with --map OLD=NEW")
    moved: Counter[str] = Counter()
    events = []
    detail = f"workflow {project.workflow} -> {new.name}"
    for t in rows:
        values: dict = {}
        target = plan.moves.get(t.status)
        if target is not None:
            closed = new.category(target) == "closed"
            values.update(status=target, status_changed_at=now,
                          closed_at=(t.closed_at or now) if closed else None)
            events.append({"ticket_id": t.id, "at": now, "actor": actor, "kind": "status",
                           "old": t.status, "new": target, "status": target,
                           "detail": detail})
            moved[f"{t.status} -> {target}"] += 1
        if t.substatus and t.substatus not in new.substatuses:
            # a sub-status the new workflow does not have would be shown but never match
            values["substatus"] = ""
            events.append({"ticket_id": t.id, "at": now, "actor": actor, "kind": "substatus",
                           "old": t.substatus, "new": "", "status": target or t.status,
                           "detail": detail})
        if values:
            tickets.update_ticket(session=session, number=t.id,
                                  values=values | {"updated_at": now})
    tickets.insert_rows(session=session, model=Event, rows=events)
    old, project.workflow = project.workflow, new.name
    settings.bump(session=session, key=SITE_VERSION)
    return old, dict(moved)
