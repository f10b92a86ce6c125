"""`status`: one look at the whole daemon for an admin or a monitoring check.

Counts of incoming and outgoing mail by state, open tickets, the mailboxes; and a list of
what needs a person (quarantined mail, failed or stuck outgoing mail, a mailbox that
cannot log in). The exit status is 1 when that list is not empty, so a cron job or a
monitoring probe can run `mailgate status` as it is.
"""

from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import dataclass, field

from mailgate.cli import Context
from mailgate.cli.imap import last_reports
from mailgate.cli.output import emit_json, say
from mailgate.config import agent_mail_verified, trust_summary
from store import desk, inbox, outbox, tickets
from store.models import Inbound, Outbox

STUCK_AFTER = dt.timedelta(hours=1)     # outgoing mail older than this is worth a look


def register(sub) -> None:
    p = sub.add_parser("status", help="queues, tickets and mailboxes at a glance; exit 1 "
                                      "when something needs attention")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_status)


@dataclass(frozen=True)
class Snapshot:
    """What the store says, as plain values."""

    inbound: dict[str, int]
    outbox: dict[str, int]
    open_tickets: int
    oldest_pending_out: dt.datetime | None = None
    oldest_pending_error: str = ""
    mailboxes: tuple[dict, ...] = field(default_factory=tuple)
    dropped_today: int = 0          # outgoing mail a guard stopped in the last 24 hours
    undone: dict[str, int] = field(default_factory=dict)   # project -> undone incoming


def needs_attention(s: Snapshot, now: dt.datetime) -> list[str]:
    """What a person should look at, each with the command that shows it."""
    found = []
    if s.inbound.get("quarantined"):
        found.append(f"{s.inbound['quarantined']} quarantined incoming mail(s): "
                     "mailgate quarantine list")
    if s.outbox.get("failed"):
        found.append(f"{s.outbox['failed']} outgoing mail(s) refused by the relay: "
                     "mailgate outbox list --state failed")
    if s.oldest_pending_out is not None and now - s.oldest_pending_out > STUCK_AFTER:
        hours = (now - s.oldest_pending_out).total_seconds() / 3600
        why = f" (last error: {s.oldest_pending_error})" if s.oldest_pending_error else ""
        found.append(f"outgoing mail has waited {hours:.1f} hours for the relay{why}: "
                     "mailgate outbox list --state pending")
    if s.dropped_today:
        found.append(f"{s.dropped_today} outgoing mail(s) stopped by a loop or bounce guard "
                     "in the last 24 hours: mailgate outbox list --state dropped")
    for box in s.mailboxes:
        if box["state"] not in ("ok", "idle", "never-ran"):
            found.append(f"mailbox {box['name']}: {box['state']}"
                         + (f" ({box['error']})" if box["error"] else "")
                         + ": mailgate imap status")
    return found


def snapshot(app) -> Snapshot:
    with app.db.unit(write=False) as session:
        pending = outbox.oldest_pending(session=session)
        boxes = [{"name": name, "state": data.get("state", "never-ran"),
                  "error": data.get("error", "")}
                 for _, name, data in last_reports(session, app.config.imap)]
        return Snapshot(
            inbound=inbox.count_by_state(session=session, model=Inbound),
            outbox=inbox.count_by_state(session=session, model=Outbox),
            open_tickets=tickets.open_ticket_count(session=session),
            undone=desk.undone_by_project(session=session),
            oldest_pending_out=pending[0] if pending else None,
            oldest_pending_error=pending[1] if pending else "",
            mailboxes=tuple(boxes),
            dropped_today=outbox.dropped_since(session=session,
                                               since=app.now() - dt.timedelta(days=1)))


def cmd_status(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    s = snapshot(app)
    attention = needs_attention(s, app.now())
    if args.json:
        emit_json({"config": app.config.source, "database": app.db.describe(),
                   "agent_mail_verified": agent_mail_verified(app.config),
                   "inbound": s.inbound, "outbox": s.outbox, "open_tickets": s.open_tickets,
                   "undone": s.undone,
                   "oldest_pending_outbox": s.oldest_pending_out,
                   "mailboxes": list(s.mailboxes), "attention": attention})
    else:
        def counts(d: dict[str, int]) -> str:
            return ", ".join(f"{n} {state}" for state, n in sorted(d.items())) or "none"

        # which settings and which store: a CLI that quietly read the wrong ones would
        # report "nothing needs attention" about an empty database
        print(f"config:       {app.config.source}")
        print(f"database:     {app.db.describe()}")
        print(f"agents:       {trust_summary(app.config)}")
        print(f"incoming:     {counts(s.inbound)}")
        print(f"outgoing:     {counts(s.outbox)}")
        print(f"open tickets: {s.open_tickets}")
        say("undone:       " + (", ".join(f"{slug} {n}" for slug, n in sorted(s.undone.items()))
                                or "none"))
        for box in s.mailboxes:
            say(f"mailbox:      {box['name']}: {box['state']}")
        # attention lines quote relay and IMAP server errors: shown safe
        say("attention:    " + ("nothing" if not attention else attention[0]))
        for line in attention[1:]:
            say(f"              {line}")
    return 1 if attention else 0
