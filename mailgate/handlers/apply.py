"""Apply: write one `Effects` value inside the caller's unit of work.

The mail pipeline, the timers and the triage verbs all end here, so a ticket opened,
a status changed or a mail queued looks the same whoever caused it. Nothing is rendered
or composed: each mail to send becomes an outbox row holding its template and a
snapshot of the ticket as it is now (see `mail.variables`); the sender renders it. Mails
a guard stopped become outbox rows marked dropped, with the reason, and an event on the
ticket. Plain inserts and updates, a few per mail; never a commit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from sqlmodel import Session

from mailgate.bootstrap import App
from mailgate.handlers.gather import Batch
from mailgate.mail.inline import link_images
from mailgate.mail.parsing import ParsedMail
from mailgate.mail.variables import project_vars, ticket_vars
from routing.actors import Person
from routing.addresses import plus_address
from routing.context import Site, TicketContext
from routing.effects import Audience, Direction, Effects, MailIntent
from routing.threads import thread_root
from store import later, links, outbox, people, quota, threads, tickets
from store.models import Event, OutboxState, ThreadRef


@dataclass(frozen=True)
class Source:
    """The incoming mail an `Effects` came from (none for timers and the CLI)."""

    inbound_id: int | None
    mail: ParsedMail


@dataclass(frozen=True)
class Applied:
    ticket: int | None
    queued: int
    dropped: int
    message: int | None = None


def apply_effects(session: Session, app: App, effects: Effects, *, site: Site,
                  ctx: TicketContext | None, now: dt.datetime, source: Source | None = None,
                  batch: Batch | None = None, existing_message: int | None = None) -> Applied:
    ticket_id = effects.ticket
    if effects.open is not None:
        ctx = _open(session, app, effects, site, now, source, batch)
        ticket_id = ctx.number
    message_row = None
    if effects.message is not None:
        message_row = _store_message(session, effects, ticket_id, source, now,
                                     existing_message)
    if ctx is not None and effects.after is not None and effects.open is None:
        ctx = _update_ticket(session, ctx, effects, site, now, batch)
    if ctx is not None and effects.booking is not None:
        b = effects.booking
        quota.insert_booking(session=session, values={
            "ticket_id": ctx.number, "minutes": b.minutes, "budget": b.budget,
            "project_id": _project_id(session, batch, ctx.state.project),
            "actor": b.actor[:254], "at": now})
    if ctx is not None and source is not None and source.mail.message_id:
        ctx = ctx.evolve(thread=(*ctx.thread, source.mail.message_id)[-11:])
        if effects.message is not None and effects.message.direction is Direction.IN:
            ctx = ctx.evolve(last_inbound=source.mail.message_id)
    status = ctx.state.status if ctx is not None else ""
    cause = source.inbound_id if source is not None else None    # for `mailgate trace`
    if ticket_id is not None:
        tickets.insert_later(session=session, model=Event, rows=[
            {"ticket_id": ticket_id, "at": now, "actor": e.actor[:254], "kind": e.kind[:40],
             "old": e.old, "new": e.new, "status": status, "detail": e.detail[:2000],
             "inbound_id": cause}
            for e in effects.events])
    files = message_row if source is not None and source.mail.attachments else None
    queued = _queue(session, app, effects, ctx, site, now, files, batch, cause)
    if effects.bounce is not None:
        _bounced(session, effects, now)
    if batch is not None and ctx is not None:
        batch.contexts[ctx.number] = ctx
    return Applied(ticket_id, queued, len(effects.dropped), message_row)


def _bounced(session: Session, effects: Effects, now: dt.datetime) -> None:
    b = effects.bounce
    row = outbox.mark_bounced(session=session, outbox_id=b.outbox_id,
                              error=f"bounced: {b.status or 'no status'}")
    if b.hard and b.suppress_days > 0 and row is not None:
        outbox.suppress(session=session, address=row, until=now + dt.timedelta(
            days=b.suppress_days), reason=f"hard bounce {b.status} of outbox {b.outbox_id}")


# --- tickets and messages -------------------------------------------------------------------


def _open(session: Session, app: App, effects: Effects, site: Site, now: dt.datetime,
          source: Source | None, batch: Batch | None) -> TicketContext:
    o = effects.open
    info = site.projects[o.project]
    project_id = _project_id(session, batch, o.project)
    contact, name = _contact(session, batch, o.requester.email, o.requester.name)
    if o.link_contact and people.link_contact(session=session, contact_id=contact,
                                              project_id=project_id) and batch is not None:
        batch.sender_projects[o.requester.email] = tuple(sorted(
            {*batch.sender_projects.get(o.requester.email, ()), o.project}))
    after = effects.after
    staff = people.agent_ids(session=session, emails=[after.owner, after.assignee])
    # one ticket per thread, whichever instance is first
    root = thread_root(source.mail.message_id, source.mail.in_reply_to,
                       source.mail.references) if source is not None else ""
    number, holder = threads.open_ticket(session=session, root=root, values={
        "project_id": project_id, "subject": o.subject, "status": o.status, "priority": 2,
        "requester_id": contact, "created_at": now, "updated_at": now,
        "status_changed_at": now, "group_name": after.group,
        "owner_id": staff.get(after.owner), "assignee_id": staff.get(after.assignee)})
    if holder not in (None, number) and batch is not None and root not in batch.thread_index:
        raise threads.ThreadTaken(f"thread <{root}> has ticket #{holder} already")
    # the requester, and the participants from the mail's To/Cc
    copied = {a: _contact(session, batch, a, "") for a in sorted(after.cc)}
    tickets.add_ticket_contacts(session=session, ticket_id=number, new=True, contacts=[
        (contact, "requester"), *((cid, "cc") for cid, _ in copied.values() if cid != contact)])
    if o.follows:
        _follow_up_link(session, number, o.follows, o.requester.email, now)
    state = dataclasses.replace(effects.after, number=number)
    return TicketContext(state, o.subject, info, site.workflow_of(o.project),
                         (Person(o.requester.email, name or o.requester.name),
                          *(Person(a, n) for a, (_, n) in copied.items())),
                         updated=now)


def _contact(session: Session, batch: Batch | None, email: str, name: str) -> tuple[int, str]:
    """(id, name) of the contact with this address, made if new (`people.contact_row`);
    a sender or copied address the batch found as a contact needs no lookup. Only rows
    that were there when the batch began are taken from it: nothing a rolled-back mail
    wrote."""
    known = batch.contacts.get(email) if batch is not None else None
    if known is None:
        return people.contact_row(session=session, email=email, name=name)
    if name and not known[1]:
        people.name_contact(session=session, contact_id=known[0], name=name)
        del batch.contacts[email]       # named now: asked of the store from here on
        return known[0], name
    return known


def _follow_up_link(session: Session, new: int, old: int, actor: str,
                    now: dt.datetime) -> None:
    """The new ticket follows up closed ticket `old`: linked both ways, and the old
    ticket's log says where its follow-up went."""
    links.link_follow_up(session=session, new=new, old=old, now=now)
    tickets.insert_rows(session=session, model=Event, rows=[{
        "ticket_id": old, "at": now, "actor": actor[:254], "kind": "follow-up",
        "new": str(new), "detail": f"a follow-up opened ticket #{new}"}])


def _store_message(session: Session, effects: Effects, ticket_id: int | None,
                   source: Source | None, now: dt.datetime,
                   existing: int | None) -> int | None:
    m = effects.message
    if existing is not None:
        tickets.update_message(session=session, message_id=existing, values={
            "ticket_id": ticket_id, "direction": m.direction, "author": m.author})
        msgid = tickets.message_msgid(session=session, message_id=existing)
        if ticket_id is not None and msgid:
            tickets.add_thread_ref(session=session, msgid=msgid, ticket_id=ticket_id)
        return existing
    if source is None:
        return None
    mail = source.mail
    # an agent's forward on behalf of a customer is credited to the customer
    author = effects.behalf.customer if effects.behalf is not None else Person(
        mail.sender.address or "", mail.sender.name)
    row_id = tickets.insert_message(session=session, values={
        "ticket_id": ticket_id, "inbound_id": source.inbound_id, "direction": m.direction,
        "author": m.author, "message_id": mail.message_id,
        "in_reply_to": " ".join(mail.in_reply_to), "references": " ".join(mail.references),
        "from_addr": author.email, "from_name": author.name,
        "to_addrs": list(mail.to), "cc_addrs": list(mail.cc),
        "subject": effects.open.subject if effects.behalf and effects.open else mail.subject,
        "text": m.text, "full_text": mail.text, "html": mail.html,
        "decision": effects.disposition, "defects": list(mail.defects),
        "dedup_key": mail.dedup_key, "created_at": now})
    tickets.insert_attachments(session=session, rows=[
        {"message_row_id": row_id, "filename": a.filename, "content_type": a.content_type,
         "size": a.size, "sha256": a.sha256, "content_id": a.content_id, "data": a.data}
        for a in mail.attachments])
    if any(a.content_id for a in mail.attachments):
        _link_inline_images(session, row_id, m.text, mail.text)
    if ticket_id is not None and mail.message_id:
        tickets.add_thread_ref(session=session, msgid=mail.message_id, ticket_id=ticket_id)
    if effects.behalf is not None and effects.behalf.note.strip():
        _forwarders_note(session, effects, ticket_id, source, now)
    return row_id


def _forwarders_note(session: Session, effects: Effects, ticket_id: int | None,
                     source: Source, now: dt.datetime) -> None:
    """What the agent wrote above a forward: an internal note after the customer's text."""
    b, mail = effects.behalf, source.mail
    tickets.insert_message(session=session, values={
        "ticket_id": ticket_id, "inbound_id": source.inbound_id,
        "direction": Direction.INTERNAL, "author": "agent", "message_id": "",
        "in_reply_to": "", "references": "", "from_addr": b.agent.email,
        "from_name": b.agent.name, "to_addrs": list(mail.to), "cc_addrs": list(mail.cc),
        "subject": mail.subject, "text": b.note, "full_text": b.note, "html": "",
        "decision": {}, "defects": [], "dedup_key": None, "created_at": now})


def _link_inline_images(session: Session, row_id: int, text: str, full_text: str) -> None:
    """Inline images in the stored text name their attachment ids (mail.inline)."""
    later.flush(session)        # the message and its files, if the unit held them
    files = tickets.inline_files(session=session, message_id=row_id)
    linked = link_images(text, files), link_images(full_text, files)
    if linked != (text, full_text):
        tickets.update_message(session=session, message_id=row_id,
                               values={"text": linked[0], "full_text": linked[1]})


def _project_id(session: Session, batch: Batch | None, project: str) -> int:
    """A project's row id: the batch has them all; without one (the CLI), one query."""
    return (batch.project_ids if batch is not None
            else people.project_ids(session=session))[project]


def _update_ticket(session: Session, ctx: TicketContext, effects: Effects, site: Site,
                   now: dt.datetime, batch: Batch | None) -> TicketContext:
    before, after = ctx.state, effects.after
    values: dict = {"updated_at": now}
    if after != before:
        values.update(substatus=after.substatus, priority=after.priority, group_name=after.group,
                      ticket_type=after.type, due_date=after.due, urgent=after.urgent,
                      offer_state=after.offer_state, offer_minutes=after.offer_minutes)
        if after.status != before.status:
            closed = site.workflow_of(after.project).category(after.status) == "closed"
            values.update(status=after.status, status_changed_at=now,
                          closed_at=now if closed else None)
            ctx = ctx.evolve(closed_at=now if closed else None)
        if after.assignee != before.assignee or after.owner != before.owner:
            ids = people.agent_ids(session=session, emails=[after.assignee, after.owner])
            values.update(assignee_id=ids.get(after.assignee), owner_id=ids.get(after.owner))
        if after.project != before.project:
            values["project_id"] = _project_id(session, batch, after.project)
            ctx = ctx.evolve(project=site.projects[after.project],
                             workflow=site.workflow_of(after.project))
    tickets.update_ticket(session=session, number=ctx.number, values=values)
    customers = ctx.customers
    added, removed = sorted(after.cc - before.cc), sorted(before.cc - after.cc)
    if added:
        contacts = {a: _contact(session, batch, a, "") for a in added}
        tickets.add_ticket_contacts(session=session, ticket_id=ctx.number,
                                    contacts=[(cid, "cc") for cid, _ in contacts.values()])
        customers += tuple(Person(a, name) for a, (_, name) in contacts.items())
    if removed:
        tickets.remove_ticket_contacts(session=session, ticket_id=ctx.number, emails=removed)
        customers = tuple(c for c in customers if c.email not in removed)
    return ctx.evolve(state=after, customers=customers, updated=now)


# --- mail to send -----------------------------------------------------------------------------


def _queue(session: Session, app: App, effects: Effects, ctx: TicketContext | None, site: Site,
           now: dt.datetime, message_row: int | None, batch: Batch | None,
           cause: int | None = None) -> int:
    if not effects.mails and not effects.dropped:
        return 0
    number = ctx.number if ctx is not None else None
    shot = snapshot(app, ctx, site) if ctx is not None else {}
    rows, refs = [], []
    for mail, state, reason in ([(m, OutboxState.PENDING, m.reason) for m in effects.mails]
                                + [(d.mail, OutboxState.DROPPED, f"{d.guard}: {d.reason}")
                                   for d in effects.dropped]):
        msgid = app.composer.message_id(number)
        rows.append({
            "kind": mail.kind, "ticket_id": number, "mail_from": app.composer.verp_address(),
            "rcpt": mail.to.email[:254], "message_id": msgid, "subject": "", "raw": b"",
            "automatic": mail.automatic, "state": state, "created_at": now,
            "next_attempt_at": now, "template": mail.template,
            "payload": _payload(mail, shot or _no_ticket(app, site, mail.project), ctx,
                                message_row), "reason": reason[:2000],
            "audience": mail.audience, "inbound_id": cause,
            "last_error": reason[:2000] if state == OutboxState.DROPPED else ""})
        if number is not None and state == OutboxState.PENDING:
            refs.append({"msgid": msgid, "ticket_id": number, "created_at": now})
    outbox.insert_mails(session=session, rows=rows)
    tickets.insert_later(session=session, model=ThreadRef, rows=refs)
    if batch is not None:
        for mail in effects.mails:
            if mail.automatic:
                batch.counts = batch.counts.bump(mail.to.email, number, mail.audience)
    return len(effects.mails)


def snapshot(app: App, ctx: TicketContext, site: Site) -> dict:
    """The ticket and project as plain data, as a queued mail keeps them."""
    address = plus_address(app.config.mail.support_address, ctx.project.key)
    return {"ticket": ticket_vars(ctx.state, ctx.subject, ctx.workflow,
                                  site.staff.name_of(ctx.state.assignee),
                                  ctx.project.language),
            "project": project_vars(ctx.project, address), "thread": list(ctx.thread)}


def _no_ticket(app: App, site: Site, project: str) -> dict:
    """What a mail about no ticket (a customer's /list answered) keeps: the project it
    speaks for, else the desk itself in `[mail] language`."""
    mail = app.config.mail
    info = site.projects.get(project)
    if info is not None:
        return {"ticket": {}, "project": project_vars(
            info, plus_address(mail.support_address, info.key))}
    return {"ticket": {}, "project": {
        "name": mail.support_name, "slug": "", "key": "", "address": mail.support_address,
        "language": mail.language, "domain": "", "contact_person": "", "invitation_url": "",
        "signature": ""}}


def _payload(mail: MailIntent, snapshot: dict, ctx: TicketContext | None,
             message_row: int | None) -> dict:
    customer = mail.customer or (mail.to if mail.audience is not Audience.AGENT else None)
    agent = mail.agent or (mail.to if mail.audience is Audience.AGENT else None)
    thread = snapshot.get("thread", [])
    return {"ticket": snapshot.get("ticket"), "project": snapshot.get("project"),
            "to_name": mail.to.name, "customer": _person(customer), "agent": _person(agent),
            "text": mail.text, "change": mail.change, "transcript": mail.transcript,
            "reminder": mail.reminder, "from_name": mail.from_name, "auto": mail.auto,
            "in_reply_to": mail.in_reply_to or (thread[-1] if thread else ""),
            "references": thread, "note_address": mail.note_address,
            "files_of": message_row if mail.forward_files else None,
            "follows": mail.follows, "changes": list(mail.changes),
            "requests": list(mail.requests)}


def _person(p: Person | None) -> dict | None:
    return {"name": p.name, "email": p.email} if p is not None else None
