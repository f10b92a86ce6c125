"""What an admin's triage of the unassigned queue causes, as `Effects`.

Opening a ticket from a queued mail is decided exactly like a mail routed to a project
(acknowledgement, notifications, guards). Adding a queued mail to a ticket files it as
an incoming message and never forwards it: the admin vouches for where it belongs, not
for what it says. Pure.
"""

from __future__ import annotations

from dataclasses import replace

from routing.actors import ActorKind, Person
from routing.announce import tell_agents
from routing.context import Site, TicketContext
from routing.decide import Incoming, decide
from routing.effects import Direction, Effects, LogEvent, Outcome, StoreMessage
from routing.guards import GuardFacts, guarded
from routing.rules import RouteDecision, Target


def open_from_queue(mail: Incoming, project: str, admin: str, site: Site, guard: GuardFacts,
                    *, quiet: bool, add_contact: bool, queue_id: int) -> Effects:
    decision = RouteDecision(Target.NEW_TICKET, "admin", f"assigned by {admin}",
                             project=project)
    effects = decide(mail, decision, None, site, guard)
    if quiet:
        effects = replace(effects, mails=(), dropped=())
    effects = replace(effects, open=replace(effects.open, link_contact=add_contact))
    return replace(effects, events=(*effects.events, LogEvent(
        "assigned-from-queue", admin, f"unassigned mail {queue_id} opened this ticket")))


def file_into_ticket(mail: Incoming, ctx: TicketContext, admin: str, site: Site,
                     guard: GuardFacts, *, quiet: bool, add_contact: bool,
                     queue_id: int) -> Effects:
    state = ctx.state
    actor = mail.actor_on(state, site)
    agent = actor.may_work_on(state.project)
    after = state
    if add_contact and mail.sender and not agent and mail.sender != state.requester:
        after = replace(state, cc=state.cc | {mail.sender})
    mails = () if quiet or agent else tell_agents(
        after, site, events=("customer_reply",), template="notify_customer_reply",
        reason="a queued mail was added to the ticket", text=mail.text,
        from_name=f"{mail.sender_name or mail.sender or 'unknown'} via "
                  f"{site.policy.support_name}",
        customer=Person(mail.sender or "unknown", mail.sender_name))
    return guarded(Effects(
        Outcome.DONE, f"added by {admin}", "admin", ticket=ctx.number, before=state,
        after=after, mails=mails,
        message=StoreMessage(Direction.IN, ActorKind.AGENT if agent else ActorKind.CUSTOMER,
                             mail.text),
        events=(LogEvent("assigned-from-queue", admin, f"unassigned mail {queue_id} from "
                                                      f"{mail.sender or '?'} appended"),)),
        guard, ctx.number)
