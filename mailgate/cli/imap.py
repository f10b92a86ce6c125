"""`imap` verbs: how the configured mailboxes are doing, and whether they can be used."""

from __future__ import annotations

import argparse
import json

from mailgate.cli import Context
from mailgate.cli.output import emit_json, say, table
from mailgate.edges.imap import box_name, check_mailbox
from store import settings


def register(sub) -> None:
    p = sub.add_parser("imap", help="IMAP mailboxes: status and connection test")
    s = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    st = s.add_parser("status", help="what each mailbox fetcher last reported")
    st.add_argument("--json", action="store_true")
    st.set_defaults(handler=cmd_status)
    t = s.add_parser("test", help="log in to each mailbox and open its folder")
    t.add_argument("--json", action="store_true")
    t.set_defaults(handler=cmd_test)


def last_reports(session, boxes) -> list[tuple[object, str, dict]]:
    """(box, name, what its fetcher last reported) for each configured mailbox; the
    fetcher (`mailgate.edges.imap`) saves its report as a setting."""
    out = []
    for box in boxes:
        name = box_name(box)
        raw = settings.get_setting(session=session, key=f"imap.status.{name}")
        out.append((box, name, json.loads(raw) if raw else {"state": "never-ran"}))
    return out


def cmd_status(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit(write=False) as session:
        reports = last_reports(session, app.config.imap)
    rows = [{"name": name, "host": f"{box.host}:{box.port}", "user": box.user,
             "folder": box.folder, "state": data.get("state", ""),
             "error": data.get("error", ""),
             "last_ok_at": data.get("last_ok_at", ""),
             "last_error_at": data.get("last_error_at", ""),
             "stored": data.get("stored", 0)} for box, name, data in reports]
    if args.json:
        emit_json(rows)
    elif not rows:
        say("no [[imap]] mailboxes configured")
    else:
        table(rows, [("name", "MAILBOX", 30), ("state", "STATE", None),
                     ("stored", "STORED", None), ("last_ok_at", "LAST OK", None),
                     ("error", "ERROR", 60)])
    return 0 if all(r["state"] in ("ok", "idle") for r in rows) else 1


def cmd_test(args: argparse.Namespace, ctx: Context) -> int:
    cfg = ctx.config
    rows = []
    for box in cfg.imap:
        result = check_mailbox(box)
        rows.append({"name": box_name(box)} | result)
    if args.json:
        emit_json(rows)
    elif not rows:
        say("no [[imap]] mailboxes configured")
    else:
        for r in rows:
            verdict = "ok" if r["ok"] else "FAILED"
            detail = (f"{r['messages']} message(s) in {r['folder']}" if r["ok"]
                      else r["problem"])
            # the problem quotes the IMAP server's answer
            say(f"{r['name']}: {verdict}: {detail}" + (f" ({r['note']})" if r.get("note")
                                                       else ""))
    return 0 if all(r["ok"] for r in rows) else 1
