"""Notify: turn a queued outbox row into the bytes the relay gets.

A row holds a template name and the snapshot taken when the mail was decided; this
renders the template, adds what only the sending side knows (the recipient's reply and
note addresses, the signature, the agent's files that fit) and composes the mail. It is
called by the sender just before the first delivery attempt, outside any write lock;
retries send the same bytes again.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from mailgate.bootstrap import App
from mailgate.mail.compose import FileToSend, attachments_to_send
from mailgate.mail.variables import language_of, template_vars
from routing.actors import Person
from store import tickets
from store.models import Outbox


@dataclass(frozen=True)
class Composed:
    subject: str
    raw: bytes


def compose_queued(session: Session, app: App, row: Outbox) -> Composed:
    """Render and compose one queued mail (raises TemplateProblem if it cannot be)."""
    p = row.payload or {}
    composer = app.composer
    today = row.created_at.date()
    number = row.ticket_id
    text = p.get("text", "")
    files: list[FileToSend] = []
    if p.get("files_of"):
        files, text = _files(session, app, p["files_of"], text, number)
    reply_address = composer.token_address(number, row.rcpt, today=today) \
        if number is not None else app.config.mail.support_address
    note_address = composer.token_address(number, row.rcpt, purpose="note", today=today) \
        if number is not None and p.get("note_address") else ""
    variables = template_vars(p, text=text, reply_address=reply_address,
                              note_address=note_address, signature=app.config.mail.signature,
                              support_address=app.config.mail.support_address,
                              today=today.isoformat())
    rendered = app.templates.render(row.template, variables, language_of(p))
    subject, raw = composer.compose(
        rendered=rendered, ticket=number, to=Person(row.rcpt, p.get("to_name", "")),
        message_id=row.message_id, date=row.created_at, from_name=p.get("from_name", ""),
        auto=p.get("auto"), in_reply_to=p.get("in_reply_to", ""),
        references=tuple(p.get("references") or ()), files=files,
        reply_address=reply_address if number is not None else "")
    return Composed(subject, raw)


def _files(session: Session, app: App, message_row: int, text: str,
           number: int | None) -> tuple[list[FileToSend], str]:
    """The stored mail's files that go along, and the text naming those that do not fit."""
    attachments = tickets.attachments_of(session=session, message_ids=[message_row],
                                         with_data=True)[message_row]
    budget = app.config.smtp.max_message_bytes - 4 * len(text.encode()) - 65536
    chosen, left_out = attachments_to_send(attachments, budget)
    if left_out:
        names = ", ".join(f"{a.filename} ({a.size // 1024} KB)" for a in left_out)
        text = f"{text}\n\n[Too large to send by mail, kept on ticket #{number}: {names}]".strip()
    return [FileToSend(a.filename, a.content_type, a.data) for a in chosen], text


def preview_vars(session: Session, app: App, number: int, *, now) -> dict:
    """The variables a mail about ticket `number` would be rendered with now: to its
    requester, from its assignee (or the first agent of its project), about its latest
    message and status change (`mailgate template preview --ticket N`)."""
    from mailgate.handlers.apply import snapshot
    from mailgate.handlers.gather import for_tickets
    from mailgate.handlers.tickets import load_ticket

    load_ticket(session, number)
    batch = for_tickets(session, app, [number], now)
    ctx = batch.contexts[number]
    staff = batch.site.staff
    agent = staff.get(ctx.state.assignee) or next(iter(staff.of_project(ctx.state.project)),
                                                 None)
    customer = ctx.customers[0] if ctx.customers else None
    last = tickets.last_message(session=session, ticket_id=number)
    status = [e for e in tickets.ticket_events(session=session, ticket_id=number)
              if e.kind == "status"]
    wf = ctx.workflow
    change = {"old": status[-1].old, "new": status[-1].new,
              "old_label": wf.status_label(status[-1].old),
              "new_label": wf.status_label(status[-1].new), "actor": status[-1].actor} \
        if status else {}
    due, updated = ctx.state.due, ctx.updated
    payload = snapshot(app, ctx, batch.site) | {
        "customer": {"name": customer.name, "email": customer.email} if customer else None,
        "agent": {"name": agent.name, "email": agent.email} if agent else None,
        "change": change, "transcript": "> /status open\ndone: status is now Open\n",
        "reminder": {"days": (now.date() - due).days if due else 0,
                     "since": (due or updated.date()).isoformat()}}
    to = customer.email if customer else ""
    return template_vars(
        payload, text=last.text if last else "",
        reply_address=app.composer.token_address(number, to, today=now.date()) if to
        else app.config.mail.support_address, note_address="",
        signature=app.config.mail.signature, support_address=app.config.mail.support_address,
        today=now.date().isoformat())
