"""Mail commands: `/status waiting`, `/assign anna`, `/close` … at the top of a reply.

Each verb is one small class in `routing.verbs.REGISTRY`: it parses its argument once into a value,
says whether an actor may use it, and applies the value to a `TicketState`. The engine
does not care where the lines came from (a reply mail today, the command line later):

1. `find_commands(text)` reads at most 20 lines of what the author newly wrote (never a
   quoted line, never below the signature) and returns the command lines plus the text
   without them.
2. `parse_command(line)` turns one line into a `Command` holding its parsed value, or
   says why it cannot.
3. `plan(commands, ticket, actor, workflow, world)` checks every command against who is
   asking and the workflow and returns what each line would do. One refused line
   refuses them all (all or nothing); the handler applies an accepted plan in the same
   transaction that stores the mail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from routing.actors import Actor, ActorKind
from routing.context import TicketState, World, field_changes
from routing.names import key
from routing.quota import may_enter
from routing.replytext import top_lines
from routing.verbs import REGISTRY, Invalid, Verb
from routing.workflow import Workflow, after_assign

MAX_COMMAND_LINES = 20
VERBS = tuple(REGISTRY)
# any letters: customers write their commands in their own language (/schließen, /genåbn)
_COMMAND_LINE = re.compile(r"^\s{0,3}/([^\W\d_][\w-]{0,19})(?:[ \t]+(.*?))?\s*$")

# The customer commands in the languages projects are run in (README "Customer commands
# per language"), by `names.key`, so "/schliessen" and "/genaabn" work as well.
# German website customers "geben die Seite frei" or do the "Abnahme" (acceptance of
# the delivered work); Danish ones "godkender" or, in the two-level document, "accepterer".
ALIASES = {key(word): verb for word, verb in (
    ("schließen", "close"), ("erledigt", "close"), ("abschließen", "close"),
    ("wieder öffnen", "reopen"), ("wiedereröffnen", "reopen"), ("öffnen", "reopen"),
    ("freigeben", "approve"), ("freigabe", "approve"), ("abnehmen", "approve"),
    ("abnahme", "approve"), ("genehmigen", "approve"),
    ("luk", "close"), ("afslut", "close"),
    ("genåbn", "reopen"), ("åbn igen", "reopen"), ("åbn", "reopen"),
    ("godkend", "approve"), ("accepter", "approve"))}


@dataclass(frozen=True)
class Command:
    verb: str
    arg: str = ""
    line: str = ""
    error: str = ""          # why this line is not a valid command ("" = valid)
    value: Any = None        # the argument as the verb parsed it


@dataclass(frozen=True)
class Found:
    commands: tuple[Command, ...]
    text: str                # the mail text with the command lines removed


# --- finding and parsing ------------------------------------------------------------------


def find_commands(text: str, limit: int = MAX_COMMAND_LINES) -> Found:
    """The command lines among the first `limit` lines the author wrote."""
    lines = (text or "").replace("\r\n", "\n").split("\n")
    commands: list[Command] = []
    drop: set[int] = set()
    for n, line in enumerate(top_lines(text or "", limit)):
        if _COMMAND_LINE.match(line):
            commands.append(parse_command(line))
            drop.add(n)
    rest = [line for n, line in enumerate(lines) if n not in drop]
    return Found(tuple(commands), "\n".join(rest).strip("\n"))


def parse_command(line: str) -> Command:
    m = _COMMAND_LINE.match(line)
    if not m:
        return Command("", "", line.strip(), "not a command")
    name, arg = m.group(1).lower(), (m.group(2) or "").strip()[:200]
    line = line.strip()[:240]
    if arg and " " not in arg and key(f"{name} {arg}") in ALIASES:   # "/wieder öffnen"
        name, arg = ALIASES[key(f"{name} {arg}")], ""
    name = ALIASES.get(key(name), name)
    verb = REGISTRY.get(name)
    if verb is None:
        return Command(name, arg, line, f"unknown command /{name} (commands: "
                                        + ", ".join("/" + v for v in VERBS) + ")")
    if verb.arg == "none":
        if arg:
            return Command(name, arg, line, f"/{name} takes no argument")
        return Command(name, arg, line)
    if not arg:
        return Command(name, arg, line, f"/{name} needs a value")
    try:
        return Command(name, arg, line, value=verb.parse(arg))
    except Invalid as exc:
        return Command(name, arg, line, str(exc))


# --- planning -------------------------------------------------------------------------


# a line that was fine but not applied because another line of the mail was refused
WITHHELD = "not applied: another command in this mail was refused"


@dataclass(frozen=True)
class Outcome:
    command: Command
    ok: bool
    message: str
    state: TicketState | None = None    # the ticket after this line, when it applied

    @property
    def withheld(self) -> bool:
        return self.message == WITHHELD


@dataclass(frozen=True)
class Plan:
    outcomes: tuple[Outcome, ...]
    before: TicketState
    after: TicketState            # equals `before` when nothing is applied
    note: bool = False            # the mail asked to be an internal note (/note)
    applied: bool = False

    @property
    def changes(self) -> list[tuple[str, str, str]]:
        return field_changes(self.before, self.after)

    @property
    def canned(self) -> tuple[str, ...]:
        """The canned replies (/template NAME) the mail asks for, in the order written."""
        return tuple(o.command.value for o in self.outcomes
                     if o.ok and o.command.verb == "template")

    def cause_of(self) -> dict[str, str]:
        """Which command line caused each changed field (the last line that changed it)."""
        causes: dict[str, str] = {}
        prev = self.before
        for o in self.outcomes:
            if o.state is None:
                continue
            for name, _, _ in field_changes(prev, o.state):
                causes[name] = o.command.line
            prev = o.state
        return causes


def plan(commands: tuple[Command, ...], ticket: TicketState, actor: Actor,
         workflow: Workflow, world: World) -> Plan:
    state, outcomes = ticket, []
    note = any(c.verb == "note" and not c.error for c in commands)
    for cmd in commands:
        if cmd.error:
            outcomes.append(Outcome(cmd, False, cmd.error))
            continue
        verb = REGISTRY[cmd.verb]
        why = _permission(verb, state, actor, workflow)
        if why:
            outcomes.append(Outcome(cmd, False, why))
            continue
        result = verb.apply(cmd.value, state, workflow, world, actor)
        if isinstance(result, str):
            outcomes.append(Outcome(cmd, False, result))
            continue
        new, message = result
        moved = after_assign(workflow, state.assignee, new.status, new.assignee)
        if moved != new.status:
            new = replace(new, status=moved)
            message += f"; status is now {workflow.status_label(moved)}"
        why = _entry_refused(workflow, state, new) if actor.may_work_on(state.project) else ""
        if why:
            outcomes.append(Outcome(cmd, False, why))
            continue
        state = new
        outcomes.append(Outcome(cmd, True, message, state))
    if not all(o.ok for o in outcomes):
        outcomes = [o if not o.ok else Outcome(o.command, False, WITHHELD)
                    for o in outcomes]
        return Plan(tuple(outcomes), ticket, ticket, note=note, applied=False)
    return Plan(tuple(outcomes), ticket, state, note=note, applied=bool(outcomes))


def refuse_all(commands: tuple[Command, ...], ticket: TicketState, reason: str) -> Plan:
    """A plan that applies nothing, every line answered with `reason`. A `/note` line still
    keeps the mail internal: what was meant for colleagues never reaches a customer."""
    note = any(c.verb == "note" and not c.error for c in commands)
    return Plan(tuple(Outcome(c, False, reason) for c in commands), ticket, ticket, note=note)


def _entry_refused(wf: Workflow, before: TicketState, after: TicketState) -> str:
    """Why an agent's command may not move the ticket into its new status ("" = it may):
    the quota rule ("no work starts without a contingent") holds for every verb that
    moves it (/status, /reopen, an assignment's `on_assign`), not for one of them. It is
    the agents' work it holds back: a customer's /reopen or /approve goes through, like a
    customer's reply, and the agents then see a ticket they may not work on yet."""
    if after.status == before.status:
        return ""
    status = wf.statuses.get(after.status)
    why = may_enter(status is not None and status.work, after.type, after.offer_state,
                    after.offer_minutes, after.offer_used, after.quota, after.project)
    return f"{wf.status_label(after.status)} cannot be entered: {why}" if why else ""


def _permission(verb: Verb, t: TicketState, actor: Actor, wf: Workflow) -> str:
    if actor.may_work_on(t.project):
        return ""
    if actor.kind in (ActorKind.AGENT, ActorKind.ADMIN):
        return f"you are not an agent of project {t.project}"
    if actor.kind != ActorKind.CUSTOMER:
        return "only agents and the ticket's customers may send commands"
    if not verb.customers_may:
        return (f"customers may only use /close, /reopen, /approve and what the workflow lets "
                f"them set, not /{verb.name}")
    return verb.permitted(t, wf)


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
