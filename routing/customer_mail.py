"""decide's path for a customer's (or any non-agent's) mail on a ticket.

The customer's commands are applied and answered in the customer's language, the
workflow's `on_customer_reply` (or a follow-up's reopen) moves the status unless the
customer's own command already did, and the ticket's agents are told. Pure: plain
values in, one `Effects` out.
"""

from __future__ import annotations

from dataclasses import replace

from routing import followup
from routing.actors import Actor, ActorKind
from routing.announce import changes_and_mails, tell_agents
from routing.commands import Plan
from routing.context import Site, TicketContext
from routing.effects import Audience, Direction, Effects, LogEvent, Outcome, StoreMessage
from routing.incoming import Incoming, plan_effects, sender_transcript, via
from routing.transcripts import customer_transcript
from routing.turn_mails import one_mail_each
from routing.workflow import after_customer_reply


def customer_mail(mail: Incoming, ctx: TicketContext, site: Site, actor: Actor, body: str,
                  plan_: Plan | None, notes: list[str],
                  follow: followup.FollowUp | None = None) -> Effects:
    changes, events, mails = plan_effects(ctx, site, actor, plan_, tell_customers=True)
    mails = list(mails)
    if plan_ is not None:
        # in the customer's language (routing.transcripts); agents read the English one
        mails.append(sender_transcript(mail, customer_transcript(plan_, ctx.workflow,
                                                                 ctx.project.language),
                                       Audience.CUSTOMER))
    after = plan_.after if plan_ is not None and plan_.applied else ctx.state
    # a customer's own command (a close, an approval's sub-status) beats the reply rule
    moved = after.status != ctx.state.status or after.substatus != ctx.state.substatus
    effect = after_customer_reply(ctx.workflow, after.status)
    reopens = follow is not None and follow.action != followup.APPEND   # a follow-up
    if reopens:
        effect = (ctx.workflow.reopen, "")
    if effect and not moved and not mail.auto.automatic:
        status, sub = effect
        target = replace(after, status=status, substatus=sub or after.substatus)
        rule = f"workflow: a customer's reply in {ctx.workflow.status_label(after.status)}"
        if reopens:
            rule = f"workflow: a follow-up to a closed ticket ({follow.reason})"
            if ctx.workflow.urgent_on_reopen:
                target = replace(target, urgent=True, priority=3)
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
                             text=body or mail.text, from_name=via(mail.person, site),
                             customer=mail.person, exclude=frozenset({actor.email})))
    mails = one_mail_each(mails)     # the reply's note tells whose turn it is, not a second
    return Effects(Outcome.DONE, "", "",
                   message=StoreMessage(Direction.IN, ActorKind.CUSTOMER, body or mail.text),
                   after=after, changes=changes, mails=tuple(mails),
                   events=(*events, LogEvent("message", actor.email)))
