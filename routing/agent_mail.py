"""decide's path for an agent's mail on a ticket, and for the same act from the command line.

An agent's reply goes to the ticket's customers (with the changes its commands made), a
note stays internal, and a mail that does not prove the agent wrote it (`agent_unproven`)
is kept where agents see it, marked unverified, and changes nothing. `agent_action` is
the command line's way in: the same effects without a mail to read. Pure: plain values
in, one `Effects` out.
"""

from __future__ import annotations

from dataclasses import replace

from routing.actors import Actor, ActorKind, Person
from routing.announce import booked_time, tell_colleagues
from routing.commands import Plan, transcript
from routing.context import Site, TicketContext, TicketState
from routing.effects import (
    Audience,
    Direction,
    Effects,
    LogEvent,
    MailIntent,
    MailKind,
    Outcome,
    StoreMessage,
)
from routing.every_change import every_change, told_changes
from routing.guards import GuardFacts
from routing.incoming import (
    Incoming,
    disposition_of,
    finished,
    plan_effects,
    sender_transcript,
    via,
)
from routing.replytext import ReplyParts
from routing.rules import RouteDecision, Rule

UNVERIFIED = "unverified"      # the author of a message an agent's address sent unproven
# a mail whose /template line was refused is not sent without the text it asked for
CANNED_REFUSED = "the canned reply could not be inserted, so the mail was not sent to the customer"

_HOW = {Rule.REFERENCES: "its In-Reply-To/References headers",
        Rule.SUBJECT_TAG: "the ticket number in its subject",
        Rule.SENDER: "its sender address"}


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


def unproven_agent_mail(mail: Incoming, route: RouteDecision, actor: Actor, parts,
                        body: str, why: str, notes: list[str], state: TicketState,
                        ) -> Effects:
    """Kept where agents see it, marked unverified; nothing reaches a customer or changes.
    The real agent is told (a forger's mail alerts its victim) with a proper reply address."""
    text = _with_signature(body, parts)
    notes.append(f"stored internally, unverified: {why}")
    mails = () if mail.auto.automatic else (MailIntent(
        MailKind.TRANSCRIPT, Person(actor.email, actor.name), "agent_unverified",
        "tells an agent why their mail was not sent on", Audience.AGENT, auto="auto-replied",
        transcript=why, in_reply_to=mail.message_id),)
    return Effects(Outcome.DONE, route.reason, route.rule,
                   message=StoreMessage(Direction.INTERNAL, UNVERIFIED, text), after=state,
                   mails=mails,
                   events=(LogEvent("unverified", actor.email, why),))


def agent_mail(mail: Incoming, route: RouteDecision, ctx: TicketContext, site: Site,
               actor: Actor, parts, body: str, plan_: Plan | None, notes: list[str]) -> Effects:
    text = _with_signature(body, parts)
    applied = plan_ is not None and plan_.applied
    canned = plan_.canned if applied else ()
    internal_why = ""
    if route.purpose == "note" or (plan_ is not None and plan_.note):
        internal_why = "an internal note"
    elif mail.auto.automatic:
        internal_why = "automatic mail from an agent (" + "; ".join(mail.auto.reasons) + \
                       "): kept internal, never sent to a customer"
    elif not mail.verdict.ok:
        internal_why = f"the sender could not be verified ({mail.verdict.reason})"
    elif plan_ is not None and not plan_.applied and _asks_canned(plan_):
        internal_why = CANNED_REFUSED
    writes = bool(body.strip() or canned)
    forwarded = not internal_why and (writes or bool(mail.attachments))
    # the forwarded reply tells the customer the changes: every one in an every-change
    # workflow (routing.every_change), else just the status it names at its foot
    in_reply = forwarded and (writes or every_change(ctx.workflow))
    changes, events, mails = plan_effects(ctx, site, actor, plan_,
                                          tell_customers=not in_reply)
    booking, booked, quota_notes = booked_time(plan_.before, plan_.after, actor, site) \
        if applied else (None, (), ())
    events, mails = events + booked, list(mails) + list(quota_notes)
    if plan_ is not None:
        told = f"\n{CANNED_REFUSED[0].upper()}{CANNED_REFUSED[1:]}.\n" \
            if internal_why == CANNED_REFUSED else ""
        mails.append(sender_transcript(mail, transcript(plan_) + told, Audience.AGENT))
    elif not mail.verdict.ok and not mail.auto.automatic:
        mails.append(sender_transcript(
            mail, f"Your mail could not be verified ({mail.verdict.reason})."
                  " It was kept as an internal note and not sent to the "
                  "customer.\n", Audience.AGENT))
    after = plan_.after if applied else ctx.state
    if internal_why:
        notes.append(f"stored as {internal_why}" if internal_why.startswith("an ")
                     else f"stored internally: {internal_why}")
        return Effects(Outcome.DONE, route.reason, route.rule,
                       message=StoreMessage(Direction.INTERNAL, ActorKind.AGENT, text),
                       after=after, changes=changes, mails=tuple(mails), booking=booking,
                       events=(*events, LogEvent("note", actor.email, internal_why)),
                       canned=canned)
    if forwarded:
        name = actor.name or mail.sender_name or actor.email
        customers = customers_after(ctx, after)
        mails.extend(MailIntent(MailKind.REPLY, c, "agent_reply", f"{actor.email} answered",
                                Audience.CUSTOMER, auto=None, from_name=name, text=text,
                                in_reply_to=ctx.last_inbound, forward_files=True,
                                agent=Person(actor.email, name),
                                changes=told_changes(plan_.before, plan_.after, site)
                                if applied else ())
                     for c in customers)
        mails.extend(tell_colleagues(after, site, Person(actor.email, name), text=text,
                                     from_name=via(Person(actor.email, name), site),
                                     customer=customers[0] if customers else None))
    return Effects(Outcome.DONE, route.reason, route.rule,
                   message=StoreMessage(Direction.OUT, ActorKind.AGENT, text), after=after,
                   changes=changes, mails=tuple(mails), booking=booking,
                   events=(*events, LogEvent("reply", actor.email)), canned=canned)


def _with_signature(body: str, parts: ReplyParts) -> str:
    """What an agent's mail keeps: its new text and signature, not the quoted history."""
    return "\n\n".join(p for p in (body, parts.signature) if p.strip())


def _asks_canned(plan_: Plan) -> bool:
    return any(o.command.verb == "template" for o in plan_.outcomes)


def agent_action(mail: Incoming, route: RouteDecision, ctx: TicketContext, site: Site,
                 guard: GuardFacts, actor: Actor, plan_: Plan | None) -> Effects:
    """An agent's reply, note or commands that came without a mail to read (the command
    line): the same effects as an agent's mail, its text taken exactly as given (nothing
    trimmed as a quote or signature) and its commands already planned into `plan_`."""
    notes: list[str] = []
    effects = agent_mail(mail, route, ctx, site, actor, ReplyParts(mail.text, "", ""),
                         mail.text, plan_, notes)
    effects = replace(effects, ticket=ctx.number, before=ctx.state, reason=route.reason,
                      rule=route.rule)
    return finished(effects, guard, ctx.number, notes,
                    disposition_of(mail, route, actor, plan_))


def customers_after(ctx: TicketContext, after: TicketState) -> tuple[Person, ...]:
    """The ticket's customers once `after` applies (people added or removed by /cc)."""
    kept = tuple(c for c in ctx.customers
                 if c.email == after.requester or c.email in after.cc
                 or c.email not in ctx.state.cc)
    known = {c.email for c in kept}
    return kept + tuple(Person(e) for e in sorted(after.cc) if e not in known)
