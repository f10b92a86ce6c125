"""Acting on tickets from the command line: reply, note, set, new, log, merge.

Each is one unit of work in the caller's transaction: gather the ticket as the timers do
(`gather.for_tickets`), let `routing.acting` decide, and apply the `Effects` with
`apply_effects`, the same as an agent's mail. The reply or note is stored as a mail the
agent wrote (composed and parsed like one, files attached), so everything after it —
the customer's copy with the files, References, search — is the mail path's own.
A refusal raises `ServiceError` before anything is written: all or nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from sqlmodel import Session

from mailgate.bootstrap import App
from mailgate.handlers import ServiceError
from mailgate.handlers.apply import Applied, Source, apply_effects
from mailgate.handlers.directory import require_project
from mailgate.handlers.gather import Batch, for_tickets, load_guards
from mailgate.handlers.tickets import load_ticket
from mailgate.mail.parsing import ParsedMail, parse_mail
from routing import acting
from routing.actors import Person
from routing.addresses import is_valid_address, normalize_address
from routing.context import TicketContext
from routing.effects import Change, Effects
from store import merge as merged


@dataclass(frozen=True)
class File:
    """A file an agent sends along (`--file`), read by the command line."""

    name: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Done:
    ticket: int
    message: int | None = None     # the stored reply or note
    queued: int = 0                # mails to send
    dropped: int = 0               # mails a guard stopped
    changes: tuple[Change, ...] = ()


def _ticket(session: Session, app: App, number: int, now: dt.datetime,
            ) -> tuple[Batch, TicketContext]:
    t = load_ticket(session, number)
    if t.merged_into_id is not None:
        raise ServiceError(f"ticket #{number} was merged into #{t.merged_into_id}; "
                           f"act on #{t.merged_into_id}")
    batch = for_tickets(session, app, [number], now)
    return batch, batch.contexts[number]


def _decided(result: Effects | acting.Refused) -> Effects:
    if isinstance(result, acting.Refused):
        raise ServiceError(result.reason)
    return result


def _done(applied: Applied, effects: Effects) -> Done:
    return Done(applied.ticket, applied.message, applied.queued, applied.dropped,
                effects.changes)


def _with_template(session: Session, app: App, template: str | None, text: str, **where,
                   ) -> str:
    """The canned reply's text first, then the agent's own."""
    if not template:
        return text
    from mailgate.handlers.canned import canned_text  # built beside this feature

    canned = canned_text(session, app, template, **where)
    return "\n\n".join(p for p in (canned.rstrip("\n"), text.strip("\n")) if p.strip())


def as_mail(app: App, *, agent: Person, subject: str, text: str, files: Sequence[File],
            message_id: str, now: dt.datetime) -> ParsedMail:
    """What the agent's mail would have been: composed and parsed, so the message row,
    its attachments and their checksums are made exactly as for a mail that came in."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = f"{agent.name} <{agent.email}>" if agent.name else agent.email
    msg["To"] = app.config.mail.support_address
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = f"<{message_id}>"
    msg.set_content(text or "")
    for f in files:
        main, _, sub = f.content_type.partition("/")
        msg.add_attachment(f.data, maintype=main or "application",
                           subtype=sub or "octet-stream", filename=f.name)
    return parse_mail(msg.as_bytes())


# --- on a ticket ------------------------------------------------------------------------


def reply(session: Session, app: App, *, number: int, agent: str, text: str,
          files: Sequence[File] = (), template: str | None = None, note: bool = False,
          now: dt.datetime) -> Done:
    """`ticket reply` (to the ticket's customers) or `ticket note` (internal)."""
    batch, ctx = _ticket(session, app, number, now)
    text = _with_template(session, app, template, text, ticket_number=number,
                          agent_email=agent, project_slug=ctx.state.project)
    msgid = app.composer.message_id(number)
    effects = _decided(acting.reply(ctx, batch.site, batch.guard_facts(), agent, text=text,
                                    files=len(files), note=note, message_id=msgid))
    mail = as_mail(app, agent=Person(agent, batch.site.staff.name_of(agent)),
                   subject=f"Re: {ctx.subject}", text=text, files=files, message_id=msgid,
                   now=now)
    applied = apply_effects(session, app, effects, site=batch.site, ctx=ctx, now=now,
                            source=Source(None, mail), batch=batch)
    return _done(applied, effects)


def set_fields(session: Session, app: App, *, number: int, agent: str,
               options: acting.SetOptions, now: dt.datetime) -> Done:
    batch, ctx = _ticket(session, app, number, now)
    effects = _decided(acting.set_fields(ctx, batch.site, batch.guard_facts(), agent,
                                         acting.commands_of(options)))
    applied = apply_effects(session, app, effects, site=batch.site, ctx=ctx, now=now,
                            batch=batch)
    return _done(applied, effects)


def log_entry(session: Session, app: App, *, number: int, agent: str, kind: str, text: str,
              from_customer: bool = False, now: dt.datetime) -> Done:
    batch, ctx = _ticket(session, app, number, now)
    effects = _decided(acting.log_entry(ctx, batch.site, agent, kind=kind, text=text,
                                        from_customer=from_customer))
    applied = apply_effects(session, app, effects, site=batch.site, ctx=ctx, now=now,
                            batch=batch)
    return _done(applied, effects)


def merge(session: Session, app: App, *, number: int, into: int, agent: str,
          now: dt.datetime) -> dict[str, int]:
    """`ticket merge N --into M`; returns how many rows of each kind moved."""
    for n in (number, into):
        t = load_ticket(session, n)
        if t.merged_into_id is not None:
            raise ServiceError(f"ticket #{n} was merged into #{t.merged_into_id} already")
    batch = for_tickets(session, app, [number, into], now)
    source, dest = batch.contexts[number], batch.contexts[into]
    plan = acting.merge(source, dest, batch.site, agent)
    if isinstance(plan, acting.Refused):
        raise ServiceError(plan.reason)
    moved = merged.move_ticket(session=session, source=number, target=into)
    apply_effects(session, app, plan.source, site=batch.site, ctx=source, now=now,
                  batch=batch)
    apply_effects(session, app, plan.target, site=batch.site, ctx=dest, now=now, batch=batch)
    return moved


# --- a new conversation ---------------------------------------------------------------


def customer_address(text: str) -> Person:
    from email.utils import parseaddr

    name, address = parseaddr(text)
    if not is_valid_address(address):
        raise ServiceError(f"not an address: {text[:80]!r}")
    return Person(normalize_address(address), name)


def new_ticket(session: Session, app: App, *, project: str, to: str, subject: str,
               agent: str, text: str, files: Sequence[File] = (),
               template: str | None = None, now: dt.datetime) -> Done:
    """`ticket new`: the agent writes first; the customer's answer threads into it."""
    slug = require_project(session, project).slug
    customer = customer_address(to)
    batch = for_tickets(session, app, [], now)
    load_guards(session, batch, {customer.email}, now)
    text = _with_template(session, app, template, text, ticket_number=None,
                          agent_email=agent, project_slug=slug, to_address=customer.email)
    effects = _decided(acting.start_conversation(
        slug, batch.site, batch.guard_facts(), agent, customer=customer, subject=subject,
        text=text, files=len(files)))
    mail = as_mail(app, agent=Person(agent, batch.site.staff.name_of(agent)),
                   subject=subject, text=text, files=files,
                   message_id=app.composer.message_id(None), now=now)
    applied = apply_effects(session, app, effects, site=batch.site, ctx=None, now=now,
                            source=Source(None, mail), batch=batch)
    return _done(applied, effects)
