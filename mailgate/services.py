"""The handlers that change tickets: shared by the mail pipeline and the CLI.

Each function works inside the caller's unit of work (it takes a session and never
commits), so storing a message, changing a ticket and queueing the mails about it
happen together or not at all. Mail is only queued here; the outbox sender delivers it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session

from mailgate.bootstrap import App
from mailgate.outgoing import OutgoingMail, Person, attachments_to_send
from mailgate.parsing import ParsedMail
from store import queries
from store.models import (
    Agent,
    Attachment,
    Contact,
    Event,
    Inbound,
    Message,
    Outbox,
    Project,
    Ticket,
)

PRIORITY_LABELS = {1: "low", 2: "normal", 3: "high"}


class ServiceError(Exception):
    """A request that cannot be carried out; the message is for the user."""


@dataclass(frozen=True)
class Author:
    kind: str                 # customer | agent | stranger
    email: str
    name: str
    agent: Agent | None = None
    contact: Contact | None = None


# --- template variables -----------------------------------------------------------------


def ticket_vars(app: App, t: Ticket, p: Project, session: Session | None = None) -> dict:
    wf = app.workflows.get(p.workflow) or app.workflows["support"]
    assignee = session.get(Agent, t.assignee_id) if session and t.assignee_id else None
    return {"number": t.id, "subject": t.subject, "status": t.status,
            "status_label": wf.status_label(t.status), "substatus": t.substatus,
            "substatus_label": wf.substatus_labels.get(t.substatus, t.substatus),
            "priority": t.priority,
            "priority_label": PRIORITY_LABELS.get(t.priority, str(t.priority)),
            "group": t.group_name, "type": t.ticket_type,
            "due": t.due_date.isoformat() if t.due_date else "",
            "urgent": t.urgent, "assignee": assignee.email if assignee else "",
            "assignee_name": assignee.name if assignee else ""}


def project_vars(app: App, p: Project) -> dict:
    from routing.addresses import plus_address

    return {"name": p.name, "slug": p.slug, "key": p.key,
            "address": plus_address(app.config.mail.support_address, p.key)}


def base_vars(app: App, t: Ticket, p: Project, *, customer: Person | None = None,
              agent: Person | None = None, text: str = "", session: Session | None = None,
              reply_to: str = "", change: dict | None = None, transcript: str = "",
              note_for: str = "", reminder: dict | None = None) -> dict:
    """The variables every template gets (the README lists them; check-config renders
    every template with a sample of exactly this set)."""
    reply_address = app.composer.token_address(t.id, reply_to, today=app.now().date()) \
        if reply_to else app.config.mail.support_address
    return {
        "ticket": ticket_vars(app, t, p, session),
        "project": project_vars(app, p),
        "customer": {"name": customer.name if customer else "",
                     "email": customer.email if customer else ""},
        "agent": {"name": agent.name if agent else "", "email": agent.email if agent else ""},
        "message": {"text": text},
        "signature": app.config.mail.signature,
        "support_address": app.config.mail.support_address,
        "reply_address": reply_address,
        # agents only: mail to this address becomes an internal note (like RT's comment)
        "note_address": app.composer.token_address(t.id, note_for, purpose="note",
                                                   today=app.now().date()) if note_for else "",
        "change": {"old": "", "new": "", "old_label": "", "new_label": "", "actor": ""}
        | (change or {}),
        "transcript": transcript,
        "reminder": {"days": 0, "since": ""} | (reminder or {}),
    }


# --- storing ----------------------------------------------------------------------------


def store_message(session: Session, *, mail: ParsedMail, inbound: Inbound | None,
                  ticket_id: int | None, direction: str, author: str, text: str,
                  decision: dict, now: dt.datetime) -> Message:
    message = Message(
        ticket_id=ticket_id, inbound_id=inbound.id if inbound else None, direction=direction,
        author=author, message_id=mail.message_id, in_reply_to=" ".join(mail.in_reply_to),
        references=" ".join(mail.references), from_addr=mail.sender.address or "",
        from_name=mail.sender.name, to_addrs=list(mail.to), cc_addrs=list(mail.cc),
        subject=mail.subject, text=text, full_text=mail.text, html=mail.html,
        decision=decision, defects=list(mail.defects),
        dedup_key=mail.dedup_key, created_at=now)
    session.add(message)
    session.flush()
    for a in mail.attachments:
        session.add(Attachment(message_row_id=message.id, filename=a.filename,
                               content_type=a.content_type, size=a.size, sha256=a.sha256,
                               content_id=a.content_id, data=a.data))
    if ticket_id is not None:
        queries.add_thread_ref(session=session, msgid=mail.message_id, ticket_id=ticket_id)
    return message


def record_event(session: Session, t: Ticket, *, kind: str, actor: str, now: dt.datetime,
                 old: str = "", new: str = "", detail: str = "") -> None:
    session.add(Event(ticket_id=t.id, at=now, actor=actor, kind=kind, old=old, new=new,
                      status=t.status, detail=detail[:2000]))


def automatic_mail_blocked(session: Session, app: App, rcpt: str,
                           now: dt.datetime) -> str:
    """Why no automatic mail may go to `rcpt` now ("" = it may): a hard bounce, or the
    per-recipient cap (counted in the shared database, so every instance sees it)."""
    if not rcpt or "@" not in rcpt:
        return "no recipient (null sender)"
    until = queries.suppressed_until(session=session, address=rcpt, now=now)
    if until is not None:
        return f"{rcpt} bounced; automatic mail suppressed until {until:%Y-%m-%d %H:%M}"
    cfg = app.config.mail
    queries.lock_recipient(session=session, rcpt=rcpt)
    window = now - dt.timedelta(minutes=cfg.auto_reply_window_minutes)
    recent = queries.automatic_mail_count(session=session, rcpt=rcpt, since=window)
    day = queries.automatic_mail_count(session=session, rcpt=rcpt,
                                       since=now - dt.timedelta(days=1))
    if recent >= cfg.auto_reply_limit or day > cfg.auto_reply_limit:
        return (f"{rcpt} got {day} automatic mails in 24 hours (limit "
                f"{cfg.auto_reply_limit} per {cfg.auto_reply_window_minutes:g} minutes, "
                "then one a day)")
    return ""


def queue_mail(session: Session, mail: OutgoingMail, *, now: dt.datetime,
               app: App | None = None) -> Outbox | None:
    """Put a mail in the outbox. Automatic mail passes the loop guards first; a blocked
    one is not queued, and the ticket's log says why."""
    if app is not None and mail.automatic:
        why = automatic_mail_blocked(session, app, mail.rcpt, now)
        if why:
            app.log.warning("automatic mail not sent", rcpt=mail.rcpt, kind=mail.kind,
                            ticket=mail.ticket, reason=why)
            if mail.ticket is not None:
                session.add(Event(ticket_id=mail.ticket, at=now, actor="system",
                                  kind="mail-suppressed", detail=f"{mail.kind}: {why}"[:2000]))
            return None
    row = Outbox(kind=mail.kind, ticket_id=mail.ticket, mail_from=mail.mail_from,
                 rcpt=mail.rcpt, message_id=mail.message_id, subject=mail.subject,
                 raw=mail.raw, automatic=mail.automatic, created_at=now, next_attempt_at=now)
    session.add(row)
    if mail.ticket is not None:
        queries.add_thread_ref(session=session, msgid=mail.message_id, ticket_id=mail.ticket)
    return row


# --- tickets ----------------------------------------------------------------------------


def open_ticket(session: Session, app: App, *, project: Project, requester: Contact,
                subject: str, actor: str, now: dt.datetime) -> Ticket:
    wf = app.workflows.get(project.workflow) or app.workflows["support"]
    t = Ticket(project_id=project.id, subject=(subject or "(no subject)")[:500],
               status=wf.initial, priority=2, requester_id=requester.id, created_at=now,
               updated_at=now, status_changed_at=now)
    session.add(t)
    session.flush()
    queries.add_ticket_contact(session=session, ticket_id=t.id, contact=requester,
                               role="requester")
    record_event(session, t, kind="created", actor=actor, now=now, new=t.status,
                 detail=f"ticket opened in {project.slug}")
    return t


def identify(session: Session, *, email: str, name: str, project_id: int) -> Author:
    agent = queries.agent_by_email(session=session, email=email)
    if agent and queries.agent_can_work_on(session=session, agent=agent, project_id=project_id):
        return Author("agent", email, agent.name or name, agent=agent)
    contact = queries.contact_by_email(session=session, email=email)
    if contact:
        return Author("customer", email, contact.name or name, contact=contact)
    return Author("stranger", email, name)


def customers_of(session: Session, t: Ticket) -> list[Person]:
    return [Person(c.email, c.name) for c, _ in queries.ticket_contacts(session=session,
                                                                         ticket_id=t.id)]


def acknowledge(session: Session, app: App, *, t: Ticket, project: Project, to: Person,
                mail: ParsedMail, now: dt.datetime) -> None:
    rendered = app.templates.render("ack", base_vars(app, t, project, customer=to,
                                                     text=mail.text, session=session,
                                                     reply_to=to.email))
    out = app.composer.compose(kind="ack", rendered=rendered, ticket=t.id, to=to, now=now,
                               auto="auto-replied", in_reply_to=mail.message_id,
                               references=(*mail.references, mail.message_id))
    queue_mail(session, out, now=now, app=app)


def ticket_agents(session: Session, t: Ticket, project: Project) -> list[Agent]:
    """The agents a ticket concerns: its assignee, or everyone on its project."""
    if t.assignee_id:
        assignee = session.get(Agent, t.assignee_id)
        return [assignee] if assignee and assignee.active else []
    return queries.agents_of_project(session=session, project_id=project.id)


def notify_agents(session: Session, app: App, *, t: Ticket, project: Project, template: str,
                  customer: Person, text: str, now: dt.datetime, events: tuple[str, ...],
                  exclude: frozenset[str] = frozenset()) -> int:
    """Tell the ticket's agents about a mail, each only if one of `events` is among the
    notifications they chose (`mailgate agent notify`)."""
    refs = tuple(queries.thread_msgids(session=session, ticket_id=t.id))
    sent = 0
    for agent in ticket_agents(session, t, project):
        if agent.email in exclude:
            continue
        chosen = {e.strip() for e in (agent.notify or "").split(",")}
        if not chosen.intersection(events):
            continue
        person = Person(agent.email, agent.name)
        rendered = app.templates.render(template, base_vars(
            app, t, project, customer=customer, agent=person, text=text, session=session,
            reply_to=agent.email, note_for=agent.email))
        out = app.composer.compose(kind="notify", rendered=rendered, ticket=t.id, to=person,
                                   now=now, auto="auto-generated",
                                   from_name=f"{customer.name or customer.email} via "
                                             f"{app.config.mail.support_name}",
                                   in_reply_to=refs[-1] if refs else "", references=refs)
        sent += queue_mail(session, out, now=now, app=app) is not None
    return sent


def forward_agent_reply(session: Session, app: App, *, t: Ticket, project: Project,
                        agent: Person, text: str, now: dt.datetime,
                        attachments: Sequence = ()) -> int:
    """Send an agent's reply, with its files, to every customer on the ticket, each with
    their own token. Files too large to send stay on the ticket and are named instead."""
    refs = tuple(queries.thread_msgids(session=session, ticket_id=t.id))
    last_in = queries.last_message(session=session, ticket_id=t.id, direction="in")
    in_reply_to = last_in.message_id if last_in and last_in.message_id else (
        refs[-1] if refs else "")
    files, left_out = attachments_to_send(attachments, app.config.smtp.max_message_bytes
                                          - 4 * len(text.encode()) - 65536)
    if left_out:
        names = ", ".join(f"{a.filename} ({a.size // 1024} KB)" for a in left_out)
        text = (f"{text}\n\n[Too large to send by mail, kept on ticket #{t.id}: {names}]"
                .strip())
    sent = 0
    for customer in customers_of(session, t):
        rendered = app.templates.render("agent_reply", base_vars(
            app, t, project, customer=customer, agent=agent, text=text, session=session,
            reply_to=customer.email))
        out = app.composer.compose(kind="reply", rendered=rendered, ticket=t.id, to=customer,
                                   now=now, from_name=agent.name or agent.email,
                                   in_reply_to=in_reply_to, references=refs,
                                   attachments=files)
        sent += queue_mail(session, out, now=now, app=app) is not None
    return sent


def mail_agent(session: Session, app: App, *, t: Ticket, project: Project, agent: Agent,
               template: str, now: dt.datetime, change: dict | None = None,
               reminder: dict | None = None) -> int:
    person = Person(agent.email, agent.name)
    refs = tuple(queries.thread_msgids(session=session, ticket_id=t.id))
    rendered = app.templates.render(template, base_vars(
        app, t, project, agent=person, session=session, reply_to=agent.email, change=change,
        note_for=agent.email, reminder=reminder))
    out = app.composer.compose(kind="notify", rendered=rendered, ticket=t.id, to=person,
                               now=now, auto="auto-generated",
                               in_reply_to=refs[-1] if refs else "", references=refs)
    return int(queue_mail(session, out, now=now, app=app) is not None)


def mail_customer(session: Session, app: App, *, t: Ticket, project: Project, to: Person,
                  template: str, now: dt.datetime, change: dict | None = None,
                  kind: str = "status", transcript: str = "", in_reply_to: str = "",
                  reminder: dict | None = None) -> int:
    """An automatic mail about a ticket to one person (customer, or a notified address)."""
    refs = tuple(queries.thread_msgids(session=session, ticket_id=t.id))
    rendered = app.templates.render(template, base_vars(
        app, t, project, customer=to, session=session, reply_to=to.email, change=change,
        transcript=transcript, reminder=reminder))
    out = app.composer.compose(kind=kind, rendered=rendered, ticket=t.id, to=to, now=now,
                               auto="auto-replied" if kind == "transcript" else "auto-generated",
                               in_reply_to=in_reply_to or (refs[-1] if refs else ""),
                               references=refs)
    return int(queue_mail(session, out, now=now, app=app) is not None)


def touch(t: Ticket, now: dt.datetime) -> None:
    t.updated_at = now
