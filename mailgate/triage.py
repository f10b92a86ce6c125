"""Admin triage: the unassigned queue and the quarantine.

`assign_to_project` and `assign_to_ticket` finish what routing could not decide, with
the same handlers the pipeline uses, so an assigned mail gets the same acknowledgement,
notifications and threading as one that was routed automatically.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import defer
from sqlmodel import Session, select

from mailgate import services
from mailgate.bootstrap import App
from mailgate.directory import require_project
from mailgate.outgoing import Person
from mailgate.services import ServiceError
from store import queries
from store.models import Agent, Inbound, Message, Project, Ticket


def unassigned_row(session: Session, inbound_id: int) -> tuple[Inbound, Message]:
    row = session.exec(select(Inbound).options(defer(Inbound.raw))
                       .where(Inbound.id == inbound_id)).first()
    if row is None or row.state != "unassigned":
        raise ServiceError(f"no unassigned mail with id {inbound_id} "
                           "(see: mailgate unassigned list)")
    message = queries.inbound_message(session=session, inbound_id=inbound_id)
    if message is None:
        raise ServiceError(f"unassigned mail {inbound_id} has no parsed message; "
                           "retry it from the quarantine")
    return row, message


def _actor(admin: str | None) -> str:
    return f"admin:{admin}" if admin else "admin"


def assign_to_project(session: Session, app: App, *, inbound_id: int, project_slug: str,
                      add_contact: bool, quiet: bool, admin: str | None = None,
                      now: dt.datetime) -> Ticket:
    row, message = unassigned_row(session, inbound_id)
    project = require_project(session, project_slug)
    if not message.from_addr:
        raise ServiceError(f"mail {inbound_id} has no usable sender "
                           f"({row.reason}); it cannot open a ticket")
    contact = queries.ensure_contact(session=session, email=message.from_addr,
                                     name=message.from_name)
    if add_contact:
        queries.link_contact_project(session=session, contact=contact, project=project)
    t = services.open_ticket(session, app, project=project, requester=contact,
                             subject=message.subject, actor=_actor(admin), now=now)
    _attach(session, row, message, t, now, direction="in", author="customer")
    services.record_event(session, t, kind="assigned-from-queue", actor=_actor(admin), now=now,
                          detail=f"unassigned mail {inbound_id} opened this ticket")
    customer = Person(contact.email, contact.name)
    if not quiet and not _automatic(message):
        rendered = app.templates.render("ack", services.base_vars(
            app, t, project, customer=customer, text=message.text, session=session,
            reply_to=customer.email))
        out = app.composer.compose(kind="ack", rendered=rendered, ticket=t.id, to=customer,
                                   now=now, auto="auto-replied",
                                   in_reply_to=message.message_id,
                                   references=(message.message_id,))
        services.queue_mail(session, out, now=now, app=app)
    if not quiet:
        services.notify_agents(session, app, t=t, project=project,
                               template="notify_new_ticket", customer=customer,
                               text=message.text, now=now, events=("new_ticket",))
    return t


def assign_to_ticket(session: Session, app: App, *, inbound_id: int, number: int,
                     add_contact: bool, quiet: bool, admin: str | None = None,
                     now: dt.datetime) -> Ticket:
    row, message = unassigned_row(session, inbound_id)
    t = session.get(Ticket, number)
    if t is None or t.deleted_at is not None:
        raise ServiceError(f"no ticket #{number}")
    project = session.get(Project, t.project_id)
    sender = message.from_addr
    agent = queries.agent_by_email(session=session, email=sender) if sender else None
    is_agent = agent is not None and queries.agent_can_work_on(
        session=session, agent=agent, project_id=t.project_id)
    if add_contact and sender and not is_agent:
        contact = queries.ensure_contact(session=session, email=sender, name=message.from_name)
        queries.add_ticket_contact(session=session, ticket_id=t.id, contact=contact)
    # Assigned mail is filed as an incoming message, never forwarded to customers:
    # the admin vouches for where it belongs, not for what it says.
    _attach(session, row, message, t, now, direction="in",
            author="agent" if is_agent else "customer")
    services.touch(t, now)
    services.record_event(session, t, kind="assigned-from-queue", actor=_actor(admin), now=now,
                          detail=f"unassigned mail {inbound_id} from {sender or '?'} appended")
    if not quiet and not is_agent:
        services.notify_agents(session, app, t=t, project=project,
                               template="notify_customer_reply",
                               customer=Person(sender or "unknown", message.from_name),
                               text=message.text, now=now, events=("customer_reply",))
    return t


def _attach(session: Session, row: Inbound, message: Message, t: Ticket, now: dt.datetime,
            *, direction: str, author: str) -> None:
    message.ticket_id = t.id
    message.direction = direction
    message.author = author
    queries.add_thread_ref(session=session, msgid=message.message_id, ticket_id=t.id)
    row.state = "done"
    row.ticket_id = t.id
    row.processed_at = now


def _automatic(message: Message) -> bool:
    """Did the pipeline classify this mail as machine-written (never answered)?"""
    auto = (message.decision or {}).get("auto") or {}
    return bool(auto.get("automatic") or auto.get("suppress_reply"))


def mark_spam(session: Session, *, inbound_id: int, now: dt.datetime) -> Inbound:
    row, _ = unassigned_row(session, inbound_id)
    row.state = "spam"
    row.processed_at = now
    return row


def requeue_quarantined(session: Session, *, inbound_ids: list[int] | None,
                        now: dt.datetime) -> list[int]:
    """Put quarantined mail back in line (all of it when ids is None)."""
    q = select(Inbound).options(defer(Inbound.raw)).where(Inbound.state == "quarantined")
    if inbound_ids is not None:
        q = q.where(Inbound.id.in_(inbound_ids))
    rows = list(session.exec(q))
    if inbound_ids is not None:
        missing = sorted(set(inbound_ids) - {r.id for r in rows})
        if missing:
            raise ServiceError(f"not in quarantine: {', '.join(map(str, missing))} "
                               "(see: mailgate quarantine list)")
    for row in rows:
        row.state = "pending"
        row.attempts = 0
        row.next_attempt_at = None
        row.lease_until = None
        row.reason = f"retried from quarantine (was: {row.reason})"[:2000]
    return [r.id for r in rows]


def agent_name(session: Session, email: str) -> str:
    agent = session.exec(select(Agent).where(Agent.email == email)).first()
    return agent.name if agent else email
