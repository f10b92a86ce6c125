"""The incoming mail as `routing.decide` sees it, and the steps all of decide's paths share.

`Incoming` is what decide needs to know about the mail itself; the helpers below finish
an `Effects` the same way on every path (the guard chain, the disposition), write the
sender's transcript, name a mail "X via support" and bring copied people onto a ticket.
Pure: plain values in, plain values out.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from routing.actors import Actor, Person, classify_actor
from routing.announce import changes_and_mails
from routing.commands import Plan
from routing.context import Site, TicketContext, TicketState
from routing.disposition import CommandResult, Disposition
from routing.effects import Audience, Change, Effects, LogEvent, MailIntent, MailKind
from routing.forwards import Forwarded
from routing.guards import GuardFacts, guarded
from routing.loops import AutoClass
from routing.overview import Request
from routing.participants import new_participants
from routing.rules import MailFacts, RouteDecision
from routing.trust import Verdict


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
    copied: tuple[str, ...] = ()            # the mail's To and Cc addresses
    # an agent's forward on behalf of a customer: facts, name and text are then the
    # customer's (routing.forwards), `forwarded_by` the agent
    behalf: Forwarded | None = None
    forwarded_by: Person | None = None
    # the sender's own requests (routing.overview), gathered for a /list mail and, with
    # [mail] ack_lists_open, for the acknowledgement
    requests: tuple[Request, ...] = ()

    @property
    def sender(self) -> str:
        return self.facts.sender or ""

    @property
    def person(self) -> Person:
        return Person(self.sender, self.sender_name)

    def actor_on(self, state: TicketState, site: Site) -> Actor:
        """Who the sender is on the ticket in `state`: agent, requester, copied, stranger."""
        return classify_actor(self.sender, site.staff, requester=state.requester,
                              cc=state.cc, name=self.sender_name)


def finished(effects: Effects, guard: GuardFacts, ticket: int | None, notes: list[str],
             disposition: Disposition) -> Effects:
    """The effects with every planned mail through the guard chain and the disposition
    (with its notes) recorded."""
    return replace(guarded(effects, guard, ticket),
                   disposition=replace(disposition, notes=tuple(notes)).to_json())


def disposition_of(mail: Incoming, route: RouteDecision, actor: Actor,
                   plan_: Plan | None) -> Disposition:
    """How a mail on a ticket was taken, with what each of its commands did."""
    return Disposition(route, mail.auto, actor.kind, mail.verdict, commands=tuple(
        CommandResult(o.command.line, o.ok, o.message) for o in (plan_.outcomes if plan_
                                                                  else ())))


def answering(guard: GuardFacts, mail: Incoming) -> GuardFacts:
    return replace(guard, answers=mail.sender if mail.auto.automatic else "")


def sender_transcript(mail: Incoming, text: str, audience: Audience) -> MailIntent:
    return MailIntent(MailKind.TRANSCRIPT, mail.person, "transcript",
                      "answers the commands in the sender's mail", audience,
                      auto="auto-replied", transcript=text, in_reply_to=mail.message_id)


def via(person: Person, site: Site) -> str:
    return f"{person.name or person.email} via {site.policy.support_name}"


def plan_effects(ctx: TicketContext, site: Site, actor: Actor, plan_: Plan | None, *,
                 tell_customers: bool,
                 ) -> tuple[tuple[Change, ...], tuple[LogEvent, ...], tuple[MailIntent, ...]]:
    if plan_ is None or not plan_.applied:
        return (), (), ()
    return changes_and_mails(ctx, plan_.before, plan_.after, actor, site,
                             causes=plan_.cause_of(), tell_customers=tell_customers)


def joined(mail: Incoming, state: TicketState, site: Site, guard: GuardFacts,
           notes: list[str]) -> tuple[str, ...]:
    """The To/Cc addresses of a customer's (never automatic) mail that become participants
    of the ticket per `[mail] participants` (routing.participants)."""
    if mail.auto.automatic or not mail.copied or site.staff.get(mail.sender) is not None:
        return ()
    found = new_participants(mail.copied, writer=mail.sender, mode=site.policy.participants,
                             known=frozenset({state.requester, *state.cc}), staff=site.staff,
                             own=guard.own_addresses)
    notes.extend(found.notes())
    return found.added


def joined_events(actor: str, joined: tuple[str, ...]) -> tuple[LogEvent, ...]:
    return tuple(LogEvent("cc", actor, "copied on the customer's mail ([mail] participants)",
                          new=a) for a in joined)
