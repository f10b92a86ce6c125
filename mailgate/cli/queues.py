"""`unassigned` and `quarantine` verbs (and, through `mailgate.cli.outgoing`, `outbox` and
`suppression`): the queues an admin works through."""

from __future__ import annotations

import argparse
import sys

from mailgate.cli import Context, outgoing
from mailgate.cli.args import row_id, ticket_number
from mailgate.cli.output import block, emit_json, fields, listing, say
from mailgate.cli.tickets import attachment_json
from mailgate.handlers import ServiceError, triage
from mailgate.mail.parsing import header_lines
from routing.disposition import Disposition
from store import inbox, tickets
from store.models import Inbound, InboundState


def register(sub) -> None:
    p = sub.add_parser("unassigned", help="mail that matched no ticket or project")
    us = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    lst = us.add_parser("list", help="list the unassigned queue, oldest first")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=cmd_unassigned_list)
    show = us.add_parser("show", help="headers, text and why it was not matched")
    show.add_argument("id", type=row_id)
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=cmd_unassigned_show)
    assign = us.add_parser("assign", help="open a ticket from it, or add it to a ticket")
    assign.add_argument("id", type=row_id)
    target = assign.add_mutually_exclusive_group(required=True)
    target.add_argument("--project", metavar="SLUG", help="open a new ticket in this project")
    target.add_argument("--ticket", type=ticket_number, metavar="N", help="append to ticket N")
    assign.add_argument("--add-contact", action="store_true",
                        help="register the sender (project contact, or ticket participant)")
    assign.add_argument("--quiet", action="store_true",
                        help="send no acknowledgement or notification")
    assign.add_argument("--json", action="store_true")
    assign.set_defaults(handler=cmd_unassigned_assign)
    spam = us.add_parser("spam", help="mark as spam and remove it from the queue")
    spam.add_argument("id", type=row_id)
    spam.set_defaults(handler=cmd_unassigned_spam)

    p = sub.add_parser("quarantine", help="mail that could not be parsed or processed")
    qs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    lst = qs.add_parser("list", help="list quarantined mail")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=cmd_quarantine_list)
    show = qs.add_parser("show", help="why a mail was quarantined")
    show.add_argument("id", type=row_id)
    show.add_argument("--raw", action="store_true", help="write the raw bytes to stdout")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=cmd_quarantine_show)
    retry = qs.add_parser("retry", help="process quarantined mail again, now")
    retry.add_argument("id", type=row_id, nargs="*")
    retry.add_argument("--all", action="store_true")
    retry.add_argument("--json", action="store_true")
    retry.set_defaults(handler=cmd_quarantine_retry)
    drop = qs.add_parser("drop", help="delete quarantined mail for good (a small record "
                                      "stays)")
    drop.add_argument("id", type=row_id, nargs="+")
    drop.set_defaults(handler=cmd_quarantine_drop)

    outgoing.register(sub)


# --- unassigned ---------------------------------------------------------------------------


def _summary(row: Inbound, message) -> dict:
    return {"id": row.id, "from": message.from_addr if message else "",
            "to": list(row.rcpt_tos), "subject": message.subject if message else "",
            "received_at": row.received_at, "reason": row.reason}


def cmd_unassigned_list(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit(write=False) as session:
        rows = inbox.inbound_rows(session=session, state=InboundState.UNASSIGNED)
        messages = inbox.inbound_messages(session=session, inbound_ids=[r.id for r in rows])
        rows = [_summary(r, messages.get(r.id)) for r in rows]
    listing(args, rows, [("id", "ID", None), ("received_at", "RECEIVED", None),
                         ("from", "FROM", 30), ("subject", "SUBJECT", 40), ("reason", "WHY", 60)],
            empty="the unassigned queue is empty")
    return 0


def cmd_unassigned_show(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit(write=False) as session:
        row, message = triage.unassigned_row(session, args.id)
        raw = inbox.raw_of(session=session, inbound_id=row.id)
        data = _summary(row, message)
        data.update({
            "cc": message.cc_addrs, "text": message.text,
            "headers": [{"name": n, "value": v} for n, v in header_lines(raw)],
            "rules": [{"rule": str(h.rule), "matched": h.matched, "detail": h.detail}
                      for h in Disposition.from_json(message.decision).route.hits],
            "automatic": Disposition.from_json(message.decision).auto.as_dict(),
            "attachments": [attachment_json(a) for a in tickets.attachments_of(
                session=session, message_ids=[message.id])[message.id]]})
    if args.json:
        emit_json(data)
        return 0
    fields([("id", data["id"]), ("received", data["received_at"]), ("from", data["from"]),
            ("to", data["to"]), ("cc", data["cc"]), ("subject", data["subject"]),
            ("why", data["reason"]), ("automatic", _automatic(data["automatic"]))])
    say()
    say("rules:")
    for hit in data["rules"]:
        say(f"  {'+' if hit['matched'] else '-'} {hit['rule']}: {hit['detail']}")
    _headers(data["headers"])
    say()
    say("text:")
    block(data["text"], indent="  ")
    for a in data["attachments"]:
        say()
        say(f"  [attachment] {a['filename']} ({a['content_type']}, {a['size']} bytes, "
            f"sha256 {a['sha256'][:16]}…)")
    return 0


def _automatic(auto: dict) -> str:
    """How the mail was classed, and the signal that decided (routing.loops)."""
    kind = ("yes" if auto["automatic"] else
            "no, but gets no automatic answer" if auto["suppress_reply"] else "no")
    return f"{kind} ({auto['decided_by']})" if auto["decided_by"] else kind


def cmd_unassigned_assign(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit() as session:
        if args.project:
            number = triage.assign_to_project(session, app, inbound_id=args.id,
                                              project_slug=args.project,
                                              add_contact=args.add_contact, quiet=args.quiet,
                                              now=app.now())
        else:
            number = triage.assign_to_ticket(session, app, inbound_id=args.id,
                                             number=args.ticket,
                                             add_contact=args.add_contact, quiet=args.quiet,
                                             now=app.now())
    if args.json:
        emit_json({"id": args.id, "ticket": number})
    else:
        verb = "opened" if args.project else "appended to"
        say(f"mail {args.id} {verb} ticket #{number}")
    return 0


def cmd_unassigned_spam(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit() as session:
        triage.mark_spam(session, inbound_id=args.id, now=app.now())
    say(f"mail {args.id} marked as spam")
    return 0


# --- quarantine ---------------------------------------------------------------------------


def _quarantine_json(row: Inbound) -> dict:
    return {"id": row.id, "received_at": row.received_at, "source": row.source,
            "mail_from": row.mail_from, "to": list(row.rcpt_tos), "size": row.size,
            "sha256": row.sha256, "attempts": row.attempts, "reason": row.reason}


def cmd_quarantine_list(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit(write=False) as session:
        rows = [_quarantine_json(r) for r in inbox.inbound_rows(
            session=session, state=InboundState.QUARANTINED)]
    listing(args, rows, [("id", "ID", None), ("received_at", "RECEIVED", None),
                         ("size", "BYTES", None), ("attempts", "TRIES", None),
                         ("reason", "REASON", 80)], empty="the quarantine is empty")
    return 0


def cmd_quarantine_show(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit(write=False) as session:
        row = inbox.inbound_row(session=session, inbound_id=args.id)
        if row is None or row.state != InboundState.QUARANTINED:
            raise ServiceError(f"no quarantined mail with id {args.id} "
                               "(see: mailgate quarantine list)")
        data = _quarantine_json(row)
        raw = inbox.raw_of(session=session, inbound_id=args.id)
    if args.raw:
        sys.stdout.buffer.write(raw)
        sys.stdout.flush()
        return 0
    data["headers"] = [{"name": n, "value": v} for n, v in header_lines(raw)]
    if args.json:
        emit_json(data)
        return 0
    fields([(k, data[k]) for k in ("id", "received_at", "source", "mail_from", "to", "size",
                                   "sha256", "attempts", "reason")])
    _headers(data["headers"])
    return 0


def _headers(headers: list[dict]) -> None:
    say()
    say("headers:")
    for h in headers:
        say(f"  {h['name']}: {h['value']}")


def cmd_quarantine_retry(args: argparse.Namespace, ctx: Context) -> int:
    from mailgate.edges.parse_pool import InlineParser
    from mailgate.handlers.ingest import Ingest

    if not args.id and not args.all:
        raise ServiceError("give the ids to retry, or --all")
    app = ctx.app()
    ingest = Ingest(app, InlineParser(app.limits))
    # requeued and claimed in one transaction: a running daemon never sees the rows
    # pending in between and takes them away from the admin who asked for the answer
    with app.db.unit() as session:
        ids = triage.requeue_quarantined(session, inbound_ids=None if args.all else args.id,
                                         now=app.now())
        mine = [i for i in ids if triage.claim_for_retry(session, inbound_id=i, now=app.now(),
                                                         lease=ingest.lease)]
    results = []
    for inbound_id in mine:
        for outcome in ingest.run([inbound_id]):
            results.append({"id": inbound_id, "state": outcome.state,
                            "ticket": outcome.ticket, "reason": outcome.reason})
    if args.json:
        emit_json(results)
    else:
        for r in results:
            where = f"ticket #{r['ticket']}" if r["ticket"] else r["state"]
            say(f"mail {r['id']}: {where} ({r['reason']})")
    return 0 if all(r["state"] != "quarantined" for r in results) else 1


def cmd_quarantine_drop(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit() as session:
        dropped = triage.drop_quarantined(session, inbound_ids=args.id, now=app.now())
    say(f"dropped from the quarantine: {', '.join(map(str, dropped))}")
    return 0
