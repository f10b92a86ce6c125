"""The agent's desk on the command line, decided: `ticket reply|note|set|new|log|merge`.

Each verb becomes what the same act by mail would be. `ticket set` options turn into the
very command lines an agent writes at the top of a reply (`--status waiting` is
`/status waiting`), parsed and planned by `routing.commands`, so permissions, the
workflow and the quota rule answer exactly as they do by mail; a reply or a note is
decided by `routing.agent_mail.agent_action`, the path of an agent's mail. What differs is
only what has no sense without a mail: no transcript is mailed (the command line prints
it), and a refusal changes nothing at all (no text is kept either), since the agent is
right there to read why. Pure: plain values in, `Effects` or a `Refused` out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from routing.actors import Actor, ActorKind, Person, classify_actor
from routing.agent_mail import agent_action
from routing.commands import Command, Plan, parse_command, plan
from routing.context import Site, TicketContext, TicketState
from routing.effects import (
    Audience,
    Direction,
    Effects,
    LogEvent,
    MailIntent,
    MailKind,
    OpenTicket,
    Outcome,
    StoreMessage,
)
from routing.guards import GuardFacts, guarded
from routing.incoming import Incoming
from routing.rules import MailFacts, RouteDecision, Target
from routing.trust import Verdict

RULE = "command-line"                   # the rule of everything done from the command line
LOG_KINDS = ("call", "sms", "meeting")  # manual log entries; `log --kind call` finds them
# whoever can run the command line already holds the database: nothing left to verify
AT_THE_DESK = Verdict(True, "acted on the command line")


@dataclass(frozen=True)
class Refused:
    """Why nothing was done; one line for the agent."""

    reason: str


@dataclass(frozen=True)
class SetOptions:
    """`ticket set` options, as typed (None: not given)."""

    status: str | None = None
    priority: str | None = None
    assign: str | None = None
    owner: str | None = None
    group: str | None = None
    type: str | None = None
    due: str | None = None
    cc_add: tuple[str, ...] = ()
    cc_remove: tuple[str, ...] = ()


def command_lines(opts: SetOptions) -> tuple[str, ...]:
    """The mail command lines the options stand for. A group comes first (it brings its
    owner), then the people named outright, so an explicit --owner/--assign wins; the
    status comes last, so --status wins over a workflow's move on assignment."""
    lines = [f"/{verb} {value.strip()}" for verb, value in (
        ("group", opts.group), ("owner", opts.owner), ("assign", opts.assign),
        ("priority", opts.priority), ("type", opts.type), ("due", opts.due))
        if value is not None]
    lines += [f"/cc add {a.strip()}" for a in opts.cc_add]
    lines += [f"/cc remove {a.strip()}" for a in opts.cc_remove]
    if opts.status is not None:
        lines.append(f"/status {opts.status.strip()}")
    return tuple(lines)


def commands_of(opts: SetOptions) -> tuple[Command, ...]:
    """The parsed commands, exactly as the same lines in a mail would parse."""
    return tuple(parse_command(line) for line in command_lines(opts))


def refusal(plan_: Plan) -> str:
    """The reasons a plan was refused, one line: each refused command and why."""
    bad = [o for o in plan_.outcomes if not o.ok and not o.withheld]
    return "; ".join(f"{o.command.line}: {o.message}" for o in bad) or "refused"


def agent_of(email: str, project: str, site: Site, ctx: TicketContext | None = None,
             ) -> Actor | Refused:
    """The acting agent, or why `email` may not act on `project`."""
    state = ctx.state if ctx is not None else None
    actor = classify_actor(email, site.staff, requester=state.requester if state else "",
                           cc=state.cc if state else frozenset())
    if actor.may_work_on(project):
        return actor
    if actor.kind in (ActorKind.AGENT, ActorKind.ADMIN):
        return Refused(f"{email} is not an agent of project {project}")
    return Refused(f"{email} is not an agent (see: mailgate agent list)")


# --- on an existing ticket --------------------------------------------------------------


def _incoming(actor: Actor, text: str, files: int, message_id: str) -> Incoming:
    facts = MailFacts(sender=actor.email, sender_problem="", recipients=(), subject="",
                      thread_ids=())
    return Incoming(facts, actor.name, message_id, text, files, verdict=AT_THE_DESK)


def _route(ctx: TicketContext, actor: Actor, purpose: str) -> RouteDecision:
    return RouteDecision(Target.TICKET, RULE, f"{actor.email} on the command line",
                         ticket=ctx.number, project=ctx.state.project, purpose=purpose)


def _without_transcript(effects: Effects) -> Effects:
    return replace(effects, mails=tuple(m for m in effects.mails
                                        if m.kind is not MailKind.TRANSCRIPT))


def reply(ctx: TicketContext, site: Site, guard: GuardFacts, email: str, *, text: str,
          files: int = 0, note: bool = False, message_id: str = "") -> Effects | Refused:
    """`ticket reply` (to the customers, as the agent's mail would be forwarded) or
    `ticket note` (kept internal)."""
    actor = agent_of(email, ctx.state.project, site, ctx)
    if isinstance(actor, Refused):
        return actor
    if not text.strip() and not files:
        return Refused("no text: give TEXT, or - to read it from standard input"
                       + ("" if note else ", or --file"))
    effects = agent_action(_incoming(actor, text, files, message_id),
                           _route(ctx, actor, "note" if note else "reply"), ctx, site, guard,
                           actor, None)
    return _without_transcript(effects)


def set_fields(ctx: TicketContext, site: Site, guard: GuardFacts, email: str,
               commands: tuple[Command, ...]) -> Effects | Refused:
    """`ticket set`: the commands of a reply mail with no text of its own: the same
    changes, log entries and mails, but no empty message stored."""
    actor = agent_of(email, ctx.state.project, site, ctx)
    if isinstance(actor, Refused):
        return actor
    if not commands:
        return Refused("nothing to set: give at least one of --status, --priority, "
                       "--assign, --owner, --group, --type, --due, --cc-add, --cc-remove")
    plan_ = plan(commands, ctx.state, actor, ctx.workflow, site.world)
    if not plan_.applied:
        return Refused(refusal(plan_))
    effects = agent_action(_incoming(actor, "", 0, ""), _route(ctx, actor, "reply"), ctx,
                           site, guard, actor, plan_)
    return replace(_without_transcript(effects), message=None,
                   events=tuple(e for e in effects.events if e.kind != "reply"))


def log_entry(ctx: TicketContext, site: Site, email: str, *, kind: str, text: str,
              from_customer: bool = False) -> Effects | Refused:
    """`ticket log`: a call, text message or meeting in the ticket's log, with who and
    which way it went; never mailed to anyone."""
    actor = agent_of(email, ctx.state.project, site, ctx)
    if isinstance(actor, Refused):
        return actor
    if kind not in LOG_KINDS:
        return Refused(f"unknown kind {kind!r} (expected {', '.join(LOG_KINDS)})")
    if not text.strip():
        return Refused("a log entry needs a text: what was said")
    way = "from customer" if from_customer else "to customer"
    return Effects(Outcome.DONE, f"{kind} logged by {actor.email}", RULE, ticket=ctx.number,
                   before=ctx.state, after=ctx.state,
                   events=(LogEvent(kind, actor.email, text.strip(), new=way),))


# --- a new conversation ---------------------------------------------------------------


def start_conversation(project: str, site: Site, guard: GuardFacts, email: str, *,
                       customer: Person, subject: str, text: str,
                       files: int = 0) -> Effects | Refused:
    """`ticket new`: an agent writes first. The ticket opens in the workflow's first
    status, handled by the agent, with the customer as requester; the customer gets the
    agent's mail as any agent reply (template agent_first: agent_reply without "Re:",
    the agent's name, the files), and its reply address and Message-ID thread the
    answer into the ticket."""
    actor = agent_of(email, project, site)
    if isinstance(actor, Refused):
        return actor
    if customer.email in site.staff.agents:
        return Refused(f"{customer.email} is an agent, not a customer")
    if not subject.strip():
        return Refused("a new conversation needs a --subject")
    if not text.strip() and not files:
        return Refused("nothing to send: give a text, - for standard input, or --file")
    wf = site.workflow_of(project)
    state = TicketState(0, project, wf.initial, requester=customer.email,
                        assignee=actor.email)
    name = actor.name or actor.email
    mail = MailIntent(MailKind.REPLY, customer, "agent_first", f"{actor.email} wrote first",
                      Audience.CUSTOMER, auto=None, from_name=name, text=text,
                      forward_files=True, agent=Person(actor.email, name))
    effects = Effects(
        Outcome.DONE, f"{actor.email} started a conversation with {customer.email}", RULE,
        open=OpenTicket(project, subject.strip()[:500], wf.initial, customer,
                        link_contact=True),
        message=StoreMessage(Direction.OUT, ActorKind.AGENT, text), after=state,
        mails=(mail,),
        events=(LogEvent("created", actor.email, f"ticket opened in {project} by "
                                                 f"{actor.email} for {customer.email}",
                         new=wf.initial),
                LogEvent("assignee", actor.email, "started the conversation",
                         new=actor.email),
                LogEvent("reply", actor.email)))
    return guarded(effects, guard, None)


# --- merging -------------------------------------------------------------------------


@dataclass(frozen=True)
class Merge:
    """What `ticket merge N --into M` does beyond moving N's rows onto M: N is closed
    and both logs say where the conversation went."""

    source: Effects
    target: Effects


def merge(source: TicketContext, target: TicketContext, site: Site, email: str,
          ) -> Merge | Refused:
    if source.number == target.number:
        return Refused(f"ticket #{source.number} cannot be merged into itself")
    if target.deleted:
        return Refused(f"no ticket #{target.number}")
    for ctx in (source, target):
        actor = agent_of(email, ctx.state.project, site, ctx)
        if isinstance(actor, Refused):
            return actor
    wf = source.workflow
    closed = replace(source.state, status=wf.close, substatus="")
    into = f"merged into #{target.number}"
    events = [LogEvent("merged", email, into, new=f"#{target.number}")]
    if closed.status != source.state.status:
        events.append(LogEvent("status", email, into, old=source.state.status,
                               new=closed.status))
    return Merge(
        Effects(Outcome.DONE, into, RULE, ticket=source.number, before=source.state,
                after=closed, events=tuple(events)),
        Effects(Outcome.DONE, f"#{source.number} merged into it", RULE, ticket=target.number,
                before=target.state, after=target.state,
                events=(LogEvent("merged", email, f"ticket #{source.number} merged into "
                                                  "this one", old=f"#{source.number}"),)))
