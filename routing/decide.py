"""The one step after routing: everything an incoming mail causes, as `Effects`.

`decide(mail, route, ticket, site, guard)` answers, for a routed mail: what is stored
and how (a customer's message, an agent's reply, an internal note), which ticket is
opened or changed and by which rule, which commands run and what the sender is told,
which mails go to whom. Every planned mail passes the guard chain here, before anything
is rendered. Pure: plain values in, one frozen value out; the handler gathers the
context beforehand and applies the result in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from routing.actors import Actor, ActorKind, Person, classify_actor
from routing.announce import changes_and_mails, tell_agents
from routing.commands import Plan, find_commands, plan, refuse_all, transcript
from routing.context import Site, TicketContext, TicketState
from routing.disposition import CommandResult, Disposition
from routing.effects import (
    Audience,
    Change,
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
from routing.loops import AutoClass
from routing.replytext import split_reply
from routing.rules import MailFacts, RouteDecision, Rule, Target
from routing.trust import Verdict
from routing.workflow import after_customer_reply

COMMANDS_NEED_TOKEN = ("commands are only read in replies to the ticket's own reply address "
                       "(the Reply-To of our mails)")


@dataclass(frozen=True)
class Incoming:
    """What `decide` needs to know about the mail itself."""

    facts: MailFacts
    sender_name: str = ""
    message_id: str = ""
    text: str = ""
    attachments: int = 0
    auto: AutoClass = field(default_factory=AutoClass.human)
    verdict: Verdict = field(default_factory=Verdict.unchecked)

    @property
    def sender(self) -> str:
        return self.facts.sender or ""

    @property
    def person(self) -> Person:
        return Person(self.sender, self.sender_name)


def decide(mail: Incoming, route: RouteDecision, ticket: TicketContext | None, site: Site,
           guard: GuardFacts) -> Effects:
    if route.target is Target.UNASSIGNED or (route.target is Target.TICKET and ticket is None):
        return Effects(Outcome.UNASSIGNED, route.reason, route.rule,
                       message=StoreMessage(Direction.IN, "stranger", mail.text),
                       disposition=Disposition(route, mail.auto, ActorKind.STRANGER).to_json())
    if route.target is Target.NEW_TICKET:
        return _new_ticket(mail, route, site, guard)
    return _to_ticket(mail, route, ticket, site, guard)


def _guarded(effects: Effects, guard: GuardFacts, ticket: int | None, notes: list[str],
             disposition: Disposition) -> Effects:
    return replace(guarded(effects, guard, ticket),
                   disposition=replace(disposition, notes=tuple(notes)).to_json())


# --- a new ticket -----------------------------------------------------------------------


def _new_ticket(mail: Incoming, route: RouteDecision, site: Site, guard: GuardFacts) -> Effects:
    wf = site.workflow_of(route.project)
    customer = mail.person
    opened = OpenTicket(route.project, (mail.facts.subject or "(no subject)")[:500], wf.initial,
                        customer, link_contact=route.rule == Rule.PROJECT_ADDRESS)
    state = TicketState(0, route.project, wf.initial, requester=customer.email)
    notes: list[str] = []
    mails: list[MailIntent] = []
    if mail.auto.no_auto_reply:
        notes.append("no acknowledgement: " + ("; ".join(mail.auto.reasons)
                                                or "the sender asked for none"))
    else:
        mails.append(MailIntent(MailKind.ACK, customer, "ack", "acknowledges the new ticket",
                                Audience.CUSTOMER, auto="auto-replied", text=mail.text,
                                in_reply_to=mail.message_id))
    mails.extend(tell_agents(state, site, events=("new_ticket",),
                             template="notify_new_ticket", reason="a new ticket in "
                             f"{route.project}", text=mail.text,
                             from_name=_via(customer, site), customer=customer))
    effects = Effects(
        Outcome.DONE, route.reason, route.rule, open=opened,
        message=StoreMessage(Direction.IN, ActorKind.CUSTOMER,
                             split_reply(mail.text).body or mail.text),
        after=state, mails=tuple(mails),
        events=(LogEvent("created", customer.email, f"ticket opened in {route.project}",
                         new=wf.initial),))
    return _guarded(effects, _answering(guard, mail), None, notes,
                    Disposition(route, mail.auto, ActorKind.CUSTOMER))


# --- a mail on an existing ticket ---------------------------------------------------------


def _to_ticket(mail: Incoming, route: RouteDecision, ctx: TicketContext, site: Site,
               guard: GuardFacts) -> Effects:
    state = ctx.state
    actor = classify_actor(mail.sender, site.staff, requester=state.requester, cc=state.cc,
                           name=mail.sender_name)
    parts = split_reply(mail.text)
    found = find_commands(parts.body)
    body = found.text if found.commands else parts.body
    notes: list[str] = []
    plan_: Plan | None = None
    if found.commands and mail.auto.automatic:
        notes.append("commands not read: automatic mail")
    elif found.commands:
        if route.rule != Rule.REPLY_TOKEN:
            plan_ = refuse_all(found.commands, state, COMMANDS_NEED_TOKEN)
        elif not mail.verdict.ok:
            plan_ = refuse_all(found.commands, state, f"your mail could not be verified: "
                                                      f"{mail.verdict.reason}")
        else:
            plan_ = plan(found.commands, state, actor, ctx.workflow, site.world)
    disposition = Disposition(route, mail.auto, actor.kind, mail.verdict, commands=tuple(
        CommandResult(o.command.line, o.ok, o.message) for o in (plan_.outcomes if plan_
                                                                  else ())))
    if actor.may_work_on(state.project):
        effects = _agent_mail(mail, route, ctx, site, actor, parts, body, plan_, notes)
    else:
        effects = _customer_mail(mail, ctx, site, actor, body, plan_, notes)
    effects = replace(effects, ticket=ctx.number, before=state, reason=route.reason,
                      rule=route.rule)
    return _guarded(effects, _answering(guard, mail), ctx.number, notes, disposition)


def _agent_mail(mail: Incoming, route: RouteDecision, ctx: TicketContext, site: Site,
                actor: Actor, parts, body: str, plan_: Plan | None, notes: list[str]) -> Effects:
    text = "\n\n".join(p for p in (body, parts.signature) if p.strip())
    internal_why = ""
    if route.purpose == "note" or (plan_ is not None and plan_.note):
        internal_why = "an internal note"
    elif mail.auto.automatic:
        internal_why = "automatic mail from an agent (" + "; ".join(mail.auto.reasons) + \
                       "): kept internal, never sent to a customer"
    elif not mail.verdict.ok:
        internal_why = f"the sender could not be verified ({mail.verdict.reason})"
    forwarded = not internal_why and bool(body.strip() or mail.attachments)
    changes, events, mails = _plan_effects(ctx, site, actor, plan_, tell_customers=not (
        forwarded and body.strip()))
    mails = list(mails)
    if plan_ is not None:
        mails.append(_transcript(mail, transcript(plan_), Audience.AGENT))
    elif not mail.verdict.ok and not mail.auto.automatic:
        mails.append(_transcript(mail, f"Your mail could not be verified ({mail.verdict.reason})."
                                       " It was kept as an internal note and not sent to the "
                                       "customer.\n", Audience.AGENT))
    after = plan_.after if plan_ is not None and plan_.applied else ctx.state
    if internal_why:
        notes.append(f"stored as {internal_why}" if internal_why.startswith("an ")
                     else f"stored internally: {internal_why}")
        return Effects(Outcome.DONE, route.reason, route.rule,
                       message=StoreMessage(Direction.INTERNAL, ActorKind.AGENT, text),
                       after=after, changes=changes, mails=tuple(mails),
                       events=(*events, LogEvent("note", actor.email, internal_why)))
    if forwarded:
        name = actor.name or mail.sender_name or actor.email
        mails.extend(MailIntent(MailKind.REPLY, c, "agent_reply", f"{actor.email} answered",
                                Audience.CUSTOMER, auto=None, from_name=name, text=text,
                                in_reply_to=ctx.last_inbound, forward_files=True,
                                agent=Person(actor.email, name))
                     for c in customers_after(ctx, after))
    return Effects(Outcome.DONE, route.reason, route.rule,
                   message=StoreMessage(Direction.OUT, ActorKind.AGENT, text), after=after,
                   changes=changes, mails=tuple(mails),
                   events=(*events, LogEvent("reply", actor.email)))


def _customer_mail(mail: Incoming, ctx: TicketContext, site: Site, actor: Actor, body: str,
                   plan_: Plan | None, notes: list[str]) -> Effects:
    changes, events, mails = _plan_effects(ctx, site, actor, plan_, tell_customers=True)
    mails = list(mails)
    if plan_ is not None:
        mails.append(_transcript(mail, transcript(plan_), Audience.CUSTOMER))
    after = plan_.after if plan_ is not None and plan_.applied else ctx.state
    moved = after.status != ctx.state.status
    effect = after_customer_reply(ctx.workflow, after.status)
    if effect and not moved and not mail.auto.automatic:
        status, sub = effect
        target = replace(after, status=status, substatus=sub or after.substatus)
        rule = f"workflow: a customer's reply in {ctx.workflow.status_label(after.status)}"
        more_changes, more_events, more_mails = changes_and_mails(
            ctx, after, target, actor, site,
            causes={name: rule for name in ("status", "substatus")})
        changes, events, after = changes + more_changes, events + more_events, target
        mails.extend(more_mails)
    elif effect and mail.auto.automatic:
        notes.append("status unchanged: automatic mail")
    events_kinds = ("customer_reply", "file_uploaded") if mail.attachments else (
        "customer_reply",)
    mails.extend(tell_agents(after, site, events=events_kinds,
                             template="notify_customer_reply", reason="the customer wrote",
                             text=body or mail.text, from_name=_via(mail.person, site),
                             customer=mail.person, exclude=frozenset({actor.email})))
    return Effects(Outcome.DONE, "", "",
                   message=StoreMessage(Direction.IN, ActorKind.CUSTOMER, body or mail.text),
                   after=after, changes=changes, mails=tuple(mails),
                   events=(*events, LogEvent("message", actor.email)))


def customers_after(ctx: TicketContext, after: TicketState) -> tuple[Person, ...]:
    """The ticket's customers once `after` applies (people added or removed by /cc)."""
    kept = tuple(c for c in ctx.customers
                 if c.email == after.requester or c.email in after.cc
                 or c.email not in ctx.state.cc)
    known = {c.email for c in kept}
    return kept + tuple(Person(e) for e in sorted(after.cc) if e not in known)


def _plan_effects(ctx: TicketContext, site: Site, actor: Actor, plan_: Plan | None, *,
                  tell_customers: bool,
                  ) -> tuple[tuple[Change, ...], tuple[LogEvent, ...], tuple[MailIntent, ...]]:
    if plan_ is None or not plan_.applied:
        return (), (), ()
    return changes_and_mails(ctx, plan_.before, plan_.after, actor, site,
                             causes=plan_.cause_of(), tell_customers=tell_customers)


def _transcript(mail: Incoming, text: str, audience: Audience) -> MailIntent:
    return MailIntent(MailKind.TRANSCRIPT, mail.person, "transcript",
                      "answers the commands in the sender's mail", audience,
                      auto="auto-replied", transcript=text, in_reply_to=mail.message_id)


def _via(person: Person, site: Site) -> str:
    return f"{person.name or person.email} via {site.policy.support_name}"


def _answering(guard: GuardFacts, mail: Incoming) -> GuardFacts:
    return replace(guard, answers=mail.sender if mail.auto.automatic else "")
