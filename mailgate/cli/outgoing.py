"""`outbox` and `suppression` verbs: outgoing mail, and the addresses automatic mail
skips after a hard bounce."""

from __future__ import annotations

import argparse

from mailgate.cli import Context
from mailgate.cli.args import row_id
from mailgate.cli.output import emit_json, listing, say, table
from mailgate.handlers import outgoing
from store import outbox
from store.models import OutboxState


def register(sub) -> None:
    p = sub.add_parser("outbox", help="outgoing mail")
    os_ = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    lst = os_.add_parser("list", help="list outgoing mail, newest first")
    lst.add_argument("--state", choices=[s.value for s in OutboxState])
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=cmd_outbox_list)
    retry = os_.add_parser("retry", help="send failed (or the given failed or bounced) mail "
                                         "again")
    retry.add_argument("id", type=row_id, nargs="*")
    retry.set_defaults(handler=cmd_outbox_retry)
    cancel = os_.add_parser("cancel", help="never send these queued or failed mails (or "
                                           "acknowledge dropped ones)")
    cancel.add_argument("id", type=row_id, nargs="+")
    cancel.set_defaults(handler=cmd_outbox_cancel)

    p = sub.add_parser("suppression", help="addresses that get no automatic mail after a "
                                           "hard bounce")
    ss = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    lst = ss.add_parser("list", help="the suppressions in force")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=cmd_suppression_list)
    rm = ss.add_parser("remove", help="let automatic mail go to an address again")
    rm.add_argument("address")
    rm.set_defaults(handler=cmd_suppression_remove)


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
        done = outgoing.retry(session, ids=args.id or None, now=app.now())
    say(f"{done.count} mail(s) will be sent on the daemon's next outbox run")
    for address in done.bounced_to:
        # only the retried mail goes: what is decided later still skips the address
        say(f"{address} stays suppressed for other automatic mail "
            f"(mailgate suppression remove {address})")
    return 0


def cmd_outbox_cancel(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit() as session:
        n = outgoing.cancel(session, ids=args.id)
    say(f"{n} mail(s) cancelled: {', '.join(map(str, dict.fromkeys(args.id)))}")
    return 0


def cmd_suppression_list(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit(write=False) as session:
        rows = [{"address": s.address, "reason": s.reason, "since": s.created_at,
                 "until": s.until} for s in outgoing.suppressions(session, now=app.now())]
    listing(args, rows, [("address", "ADDRESS", None), ("since", "SINCE", None),
                         ("until", "UNTIL", None), ("reason", "WHY", 60)],
            empty="no address is suppressed")
    return 0


def cmd_suppression_remove(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit() as session:
        outgoing.lift_suppression(session, address=args.address, now=app.now())
    say(f"automatic mail to {args.address.strip()} is sent again")
    return 0
