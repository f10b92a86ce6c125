"""`unassigned`, `quarantine` and `outbox` verbs: the queues an admin works through."""

from __future__ import annotations

import argparse
import sys

from mailgate.cli import Context
from mailgate.cli.output import emit_json, fields, listing, table
from mailgate.cli.tickets import attachment_json
from mailgate.handlers import ServiceError, triage
from mailgate.mail.parsing import header_lines
from routing.disposition import Disposition
from store import inbox, outbox, tickets
from store.models import Inbound, InboundState, OutboxState


def register(sub) -> None:
    p = sub.add_parser("unassigned", help="mail that matched no ticket or project")
    us = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    lst = us.add_parser("list", help="list the unassigned queue, oldest first")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=cmd_unassigned_list)
    show = us.add_parser("show", help="headers, text and why it was not matched")
    show.add_argument("id", type=int)
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=cmd_unassigned_show)
    assign = us.add_parser("assign", help="open a ticket from it, or add it to a ticket")
    assign.add_argument("id", type=int)
    target = assign.add_mutually_exclusive_group(required=True)
    target.add_argument("--project", metavar="SLUG", help="open a new ticket in this project")
    target.add_argument("--ticket", type=int, metavar="N", help="append to ticket N")
    assign.add_argument("--add-contact", action="store_true",
                        help="register the sender (project contact, or ticket participant)")
    assign.add_argument("--quiet", action="store_true",
                        help="send no acknowledgement or notification")
    assign.add_argument("--json", action="store_true")
    assign.set_defaults(handler=cmd_unassigned_assign)
    spam = us.add_parser("spam", help="mark as spam and remove it from the queue")
    spam.add_argument("id", type=int)
    spam.set_defaults(handler=cmd_unassigned_spam)

    p = sub.add_parser("quarantine", help="mail that could not be parsed or processed")
    qs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    lst = qs.add_parser("list", help="list quarantined mail")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=cmd_quarantine_list)
    show = qs.add_parser("show", help="why a mail was quarantined")
    show.add_argument("id", type=int)
    show.add_argument("--raw", action="store_true", help="write the raw bytes to stdout")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=cmd_quarantine_show)
    retry = qs.add_parser("retry", help="process quarantined mail again, now")
    retry.add_argument("id", type=int, nargs="*")
    retry.add_argument("--all", action="store_true")
    retry.add_argument("--json", action="store_true")
    retry.set_defaults(handler=cmd_quarantine_retry)

    p = sub.add_parser("outbox", help="outgoing mail")
    os_ = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    lst = os_.add_parser("list", help="list outgoing mail, newest first")
    lst.add_argument("--state", choices=[s.value for s in OutboxState])
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=cmd_outbox_list)
    retry = os_.add_parser("retry", help="send failed (or the given) mail again")
    retry.add_argument("id", type=int, nargs="*")
    retry.set_defaults(handler=cmd_outbox_retry)


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
            "attachments": [attachment_json(a) for a in tickets.attachments_of(
                session=session, message_ids=[message.id])[message.id]]})
    if args.json:
        emit_json(data)
        return 0
    fields([("id", data["id"]), ("received", data["received_at"]), ("from", data["from"]),
            ("to", data["to"]), ("cc", data["cc"]), ("subject", data["subject"]),
            ("why", data["reason"])])
    print("\nrules:")
    for hit in data["rules"]:
        print(f"  {'+' if hit['matched'] else '-'} {hit['rule']}: {hit['detail']}")
    print("\nheaders:")
    for h in data["headers"]:
        print(f"  {h['name']}: {h['value']}")
    print("\ntext:")
    for line in (data["text"] or "").splitlines():
        print(f"  {line}")
    for a in data["attachments"]:
        print(f"\n  [attachment] {a['filename']} ({a['content_type']}, {a['size']} bytes, "
              f"sha256 {a['sha256'][:16]}…)")
    return 0


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
        print(f"mail {args.id} {verb} ticket #{number}")
    return 0


def cmd_unassigned_spam(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit() as session:
        triage.mark_spam(session, inbound_id=args.id, now=app.now())
    print(f"mail {args.id} marked as spam")
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
    print("\nheaders:")
    for h in data["headers"]:
        print(f"  {h['name']}: {h['value']}")
    return 0


def cmd_quarantine_retry(args: argparse.Namespace, ctx: Context) -> int:
    from mailgate.edges.parse_pool import InlineParser
    from mailgate.handlers.ingest import Ingest

    if not args.id and not args.all:
        raise ServiceError("give the ids to retry, or --all")
    app = ctx.app()
    with app.db.unit() as session:
        ids = triage.requeue_quarantined(session, inbound_ids=None if args.all else args.id,
                                         now=app.now())
    ingest = Ingest(app, InlineParser(app.limits))
    results = []
    for inbound_id in ids:
        with app.db.unit() as session:
            mine = triage.claim_for_retry(session, inbound_id=inbound_id, now=app.now(),
                                          lease=ingest.lease)
        if not mine:
            continue   # a running daemon got to it first
        for outcome in ingest.run([inbound_id]):
            results.append({"id": inbound_id, "state": outcome.state,
                            "ticket": outcome.ticket, "reason": outcome.reason})
    if args.json:
        emit_json(results)
    else:
        for r in results:
            where = f"ticket #{r['ticket']}" if r["ticket"] else r["state"]
            print(f"mail {r['id']}: {where} ({r['reason']})")
    return 0 if all(r["state"] != "quarantined" for r in results) else 1


# --- outbox -------------------------------------------------------------------------------


def cmd_outbox_list(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit(write=False) as session:
        rows = [{"id": r.id, "state": r.state, "kind": r.kind, "ticket": r.ticket_id,
                 "rcpt": r.rcpt, "subject": r.subject, "attempts": r.attempts,
                 "next_attempt_at": r.next_attempt_at, "sent_at": r.sent_at,
                 "last_error": r.last_error, "message_id": r.message_id}
                for r in outbox.outbox_rows(session=session, state=args.state)]
    if args.json:
        emit_json(rows)
    else:
        table(rows, [("id", "ID", None), ("state", "STATE", None), ("kind", "KIND", None),
                     ("ticket", "TICKET", None), ("rcpt", "TO", 30), ("attempts", "TRIES", None),
                     ("next_attempt_at", "NEXT TRY", None), ("last_error", "LAST ERROR", 50)],
              empty="the outbox is empty")
    return 0


def cmd_outbox_retry(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit() as session:
        n = triage.retry_outbox(session, ids=args.id or None, now=app.now())
    if args.id and n < len(set(args.id)):
        raise ServiceError("some ids are not pending or failed (see: mailgate outbox list)")
    print(f"{n} mail(s) will be sent on the daemon's next outbox run")
    return 0
