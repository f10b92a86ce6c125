"""`ticket` verbs."""

from __future__ import annotations

import argparse

from mailgate.cli import EX_USAGE, CliError, Context, acting, turns
from mailgate.cli.args import day, ticket_number
from mailgate.cli.common import filters, me
from mailgate.cli.conversation import print_message, terminal_width
from mailgate.cli.output import emit_json, fields, say, table
from mailgate.handlers.tickets import delete_ticket, load_ticket
from routing.context import PRIORITY_NAMES
from routing.disposition import Disposition
from routing.quota import show_minutes
from routing.verbs import PRIORITIES
from routing.workflow import workflow_named
from store import desk, links, people, quota, tickets
from store.models import Project, Ticket


def register(sub) -> None:
    p = sub.add_parser("ticket", help="list and show tickets")
    ts = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    lst = ts.add_parser("list", help="list tickets, newest first")
    lst.add_argument("--project", metavar="SLUG")
    lst.add_argument("--status", metavar="STATUS")
    lst.add_argument("--search", metavar="TEXT", help="subject contains TEXT (literally)")
    lst.add_argument("--assignee", metavar="EMAIL|me",
                     help="assigned to this agent (me: --as, else $MAILGATE_AGENT)")
    lst.add_argument("--as", dest="actor", metavar="EMAIL", help="who `me` is")
    lst.add_argument("--waiting-on", metavar="ROLE|EMAIL|me",
                     help="whose turn it is: a workflow role (customer, 'Digital Coach', "
                          "...) or an agent who plays an acting role (me: --as, else "
                          "[cli] agent)")
    lst.add_argument("--requester", metavar="ADDR")
    lst.add_argument("--priority", type=priority_arg, metavar="low|normal|high")
    lst.add_argument("--due-before", type=day, metavar="DATE")
    lst.add_argument("--sort", choices=("updated", "priority", "due"),
                     help="default: newest ticket first")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=cmd_list)
    show = ts.add_parser("show", help="a ticket as a conversation, with its log")
    show.add_argument("number", type=ticket_number)
    show.add_argument("--full", action="store_true", help="show quoted parts too")
    show.add_argument("--wide", action="store_true", help="do not wrap long lines")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=cmd_show)
    delete = ts.add_parser("delete", help="delete a ticket (its reply addresses stop working)")
    delete.add_argument("number", type=ticket_number)
    delete.set_defaults(handler=cmd_delete)
    acting.register_ticket_verbs(ts)      # reply, note, set, new, log, merge


def priority_arg(text: str) -> int:
    """A priority as `/priority` reads it: low, normal, high (or 1-3, or the German and
    Danish words)."""
    value = PRIORITIES.get(text.strip().lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"not a priority: {text[:20]!r} "
                                         "(expected low, normal, high or 1-3)")
    return value


def _assignee_id(session, args, config) -> int | None:
    """The agent `--assignee` names; `me` as `common.me` says."""
    if not args.assignee:
        return None
    email = args.assignee.strip().lower()
    if email == "me":
        email = me(args.actor, config)
        if not email:
            raise CliError("--assignee me needs --as EMAIL (or [cli] agent, or "
                           "$MAILGATE_AGENT)", EX_USAGE)
    found = people.agent_ids(session=session, emails=[email])
    if email not in found:
        raise CliError(f"unknown agent {email!r} (see: mailgate agent list)", EX_USAGE)
    return found[email]


def tickets_json(session, pairs: list[tuple[Ticket, str]]) -> list[dict]:
    """Tickets (with their project's slug) as JSON; the people on them are looked up
    once for all of them."""
    contacts = people.contact_emails(session=session,
                                     ids=[t.requester_id for t, _ in pairs if t.requester_id])
    agents = people.agent_emails(session=session, ids=[i for t, _ in pairs
                                                       for i in (t.assignee_id, t.owner_id) if i])
    return [{"number": t.id, "subject": t.subject, "status": t.status, "priority": t.priority,
             "project": slug, "requester": contacts.get(t.requester_id),
             "assignee": agents.get(t.assignee_id), "owner": agents.get(t.owner_id),
             "created_at": t.created_at, "updated_at": t.updated_at,
             "substatus": t.substatus, "group": t.group_name, "type": t.ticket_type,
             "due": t.due_date.isoformat() if t.due_date else None, "urgent": t.urgent,
             "merged_into": t.merged_into_id}
            for t, slug in pairs]


def attachment_json(a) -> dict:
    return {"id": a.id, "filename": a.filename, "content_type": a.content_type, "size": a.size,
            "sha256": a.sha256, "content_id": a.content_id}


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
        project, statuses = filters(session, app, args)
        wanted = turns.waiting_filter(session, app, args, project)
        pairs = tickets.list_tickets(
            session=session, project=project, statuses=statuses, search=args.search,
            assignee_id=_assignee_id(session, args, app.config), requester=args.requester,
            priority=args.priority, due_before=args.due_before,
            sort=args.sort or "number")
        turn_of = turns.ticket_turns(session, app, pairs)
        if wanted:
            pairs = [(t, slug) for t, slug in pairs if turns.keep(turn_of[t.id][0], wanted)]
        rows = tickets_json(session, pairs)
    for r in rows:
        r["waiting_on"] = turns.turns_json(*turn_of[r["number"]])
    if args.json:
        emit_json(rows)
    else:
        for r in rows:
            r["prio"] = PRIORITY_NAMES.get(r["priority"], r["priority"])
            r["num"] = f"#{r['number']}"
            r["turn"] = ", ".join(w["label"] for w in r["waiting_on"])
        table(rows, [("num", "TICKET", None), ("project", "PROJECT", None),
                     ("status", "STATUS", None), ("prio", "PRIO", None),
                     ("subject", "SUBJECT", 50), ("requester", "REQUESTER", 30),
                     ("turn", "WAITING ON", 30), ("updated_at", "UPDATED", None)])
    return 0


LINK_LABELS = {"follows": "follows up", "followed-by": "followed up by"}


def cmd_show(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit(write=False) as session:
        t = load_ticket(session, args.number)
        project = session.get(Project, t.project_id)
        (data,) = tickets_json(session, [(t, project.slug)])
        data["participants"] = [{"email": c.email, "name": c.name, "role": role}
                                for c, role in tickets.ticket_contacts(session=session,
                                                                       ticket_id=t.id)]
        messages = tickets.ticket_messages(session=session, ticket_id=t.id)
        files = tickets.attachments_of(session=session, message_ids=[m.id for m in messages])
        changes = desk.status_changes(session=session, numbers=[t.id])[t.id]
        data["messages"] = [{
            "direction": m.direction, "from": m.from_addr, "to": m.to_addrs,
            "subject": m.subject, "text": m.text, "created_at": m.created_at,
            "rule": Disposition.from_json(m.decision).route.rule,
            "attachments": [attachment_json(a) for a in files[m.id]],
            "id": m.id, "author": m.author, "full_text": m.full_text,
            "defects": list(m.defects or []),
            "status_at": desk.status_at(changes, m.created_at, t.status),
            "done_at": m.done_at, "done_by": m.done_by or None} for m in messages]
        wf = workflow_named(app.workflows, project.workflow)
        data["events"] = [event_json(e, wf) for e in tickets.ticket_events(session=session,
                                                                         ticket_id=t.id)]
        booked = quota.ticket_bookings(session=session, numbers=[t.id]).get(t.id, (0, 0))
        data["offer"] = {"state": t.offer_state, "minutes": t.offer_minutes,
                         "used_minutes": booked[1]} if t.offer_state else None
        data["booked_minutes"] = booked[0]
        data["waiting_on"] = turns.turns_json(*turns.ticket_turns(
            session, app, [(t, project.slug)])[t.id])
        data["links"] = [{"kind": kind, "ticket": other}
                         for kind, other in links.links_of(session=session, number=t.id)]
    if args.json:
        emit_json(data)
        return 0
    fields([("ticket", f"#{data['number']}"), ("subject", data["subject"]),
            *([("merged into", f"#{data['merged_into']}")] if data["merged_into"] else []),
            ("project", data["project"]),
            ("status", data["status"] + (f", {data['substatus']}" if data["substatus"] else "")),
            ("waiting on", turns.shown(data["waiting_on"]) or None),
            ("priority", PRIORITY_NAMES.get(data["priority"], data["priority"])),
            ("requester", data["requester"]), ("owner", data["owner"]),
            ("assignee", data["assignee"]),
            ("group", data["group"]), ("type", data["type"]), ("due", data["due"]),
            ("urgent", "yes" if data["urgent"] else "no"),
            ("offer", f"{show_minutes(data['offer']['minutes'])} {data['offer']['state']}"
             if data["offer"] else None),
            ("time booked", show_minutes(data["booked_minutes"])
             if data["booked_minutes"] else None),
            ("participants", [p["email"] for p in data["participants"]]),
            *((LINK_LABELS.get(k["kind"], k["kind"]), f"#{k['ticket']}")
              for k in data["links"]),
            ("created", data["created_at"]), ("updated", data["updated_at"])])
    width = None if args.wide else terminal_width()
    for m in data["messages"]:
        say()
        print_message(m, full=args.full, width=width)
    say()
    say("log:")
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
    say(f"ticket #{args.number} deleted")
    return 0
