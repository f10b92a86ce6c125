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
from routing.announce import booked_time, changes_and_mails, tell_agents
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

UNVERIFIED = "unverified"      # the author of a message an agent's address sent unproven
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
    state = _filed(TicketState(0, route.project, wf.initial, requester=customer.email),
                   route.group, site)
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
                         new=wf.initial),
                *((LogEvent("group", customer.email, "sent to the group's address",
                            new=state.group),) if state.group else ())))
    return _guarded(effects, _answering(guard, mail), None, notes,
                    Disposition(route, mail.auto, ActorKind.CUSTOMER))


def _filed(state: TicketState, group: str, site: Site) -> TicketState:
    """A new ticket sent to a group's address: filed under the group, owned and handled
    by its owner (who may hand the work on and stay the owner)."""
    if not group:
        return state
    owner = site.policy.groups.get(group, "")
    agent = site.staff.get(owner)
    if agent is None or not agent.works_on(state.project):
        return replace(state, group=group)
    return replace(state, group=group, owner=owner, assignee=owner)


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
    unproven = agent_unproven(mail, route, site) if actor.may_work_on(state.project) else ""
    if found.commands and mail.auto.automatic:
        notes.append("commands not read: automatic mail")
    elif found.commands:
        refused = _commands_refused(mail, route, unproven)
        plan_ = (refuse_all(found.commands, state, refused) if refused
                 else plan(found.commands, state, actor, ctx.workflow, site.world))
    disposition = Disposition(route, mail.auto, actor.kind, mail.verdict, commands=tuple(
        CommandResult(o.command.line, o.ok, o.message) for o in (plan_.outcomes if plan_
                                                                  else ())))
    if unproven:
        effects = _unproven_agent_mail(mail, route, actor, parts, body, unproven, notes,
                                       state)
    elif actor.may_work_on(state.project):
        effects = _agent_mail(mail, route, ctx, site, actor, parts, body, plan_, notes)
    else:
        effects = _customer_mail(mail, ctx, site, actor, body, plan_, notes)
    effects = replace(effects, ticket=ctx.number, before=state, reason=route.reason,
                      rule=route.rule)
    return _guarded(effects, _answering(guard, mail), ctx.number, notes, disposition)


_HOW = {Rule.REFERENCES: "its In-Reply-To/References headers",
        Rule.SUBJECT_TAG: "the ticket number in its subject",
        Rule.SENDER: "its sender address"}


def _commands_refused(mail: Incoming, route: RouteDecision, unproven: str) -> str:
    """Why no command of this mail is read ("" = they are planned), first reason first."""
    if route.rule != Rule.REPLY_TOKEN:
        return COMMANDS_NEED_TOKEN
    if not mail.verdict.ok:
        return f"your mail could not be verified: {mail.verdict.reason}"
    return unproven


def agent_unproven(mail: Incoming, route: RouteDecision, site: Site) -> str:
    """Why a mail from an agent's address does not prove that the agent wrote it ("" when
    it does). A From is easy to forge; a reply address is issued to one agent for one
    ticket, so arriving there is the proof ([trust] agents = "token"). "verified" wants
    the From checked by DKIM or our MTA as well."""
    if route.rule != Rule.REPLY_TOKEN:
        how = _HOW.get(route.rule, "another way")
        return f"it reached the ticket by {how}, not at a reply address issued to you"
    if site.policy.agent_trust == "verified" and not mail.verdict.checked:
        return "agent mail must be verified, and nothing is configured to verify it"
    return ""


def _unproven_agent_mail(mail: Incoming, route: RouteDecision, actor: Actor, parts,
                         body: str, why: str, notes: list[str], state: TicketState,
                         ) -> Effects:
    """Kept where agents see it, marked unverified; nothing reaches a customer or changes.
    The real agent is told (a forger's mail alerts its victim) with a proper reply address."""
    text = "\n\n".join(p for p in (body, parts.signature) if p.strip())
    notes.append(f"stored internally, unverified: {why}")
    mails = () if mail.auto.automatic else (MailIntent(
        MailKind.TRANSCRIPT, Person(actor.email, actor.name), "agent_unverified",
        "tells an agent why their mail was not sent on", Audience.AGENT, auto="auto-replied",
        transcript=why, in_reply_to=mail.message_id),)
    return Effects(Outcome.DONE, route.reason, route.rule,
                   message=StoreMessage(Direction.INTERNAL, UNVERIFIED, text), after=state,
                   mails=mails,
                   events=(LogEvent("unverified", actor.email, why),))


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
    booking, booked, quota_notes = booked_time(plan_.before, plan_.after, actor, site) \
        if plan_ is not None and plan_.applied else (None, (), ())
    events, mails = events + booked, list(mails) + list(quota_notes)
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
                       after=after, changes=changes, mails=tuple(mails), booking=booking,
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
                   changes=changes, mails=tuple(mails), booking=booking,
                   events=(*events, LogEvent("reply", actor.email)))


def _customer_mail(mail: Incoming, ctx: TicketContext, site: Site, actor: Actor, body: str,
                   plan_: Plan | None, notes: list[str]) -> Effects:
    changes, events, mails = _plan_effects(ctx, site, actor, plan_, tell_customers=True)
    mails = list(mails)
    if plan_ is not None:
        mails.append(_transcript(mail, transcript(plan_), Audience.CUSTOMER))
    after = plan_.after if plan_ is not None and plan_.applied else ctx.state
    # a customer's own command (a close, an approval's sub-status) beats the reply rule
    moved = after.status != ctx.state.status or after.substatus != ctx.state.substatus
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
