"""Forward on behalf: an agent's forward of a customer's mail becomes the customer's ticket.

Runs in ingest between routing and deciding, for mail from an agent's address that
reached no ticket: reads the attached mail if there is one (parsing is I/O-free but
belongs here, not in `routing`), asks `routing.forwards` whether the forward counts, looks
up the customer's projects (one query, only for such a mail) and routes the mail again as
the customer's. What it returns is decided on by `routing.decide` like any new mail, with
the customer as sender and the agent's own text as the note. Never writes anything.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from sqlmodel import Session

from mailgate.bootstrap import App
from mailgate.handlers.gather import Batch
from mailgate.mail.mimecheck import ParseCrashed, ParseRejected
from mailgate.mail.parsing import ParsedMail, parse_mail
from routing.actors import Person
from routing.decide import Incoming
from routing.forwards import AttachedMail, find_forward, forward_claim, original_subject
from routing.rules import RouteDecision, RuleHit, Target, route
from store import people

RULE = "forward-on-behalf"
MAX_ATTACHED = 3


def attached_mails(mail: ParsedMail) -> tuple[AttachedMail, ...]:
    """The attached mails (message/rfc822) that can be read, first ones first."""
    out: list[AttachedMail] = []
    for a in mail.attachments:
        if a.content_type != "message/rfc822" or len(out) >= MAX_ATTACHED:
            continue
        try:
            inner = parse_mail(a.data)
        except (ParseRejected, ParseCrashed, ValueError):
            continue
        out.append(AttachedMail(inner.sender.address, inner.sender.name, inner.subject,
                                inner.text))
    return tuple(out)


def on_behalf(session: Session, app: App, batch: Batch, mail: ParsedMail, incoming: Incoming,
              decision: RouteDecision, now: dt.datetime) -> tuple[Incoming, RouteDecision]:
    """(incoming, decision) as the customer's when an agent's forward counts, else as
    they were (with a rule hit saying why a forward found was not taken)."""
    sender = incoming.sender
    agent = batch.site.staff.get(sender)
    if agent is None or decision.target is Target.TICKET:
        return incoming, decision
    attached = attached_mails(mail) if any(
        a.content_type == "message/rfc822" for a in mail.attachments) else ()
    claim = forward_claim(find_forward(mail.text, attached), sender=sender,
                          staff=batch.site.staff, own=batch.own_addresses,
                          verdict=incoming.verdict)
    fwd = claim.forward
    if fwd is None:
        return incoming, _noted(decision, claim.why_not) if claim.why_not else decision
    customer = fwd.customer.email
    if customer not in batch.sender_projects:
        batch.sender_projects.update(people.senders_projects(session=session,
                                                             emails=[customer]))
    facts = replace(incoming.facts, sender=customer, sender_problem="",
                    subject=original_subject(fwd, incoming.facts.subject))
    again = route(facts, batch.directory(app, facts), now)
    if again.target is not Target.NEW_TICKET:
        return incoming, _noted(decision, f"as {customer}'s mail: {again.reason}")
    if not agent.works_on(again.project or ""):
        return incoming, _noted(decision, f"{sender} is no agent of project {again.project}")
    hit = RuleHit(RULE, True, f"{sender} forwarded {customer}'s mail ({fwd.how})")
    again = replace(again, reason=f"{again.reason}; forwarded by {sender}",
                    hits=(hit, *again.hits))
    return replace(incoming, facts=facts, sender_name=fwd.customer.name, text=fwd.text,
                   copied=(), behalf=fwd,
                   forwarded_by=Person(sender, agent.name or incoming.sender_name)), again


def _noted(decision: RouteDecision, why: str) -> RouteDecision:
    return replace(decision, hits=(*decision.hits, RuleHit(RULE, False,
                                                           f"forward not taken: {why}")))
