"""`ticket` verbs."""

from __future__ import annotations

import argparse

from mailgate.cli import Context
from mailgate.cli.output import emit_json, fields, table
from mailgate.handlers.tickets import delete_ticket, load_ticket
from routing.context import PRIORITY_NAMES
from routing.disposition import Disposition
from store import tickets
from store.models import Agent, Contact, Project, Ticket


def register(sub) -> None:
    p = sub.add_parser("ticket", help="list and show tickets")
    ts = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    lst = ts.add_parser("list", help="list tickets, newest first")
    lst.add_argument("--project", metavar="SLUG")
    lst.add_argument("--status", metavar="STATUS")
    lst.add_argument("--search", metavar="TEXT", help="subject contains TEXT (literally)")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=cmd_list)
    show = ts.add_parser("show", help="a ticket with its messages and log")
    show.add_argument("number", type=_number)
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=cmd_show)
    delete = ts.add_parser("delete", help="delete a ticket (its reply addresses stop working)")
    delete.add_argument("number", type=_number)
    delete.set_defaults(handler=cmd_delete)


def _number(text: str) -> int:
    value = text.lstrip("#")
    if not value.isdigit() or not 0 < int(value) < 10**12:
        raise argparse.ArgumentTypeError(f"not a ticket number: {text!r}")
    return int(value)


def ticket_json(session, t: Ticket, slug: str | None = None) -> dict:
    requester = session.get(Contact, t.requester_id) if t.requester_id else None
    assignee = session.get(Agent, t.assignee_id) if t.assignee_id else None
    if slug is None:
        slug = session.get(Project, t.project_id).slug
    return {"number": t.id, "subject": t.subject, "status": t.status, "priority": t.priority,
            "project": slug, "requester": requester.email if requester else None,
            "assignee": assignee.email if assignee else None,
            "created_at": t.created_at, "updated_at": t.updated_at,
            "substatus": t.substatus, "group": t.group_name, "type": t.ticket_type,
            "due": t.due_date.isoformat() if t.due_date else None, "urgent": t.urgent}


def attachment_json(a) -> dict:
    return {"filename": a.filename, "content_type": a.content_type, "size": a.size,
            "sha256": a.sha256}


def event_json(e, wf) -> dict:
    """An event with its values; status values also with the workflow's labels."""
    out = {"at": e.at, "actor": e.actor, "kind": e.kind, "old": e.old, "new": e.new,
           "status": e.status, "detail": e.detail}
    if e.kind == "status":
        out.update(old_label=wf.status_label(e.old), new_label=wf.status_label(e.new))
    return out


def cmd_list(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit(write=False) as session:
        rows = [ticket_json(session, t, slug) for t, slug in tickets.list_tickets(
            session=session, project=args.project, status=args.status, search=args.search)]
    if args.json:
        emit_json(rows)
    else:
        for r in rows:
            r["prio"] = PRIORITY_NAMES.get(r["priority"], r["priority"])
            r["num"] = f"#{r['number']}"
        table(rows, [("num", "TICKET", None), ("project", "PROJECT", None),
                     ("status", "STATUS", None), ("prio", "PRIO", None),
                     ("subject", "SUBJECT", 50), ("requester", "REQUESTER", 30),
                     ("updated_at", "UPDATED", None)])
    return 0


def cmd_show(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit(write=False) as session:
        t = load_ticket(session, args.number)
        data = ticket_json(session, t)
        data["participants"] = [{"email": c.email, "name": c.name, "role": role}
                                for c, role in tickets.ticket_contacts(session=session,
                                                                       ticket_id=t.id)]
        messages = tickets.ticket_messages(session=session, ticket_id=t.id)
        files = tickets.attachments_of(session=session, message_ids=[m.id for m in messages])
        data["messages"] = [{
            "direction": m.direction, "from": m.from_addr, "to": m.to_addrs,
            "subject": m.subject, "text": m.text, "created_at": m.created_at,
            "rule": Disposition.from_json(m.decision).route.rule,
            "attachments": [attachment_json(a) for a in files[m.id]]} for m in messages]
        wf = app.workflows.get(session.get(Project, t.project_id).workflow) \
            or app.workflows["support"]
        data["events"] = [event_json(e, wf) for e in tickets.ticket_events(session=session,
                                                                         ticket_id=t.id)]
    if args.json:
        emit_json(data)
        return 0
    fields([("ticket", f"#{data['number']}"), ("subject", data["subject"]),
            ("project", data["project"]),
            ("status", data["status"] + (f", {data['substatus']}" if data["substatus"] else "")),
            ("priority", PRIORITY_NAMES.get(data["priority"], data["priority"])),
            ("requester", data["requester"]), ("assignee", data["assignee"]),
            ("group", data["group"]), ("type", data["type"]), ("due", data["due"]),
            ("urgent", "yes" if data["urgent"] else "no"),
            ("participants", [p["email"] for p in data["participants"]]),
            ("created", data["created_at"]), ("updated", data["updated_at"])])
    for m in data["messages"]:
        arrow = {"in": "<-", "out": "->", "internal": "##"}.get(m["direction"], "--")
        print(f"\n{arrow} {m['direction']} {m['created_at']:%Y-%m-%d %H:%M} from {m['from']}"
              f" · {m['subject']}")
        for line in (m["text"] or "").strip().splitlines():
            print(f"   {line}")
        for a in m["attachments"]:
            print(f"   [attachment] {a['filename']} ({a['content_type']}, {a['size']} bytes)")
    print("\nlog:")
    for e in data["events"]:
        if e["kind"] == "status":
            e["old"], e["new"] = e["old_label"], e["new_label"]
    table(data["events"], [("at", "WHEN", None), ("actor", "WHO", 30), ("kind", "WHAT", None),
                           ("old", "OLD", 20), ("new", "NEW", 20), ("status", "STATUS", 20),
                           ("detail", "DETAIL", 50)])
    return 0


def cmd_delete(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit() as session:
        delete_ticket(session, number=args.number, actor="admin", now=app.now())
    print(f"ticket #{args.number} deleted")
    return 0
