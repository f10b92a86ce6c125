"""The one step after routing: everything an incoming mail causes, as `Effects`.

`decide(mail, route, ticket, site, guard)` answers, for a routed mail: what is stored
and how (a customer's message, an agent's reply, an internal note), which ticket is
opened or changed and by which rule, which commands run and what the sender is told,
which mails go to whom. Every planned mail passes the guard chain here, before anything
is rendered. Pure: plain values in, one frozen value out; the handler gathers the
context beforehand and applies the result in one transaction.

This module is the entry point and the dispatch; each path has its own module:
routing.new_ticket, routing.closed_ticket (follow-ups), routing.agent_mail,
routing.customer_mail, with `Incoming` and the shared steps in routing.incoming.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from routing import followup
from routing.actors import ActorKind
from routing.agent_mail import agent_action, agent_mail, agent_unproven, unproven_agent_mail
from routing.closed_ticket import follow_up_of, not_reopened
from routing.commands import Plan, find_commands, plan, refuse_all
from routing.context import Site, TicketContext
from routing.customer_mail import customer_mail
from routing.disposition import Disposition
from routing.effects import Direction, Effects, Outcome, StoreMessage
from routing.guards import GuardFacts
from routing.incoming import (
    Incoming,
    answering,
    disposition_of,
    finished,
    joined,
    joined_events,
)
from routing.new_ticket import new_ticket
from routing.overview import answer_overview, asks_overview
from routing.replytext import split_reply
from routing.rules import RouteDecision, Rule, Target

# callers import these from here: the entry point, its input and the command line's way in
__all__ = ["COMMANDS_NEED_TOKEN", "Incoming", "agent_action", "decide"]

COMMANDS_NEED_TOKEN = ("commands are only read in replies to the ticket's own reply address "
                       "(the Reply-To of our mails)")


def decide(mail: Incoming, route: RouteDecision, ticket: TicketContext | None, site: Site,
           guard: GuardFacts, now: dt.datetime | None = None) -> Effects:
    """`now`: when the mail is decided (a follow-up's age; None: no follow-up rules)."""
    if _overview_wanted(mail, route, site):
        return _overview(mail, route, site, guard)
    if route.target is Target.UNASSIGNED or (route.target is Target.TICKET and ticket is None):
        return Effects(Outcome.UNASSIGNED, route.reason, route.rule,
                       message=StoreMessage(Direction.IN, "stranger", mail.text),
                       disposition=Disposition(route, mail.auto, ActorKind.STRANGER).to_json())
    if route.target is Target.NEW_TICKET:
        return new_ticket(mail, route, site, guard)
    fu = follow_up_of(mail, ticket, site, now)
    if fu is not None and fu.action in (followup.NEW_TICKET, followup.REJECT):
        return not_reopened(mail, route, ticket, site, guard, fu)
    effects = _to_ticket(mail, route, ticket, site, guard, reopen=fu)
    return effects if fu is None else replace(
        effects, disposition=followup.noted(effects.disposition, fu))


# --- a customer's overview (/list) ----------------------------------------------------


def _overview_wanted(mail: Incoming, route: RouteDecision, site: Site) -> bool:
    """A `/list` mail from someone with an address, to the support or a project address
    (or a customer's reply to a ticket): no ticket is opened or written to for it. An
    agent's mail to a ticket keeps to the agent's commands."""
    if not mail.sender or route.purpose == "note" or not asks_overview(mail.text):
        return False
    return route.target is not Target.TICKET or site.staff.get(mail.sender) is None


def _overview(mail: Incoming, route: RouteDecision, site: Site, guard: GuardFacts) -> Effects:
    effects, notes = answer_overview(
        mail.person, mail.requests, site, project=route.project or "", text=mail.text,
        message_id=mail.message_id, automatic=mail.auto.automatic,
        verified=mail.verdict.ok, unverified_why=mail.verdict.reason)
    kind = ActorKind.CUSTOMER if mail.requests else ActorKind.STRANGER
    return finished(effects, answering(guard, mail), None, notes,
                    Disposition(route, mail.auto, kind, mail.verdict))


# --- a mail on an existing ticket ---------------------------------------------------------


def _to_ticket(mail: Incoming, route: RouteDecision, ctx: TicketContext, site: Site,
               guard: GuardFacts, reopen: followup.FollowUp | None = None) -> Effects:
    state = ctx.state
    actor = mail.actor_on(state, site)
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
    disposition = disposition_of(mail, route, actor, plan_)
    if unproven:
        effects = unproven_agent_mail(mail, route, actor, parts, body, unproven, notes,
                                      state)
    elif actor.may_work_on(state.project):
        effects = agent_mail(mail, route, ctx, site, actor, parts, body, plan_, notes)
    else:
        effects = customer_mail(mail, ctx, site, actor, body, plan_, notes, reopen)
        # a From and a [#N] are easy to forge: only a mail in the ticket's own thread
        # (its reply address or Message-IDs) brings people in who then read the answers
        threaded = route.rule in (Rule.REPLY_TOKEN, Rule.REFERENCES) and mail.verdict.ok
        if threaded and effects.after is not None and (
                copied := joined(mail, effects.after, site, guard, notes)):
            effects = replace(effects, after=replace(effects.after,
                                                     cc=effects.after.cc | set(copied)),
                              events=(*effects.events, *joined_events(actor.email, copied)))
    effects = replace(effects, ticket=ctx.number, before=state, reason=route.reason,
                      rule=route.rule)
    return finished(effects, answering(guard, mail), ctx.number, notes, disposition)


def _commands_refused(mail: Incoming, route: RouteDecision, unproven: str) -> str:
    """Why no command of this mail is read ("" = they are planned), first reason first."""
    if route.rule != Rule.REPLY_TOKEN:
        return COMMANDS_NEED_TOKEN
    if not mail.verdict.ok:
        return f"your mail could not be verified: {mail.verdict.reason}"
    return unproven
