"""decide's path for a person's mail to a closed ticket: is it a follow-up, and what then.

The workflow's `after_close` policy (routing.followup) answers; here it is applied to
the mail: a follow-up that reopens goes on as a customer's mail (routing.customer_mail),
one that does not becomes a new ticket linking the old one, or is kept on the closed
ticket with a notice to the sender. Pure: `now` is passed in.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from routing import followup
from routing.actors import ActorKind
from routing.context import Site, TicketContext
from routing.disposition import Disposition
from routing.effects import Effects
from routing.guards import GuardFacts
from routing.incoming import Incoming, answering, finished
from routing.new_ticket import new_ticket
from routing.replytext import split_reply
from routing.rules import RouteDecision, Target


def follow_up_of(mail: Incoming, ctx: TicketContext, site: Site,
                 now: dt.datetime | None) -> followup.FollowUp | None:
    """What a person's mail to a closed ticket does (routing.followup); None when it is
    no follow-up: the ticket is open, the mail automatic, or an agent's."""
    actor = mail.actor_on(ctx.state, site)
    if now is None or mail.auto.automatic or actor.may_work_on(ctx.state.project):
        return None
    wf = ctx.workflow
    return followup.follow_up(wf.after_close, wf.reopen_within_days, now=now,
                              closed_at=ctx.closed_at,
                              closed=wf.category(ctx.state.status) == "closed")


def not_reopened(mail: Incoming, route: RouteDecision, ctx: TicketContext, site: Site,
                 guard: GuardFacts, fu: followup.FollowUp) -> Effects:
    """A follow-up that leaves the closed ticket closed: a new ticket linking it, or the
    mail kept on it with a notice to the sender (`reject`)."""
    if fu.action == followup.NEW_TICKET:
        return followup.linked_to_old(new_ticket(mail, replace(
            route, target=Target.NEW_TICKET, ticket=None, project=ctx.state.project),
            site, guard), ctx.number, fu)
    effects = replace(followup.rejected(
        split_reply(mail.text).body or mail.text, mail.person, ctx.state, fu,
        message_id=mail.message_id, answer=not mail.auto.no_auto_reply),
        ticket=ctx.number, before=ctx.state, rule=route.rule,
        reason=f"{route.reason}; {fu.reason}")
    effects = finished(effects, answering(guard, mail), ctx.number, [],
                       Disposition(route, mail.auto, ActorKind.CUSTOMER))
    return replace(effects, disposition=followup.noted(effects.disposition, fu))
