"""Canned replies: the agents' own templates in `templates/replies/` (and the override
folder's `replies/`), rendered with the variables of system mails.

An agent uses one by mail (`/template NAME` among the command lines of a reply) or from
the command line (`ticket reply/new --template NAME`). Routing only checks that the name
exists (`World.replies`); the text is rendered here, where templates are rendered, and
put above what the agent wrote before anything is stored or queued: the ticket keeps
exactly what the customer was sent. Never writes a row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from sqlmodel import Session

from mailgate.bootstrap import App
from mailgate.handlers import ServiceError
from mailgate.handlers.apply import snapshot
from mailgate.handlers.gather import load_site, ticket_contexts
from mailgate.handlers.tickets import load_ticket
from mailgate.mail.templating import TemplateProblem, Templates
from mailgate.mail.variables import language_of, project_vars, template_vars, ticket_vars
from routing.actors import Person
from routing.addresses import plus_address
from routing.context import Site, TicketContext, TicketState
from routing.effects import Effects, MailIntent, MailKind
from routing.verbs import valid_reply_name

FOLDER = "replies"
CARRY_TEXT = ("notify_agent_replied",)   # agent mails that quote the reply


def reply_names(templates: Templates) -> list[str]:
    return templates.names(FOLDER)


def reply_problems(templates: Templates) -> dict[str, str]:
    """Every canned reply by name, with "" (usable); what routing is told they are."""
    return dict.fromkeys(reply_names(templates), "")


def render_reply(templates: Templates, name: str, variables: dict, language: str) -> str:
    """The body of canned reply `name` (raises TemplateProblem)."""
    return templates.render(f"{FOLDER}/{name}", variables, language).body.strip("\n")


# --- the command line: one text for one recipient -----------------------------------------


def canned_text(session: Session, app: App, name: str, *, ticket_number: int | None,
                agent_email: str, project_slug: str | None = None,
                to_address: str | None = None) -> str:
    """Canned reply `name` rendered for ticket `ticket_number` (or, for a conversation not
    yet opened, for project `project_slug`), written by `agent_email` to `to_address`
    (default: the ticket's requester), in the project's language."""
    if not valid_reply_name(name) or name not in reply_names(app.templates):
        raise ServiceError(f"no canned reply {name!r} (see: mailgate template list --replies)")
    variables = canned_variables(session, app, ticket_number=ticket_number,
                                 agent_email=agent_email, project_slug=project_slug,
                                 to_address=to_address)
    try:
        return render_reply(app.templates, name, variables, language_of(variables))
    except TemplateProblem as exc:
        raise ServiceError(f"canned reply {name!r} cannot be rendered: {exc}") from None


def canned_variables(session: Session, app: App, *, ticket_number: int | None,
                     agent_email: str, project_slug: str | None = None,
                     to_address: str | None = None) -> dict:
    site = load_site(session, app)
    now = app.now()
    if ticket_number is not None:
        load_ticket(session, ticket_number)
        ctx = ticket_contexts(session, site, [ticket_number])[ticket_number]
        payload = snapshot(app, ctx, site)
        customers = {c.email: c for c in ctx.customers}
        to = to_address or ctx.state.requester
        customer = customers.get(to) or Person(to or "")
    else:
        payload = _new_conversation(app, site, project_slug)
        customer = Person(to_address or "")
    agent = site.staff.get(agent_email)
    payload |= {"customer": {"name": customer.name, "email": customer.email},
                "agent": {"name": agent.name if agent else "", "email": agent_email}}
    reply = app.composer.token_address(ticket_number, customer.email, today=now.date()) \
        if ticket_number is not None and customer.email else payload["project"]["address"]
    return template_vars(payload, text="", reply_address=reply, note_address="",
                         signature=app.config.mail.signature,
                         support_address=app.config.mail.support_address,
                         today=now.date().isoformat())


def _new_conversation(app: App, site: Site, project_slug: str | None) -> dict:
    """The variables of a ticket that does not exist yet: its project's, no number."""
    info = site.projects.get(project_slug or "")
    if info is None:
        raise ServiceError(f"no project {project_slug!r}")
    wf = site.workflow_of(info.slug)
    ticket = ticket_vars(TicketState(0, info.slug, wf.initial), "", wf, "") | {"number": ""}
    address = plus_address(app.config.mail.support_address, info.key)
    return {"ticket": ticket, "project": project_vars(info, address)}


# --- by mail: the texts of an agent's reply -----------------------------------------------


def fill(app: App, effects: Effects, ctx: TicketContext | None, site: Site,
         redecide: Callable[[Site], Effects]) -> Effects:
    """`effects` with the canned replies it names rendered above the agent's text: in the
    stored message and in every mail that carries that text (each customer's copy rendered
    for that customer). A reply that cannot be rendered is decided again as unusable, so
    the agent is told and nothing reaches a customer."""
    if not effects.canned or ctx is None or effects.message is None:
        return effects
    try:
        return _filled(app, effects, ctx, site)
    except TemplateProblem as exc:
        broken = dict(reply_problems(app.templates)) | dict.fromkeys(effects.canned, str(exc))
        return redecide(with_replies(site, broken))


def with_replies(site: Site, replies: Mapping[str, str]) -> Site:
    return dataclasses.replace(site, policy=dataclasses.replace(site.policy,
                                                                replies=dict(replies)))


def _filled(app: App, effects: Effects, ctx: TicketContext, site: Site) -> Effects:
    shot = snapshot(app, ctx.evolve(state=effects.after or ctx.state), site)
    today = app.now().date()
    language = shot["project"]["language"] or "en"
    # the agent who wrote: the actor of the reply (or note) the effects log
    email = next((e.actor for e in reversed(effects.events) if e.kind in ("reply", "note")), "")
    writer = Person(email, site.staff.name_of(email)) if email else None
    own = effects.message.text

    def text_for(customer: Person | None) -> str:
        payload = shot | {"customer": _person(customer), "agent": _person(writer)}
        variables = template_vars(
            payload, text="", reply_address=app.composer.token_address(
                ctx.number, customer.email, today=today) if customer else "",
            note_address="", signature=app.config.mail.signature,
            support_address=app.config.mail.support_address, today=today.isoformat())
        canned = [render_reply(app.templates, n, variables, language) for n in effects.canned]
        return "\n\n".join(t for t in (*canned, own) if t.strip())

    requester = next((c for c in ctx.customers if c.email == ctx.state.requester), None)
    stored = text_for(requester)

    def mail(m: MailIntent) -> MailIntent:
        # the mails that carry the agent's text: the customers' copies and the colleagues'
        if m.text != own or not (m.kind is MailKind.REPLY or m.template in CARRY_TEXT):
            return m
        return dataclasses.replace(m, text=text_for(m.to) if m.kind is MailKind.REPLY
                                   else stored)

    return dataclasses.replace(
        effects, message=dataclasses.replace(effects.message, text=stored),
        mails=tuple(mail(m) for m in effects.mails),
        dropped=tuple(dataclasses.replace(d, mail=mail(d.mail)) for d in effects.dropped))


def _person(p: Person | None) -> dict:
    return {"name": p.name, "email": p.email} if p is not None else {"name": "", "email": ""}

