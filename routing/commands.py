"""Mail commands: `/status waiting`, `/assign anna`, `/close` … at the top of a reply.

Three pure steps, so each can be tested as a table:

1. `find_commands(text)` reads at most 20 lines of what the author newly wrote (never a
   quoted line, never below the signature) and returns the command lines plus the text
   without them.
2. `parse_command(line)` turns one line into a `Command` value or says why it cannot.
3. `plan(commands, ticket, actor, world)` checks every command against who is asking and
   the workflow, and returns what each line would do. One refused line refuses them all
   (all or nothing); the pipeline then applies the changes of an accepted plan in the
   same transaction that stores the mail.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from routing.addresses import is_valid_address, normalize_address
from routing.replytext import top_lines
from routing.workflow import Workflow, customer_may_close, customer_may_reopen, may_move, slug

MAX_COMMAND_LINES = 20
VERBS = ("status", "priority", "assign", "owner", "group", "type", "due", "close", "reopen",
         "note", "cc", "project")
PRIORITIES = {"1": 1, "low": 1, "2": 2, "normal": 2, "3": 3, "high": 3,
              # the words our German and Danish users write
              "niedrig": 1, "hoch": 3, "lav": 1, "høj": 3, "hoej": 3}
PRIORITY_NAMES = {1: "low", 2: "normal", 3: "high"}
_COMMAND_LINE = re.compile(r"^\s{0,3}/([A-Za-z][A-Za-z-]{0,19})(?:[ \t]+(.*?))?\s*$")


@dataclass(frozen=True)
class Command:
    verb: str
    arg: str = ""
    line: str = ""
    error: str = ""          # why this line is not a valid command ("" = valid)


@dataclass(frozen=True)
class Found:
    commands: tuple[Command, ...]
    text: str                # the mail text with the command lines removed


def find_commands(text: str, limit: int = MAX_COMMAND_LINES) -> Found:
    """The command lines among the first `limit` lines the author wrote."""
    lines = (text or "").replace("\r\n", "\n").split("\n")
    head = top_lines(text or "", limit)
    commands: list[Command] = []
    drop: set[int] = set()
    for n, line in enumerate(head):
        if _COMMAND_LINE.match(line):
            commands.append(parse_command(line))
            drop.add(n)
    rest = [line for n, line in enumerate(lines) if n not in drop]
    return Found(tuple(commands), "\n".join(rest).strip("\n"))


def parse_command(line: str) -> Command:
    m = _COMMAND_LINE.match(line)
    if not m:
        return Command("", "", line.strip(), "not a command")
    verb, arg = m.group(1).lower(), (m.group(2) or "").strip()[:200]
    line = line.strip()[:240]
    if verb not in VERBS:
        return Command(verb, arg, line, f"unknown command /{verb} (commands: "
                                        + ", ".join("/" + v for v in VERBS) + ")")
    if verb in ("close", "reopen", "note") and arg:
        return Command(verb, arg, line, f"/{verb} takes no argument")
    if verb in ("status", "assign", "owner", "group", "type", "due", "project", "priority",
                "cc") and not arg:
        return Command(verb, arg, line, f"/{verb} needs a value")
    if verb == "priority" and arg.lower() not in PRIORITIES:
        return Command(verb, arg, line, "priority must be low, normal or high (or 1-3)")
    if verb == "due":
        try:
            dt.date.fromisoformat(arg)
        except ValueError:
            if arg.lower() not in ("none", "-"):
                return Command(verb, arg, line, "due date must look like 2026-12-31 (or none)")
    if verb == "cc":
        action, _, address = arg.partition(" ")
        if action.lower() not in ("add", "remove") or not is_valid_address(address.strip()):
            return Command(verb, arg, line, "use /cc add EMAIL or /cc remove EMAIL")
    return Command(verb, arg, line)


# --- planning -------------------------------------------------------------------------


@dataclass(frozen=True)
class TicketState:
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


@dataclass(frozen=True)
class Actor:
    email: str
    kind: str                     # admin | agent | customer | stranger
    projects: frozenset[str] | None = None   # agent's projects; None = all

    def may_work_on(self, project: str) -> bool:
        return self.kind == "admin" or (self.kind == "agent" and
                                        (self.projects is None or project in self.projects))


@dataclass(frozen=True)
class World:
    """What planning may know beyond the ticket: agents, groups, projects."""

    agents: Mapping[str, tuple[str, frozenset[str] | None]] = field(default_factory=dict)
    groups: Mapping[str, str] = field(default_factory=dict)       # group -> owner email
    projects: Mapping[str, str] = field(default_factory=dict)     # slug -> workflow name


@dataclass(frozen=True)
class Outcome:
    command: Command
    ok: bool
    message: str


@dataclass(frozen=True)
class Plan:
    outcomes: tuple[Outcome, ...]
    before: TicketState
    after: TicketState            # equals `before` when nothing is applied
    note: bool = False            # the mail is an internal note
    applied: bool = False

    @property
    def changes(self) -> list[tuple[str, str, str]]:
        """(field, old, new) for every field the plan changes, in a stable order."""
        out = []
        for name in ("status", "substatus", "priority", "assignee", "group", "type", "due",
                     "project", "urgent"):
            old, new = getattr(self.before, name), getattr(self.after, name)
            if old != new:
                out.append((name, _show(old), _show(new)))
        for added in sorted(self.after.cc - self.before.cc):
            out.append(("cc", "", added))
        for removed in sorted(self.before.cc - self.after.cc):
            out.append(("cc", removed, ""))
        return out


def _show(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def plan(commands: tuple[Command, ...], ticket: TicketState, actor: Actor,
         workflow: Workflow, world: World) -> Plan:
    state, outcomes, note = ticket, [], False
    for cmd in commands:
        if cmd.error:
            outcomes.append(Outcome(cmd, False, cmd.error))
            continue
        why = _permission(cmd, state, actor, workflow)
        if why:
            outcomes.append(Outcome(cmd, False, why))
            continue
        result = _apply(cmd, state, workflow, world, actor)
        if isinstance(result, str):
            outcomes.append(Outcome(cmd, False, result))
            continue
        state, message = result
        note = note or cmd.verb == "note"
        outcomes.append(Outcome(cmd, True, message))
    if not all(o.ok for o in outcomes):
        outcomes = [o if not o.ok else replace(o, message="not applied: another command in "
                                                          "this mail was refused")
                    for o in outcomes]
        return Plan(tuple(outcomes), ticket, ticket, note=False, applied=False)
    return Plan(tuple(outcomes), ticket, state, note=note, applied=bool(outcomes))


def refuse_all(commands: tuple[Command, ...], ticket: TicketState, reason: str) -> Plan:
    """A plan that applies nothing, every line answered with `reason`."""
    return Plan(tuple(Outcome(c, False, reason) for c in commands), ticket, ticket)


def _permission(cmd: Command, t: TicketState, actor: Actor, wf: Workflow) -> str:
    if actor.may_work_on(t.project):
        return ""
    if actor.kind in ("agent", "admin"):
        return f"you are not an agent of project {t.project}"
    if actor.kind != "customer":
        return "only agents and the ticket's customers may send commands"
    if cmd.verb == "close":
        if customer_may_close(wf, t.status):
            return ""
        return f"the ticket is {wf.status_label(t.status)}; it can be confirmed only when " \
               + (" or ".join(wf.status_label(s) for s in wf.customer_close_from) or "an agent "
                  "closes it")
    if cmd.verb == "reopen":
        if customer_may_reopen(wf, t.status):
            return ""
        return f"the ticket is {wf.status_label(t.status)}; customers cannot reopen it now"
    return f"customers may only use /close and /reopen, not /{cmd.verb}"


def _apply(cmd: Command, t: TicketState, wf: Workflow, world: World, actor: Actor):
    """(new state, message) or the reason the command cannot be applied."""
    verb, arg = cmd.verb, cmd.arg
    if verb == "status":
        main, _, sub = arg.partition(",")
        target = wf.find_status(main)
        if target is None:
            return (f"unknown status {main.strip()!r}; valid: "
                    + ", ".join(f"{s.name} ({s.label})" for s in wf.statuses.values()))
        why = may_move(wf, t.status, target.name)
        if why:
            return why
        new = replace(t, status=target.name)
        if sub.strip():
            if not wf.substatuses:
                return "this workflow has no sub-statuses"
            found = wf.find_substatus(sub)
            if found is None:
                return f"unknown sub-status {sub.strip()!r}; valid: " + ", ".join(wf.substatuses)
            new = replace(new, substatus=found)
        return new, f"status is now {target.label}" + (f", {sub.strip()}" if sub.strip() else "")
    if verb == "close":
        target = wf.close if t.status not in wf.customer_close_from else wf.customer_close
        return replace(t, status=target), f"status is now {wf.status_label(target)}"
    if verb == "reopen":
        if wf.category(t.status) != "closed" and t.status not in wf.customer_close_from:
            return f"the ticket is {wf.status_label(t.status)}, not closed"
        new = replace(t, status=wf.reopen)
        if wf.urgent_on_reopen:
            new = replace(new, urgent=True, priority=3)
        return new, f"status is now {wf.status_label(wf.reopen)}" + (
            " (marked urgent)" if wf.urgent_on_reopen else "")
    if verb == "priority":
        p = PRIORITIES[arg.lower()]
        return replace(t, priority=p), f"priority is now {p} ({PRIORITY_NAMES[p]})"
    if verb in ("assign", "owner"):
        email = _find_agent(actor.email if arg.lower() in ("me", "myself") else arg, world,
                            t.project)
        if email is None:
            return f"no agent of project {t.project} matches {arg!r}"
        return replace(t, assignee=email), f"assigned to {email}"
    if verb == "group":
        name = slug(arg)
        if name not in world.groups:
            return f"unknown group {arg!r}; valid: " + (", ".join(world.groups) or "(none)")
        new = replace(t, group=name)
        owner = world.groups[name]
        if not t.assignee and owner in world.agents:
            new = replace(new, assignee=owner)
            return new, f"group is now {name}; assigned to its owner {owner}"
        return new, f"group is now {name}"
    if verb == "type":
        name = slug(arg)
        if wf.types and name not in wf.types:
            return f"unknown type {arg!r}; valid: " + ", ".join(wf.types)
        return replace(t, type=name), f"type is now {name}"
    if verb == "due":
        if arg.lower() in ("none", "-"):
            return replace(t, due=None), "due date removed"
        return replace(t, due=dt.date.fromisoformat(arg)), f"due date is now {arg}"
    if verb == "note":
        return t, "this mail is kept as an internal note"
    if verb == "cc":
        action, _, address = arg.partition(" ")
        address = normalize_address(address.strip())
        if action.lower() == "add":
            return replace(t, cc=t.cc | {address}), f"{address} added to the ticket"
        if address not in t.cc:
            return f"{address} is not on the ticket"
        return replace(t, cc=t.cc - {address}), f"{address} removed from the ticket"
    if verb == "project":
        name = arg.strip().lower()
        if name not in world.projects:
            return f"unknown project {arg!r}"
        return replace(t, project=name), f"moved to project {name}"
    return f"/{verb} is not supported here"


def _find_agent(text: str, world: World, project: str) -> str | None:
    wanted = text.strip().lower()
    candidates = [(email, name) for email, (name, projects) in world.agents.items()
                  if projects is None or project in projects]
    for email, _name in candidates:
        if wanted == email:
            return email
    by_name = [email for email, name in candidates
               if wanted == name.lower() or wanted == name.lower().split(" ")[0]
               or wanted == email.split("@")[0]]
    return by_name[0] if len(by_name) == 1 else None


def transcript(plan_: Plan) -> str:
    """The text of the transcript mail: each command line and what it did."""
    lines = []
    for o in plan_.outcomes:
        lines.append(f"> {o.command.line}")
        lines.append(("done: " if o.ok else "refused: ") + o.message)
        lines.append("")
    if plan_.outcomes and not plan_.applied:
        lines.append("Nothing was changed. Your message text was stored on the ticket.")
    return "\n".join(lines).rstrip() + "\n"
