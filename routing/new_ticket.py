"""decide's path for a mail that opens a ticket (`Target.NEW_TICKET`).

The ticket is opened in the routed project's initial status (filed under a group when
the mail went to a group's address), copied people join per `[mail] participants`, the
customer is acknowledged, agents are told, and an agent's forward on behalf of a
customer is recorded as such. Pure: plain values in, one `Effects` out.
"""

from __future__ import annotations

from dataclasses import replace

from routing.actors import ActorKind, Person
from routing.announce import tell_agents
from routing.context import Site, TicketState
from routing.disposition import Disposition
from routing.effects import (
    Audience,
    Direction,
    Effects,
    LogEvent,
    MailIntent,
    MailKind,
    OnBehalf,
    OpenTicket,
    Outcome,
    StoreMessage,
)
from routing.guards import GuardFacts
from routing.incoming import Incoming, answering, finished, joined, joined_events, via
from routing.overview import request_rows
from routing.replytext import split_reply
from routing.rules import RouteDecision, Rule
from routing.turn_mails import one_mail_each, opening_turns


def new_ticket(mail: Incoming, route: RouteDecision, site: Site, guard: GuardFacts) -> Effects:
    wf = site.workflow_of(route.project)
    customer = mail.person
    # an agent writing to a project's address does not become its customer contact
    opened = OpenTicket(route.project, (mail.facts.subject or "(no subject)")[:500], wf.initial,
                        customer, link_contact=route.rule == Rule.PROJECT_ADDRESS
                        and site.staff.get(customer.email) is None)
    state = _filed(TicketState(0, route.project, wf.initial, requester=customer.email),
                   route.group, site)
    notes: list[str] = []
    copied = joined(mail, state, site, guard, notes)
    state = replace(state, cc=frozenset(copied))
    forwarder = mail.forwarded_by if mail.behalf is not None else None
    mails: list[MailIntent] = []
    if mail.auto.no_auto_reply:
        notes.append("no acknowledgement: " + ("; ".join(mail.auto.reasons)
                                                or "the sender asked for none"))
    else:
        # the customer's other open requests close it ([mail] ack_lists_open)
        mails.append(MailIntent(MailKind.ACK, customer, "ack", "acknowledges the new ticket",
                                Audience.CUSTOMER, auto="auto-replied", text=mail.text,
                                in_reply_to=mail.message_id,
                                requests=request_rows(mail.requests, site, open_only=True)))
    # files on a new ticket are told to those who chose file_uploaded, too
    kinds = ("new_ticket", "file_uploaded") if mail.attachments else ("new_ticket",)
    mails.extend(tell_agents(state, site, events=kinds,
                             template="notify_new_ticket", reason="a new ticket in "
                             f"{route.project}", text=mail.text,
                             from_name=via(customer, site), customer=customer,
                             exclude=frozenset({forwarder.email} if forwarder else ())))
    # the first status's acting roles, unless the new-ticket note told them already
    mails = one_mail_each([*mails, *opening_turns(state, wf.status_label(wf.initial),
                                                   customer, site)])
    effects = Effects(
        Outcome.DONE, route.reason, route.rule, open=opened,
        message=StoreMessage(Direction.IN, ActorKind.CUSTOMER,
                             split_reply(mail.text).body or mail.text),
        after=state, mails=tuple(mails),
        events=(LogEvent("created", customer.email, f"ticket opened in {route.project}",
                         new=wf.initial),
                *((LogEvent("group", customer.email, "sent to the group's address",
                            new=state.group),) if state.group else ()),
                *joined_events(customer.email, copied)))
    if forwarder is not None and mail.behalf is not None:
        effects = _on_behalf(effects, mail, customer, forwarder, notes)
    return finished(effects, answering(guard, mail), None, notes,
                    Disposition(route, mail.auto, ActorKind.CUSTOMER))


def _on_behalf(effects: Effects, mail: Incoming, customer: Person, forwarder: Person,
               notes: list[str]) -> Effects:
    """An agent's forward: the ticket is the customer's, the forwarding agent on record."""
    how = mail.behalf.how
    notes.append(f"forwarded by {forwarder.email} on behalf of {customer.email} ({how})")
    return replace(effects, behalf=OnBehalf(customer, forwarder, mail.behalf.note),
                   events=(*effects.events, LogEvent(
                       "forwarded", forwarder.email,
                       f"forwarded on behalf of {customer.email} ({how})")))


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
