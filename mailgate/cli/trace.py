"""`trace`: what happened to one mail, from the stored records alone.

Given an incoming mail's Message-ID (with or without <>), its inbound id, or the
Message-ID of a mail mailgate sent (then the incoming mail that caused it): how and
where it was received, the routing rules tried and the one that decided, what it did to
its ticket (log entries, commands), and every mail sent because of it with its delivery
state. Reading only.
"""

from __future__ import annotations

import argparse

from mailgate.cli import CliError, Context
from mailgate.cli.args import row_id
from mailgate.cli.output import emit_json, fields, say
from routing.disposition import Disposition
from store import trace
from store.models import Outbox
from store.people import projects


def register(sub) -> None:
    p = sub.add_parser("trace", help="the whole path of one mail: received, routed, "
                                     "ticket, mails sent because of it")
    p.add_argument("mail", metavar="MESSAGE-ID|INBOUND-ID",
                   help="an incoming mail's Message-ID (with or without <>) or inbound id, "
                        "or the Message-ID of a mail mailgate sent")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_trace)


def bare_msgid(value: str) -> str:
    value = value.strip()
    return value[1:-1].strip() if value.startswith("<") and value.endswith(">") else value


def cmd_trace(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    asked = args.mail.strip()
    with app.db.unit(write=False) as session:
        inbound_id, others, via = _find(session, asked)
        path = trace.path_of(session=session, inbound_id=inbound_id) \
            if inbound_id is not None else None
        if path is None and via is None:
            raise CliError(f"no mail {asked!r} is known (neither an inbound id nor a stored "
                           "or sent Message-ID)")
        slugs = {p.id: p.slug for p in projects(session=session)}
        data = {"asked": asked, "via_outgoing": _outgoing(via) if via is not None else None,
                "same_message_id": others}
        data.update(_path_json(path, slugs) if path is not None else _no_path())
    if args.json:
        emit_json(data)
    else:
        _show(data)
    return 0


def _find(session, asked: str) -> tuple[int | None, list[int], Outbox | None]:
    """(inbound id to trace, other inbound ids with the same Message-ID, the outgoing
    mail that was asked about)."""
    try:
        # an id as the id verbs take it: a number far past any row, or a digit that is
        # not ASCII, is looked up as a Message-ID instead of failing in the database
        return row_id(asked), [], None
    except argparse.ArgumentTypeError:
        pass
    msgid = bare_msgid(asked)
    ids = trace.inbound_ids_by_msgid(session=session, msgid=msgid) if msgid else []
    if ids:
        return ids[0], ids[1:], None
    sent = trace.outbox_by_msgid(session=session, msgid=msgid) if msgid else None
    if sent is not None:
        return sent.inbound_id, [], sent
    return None, [], None


def _no_path() -> dict:
    return {"inbound_id": None, "received": None, "processing": None, "message": None,
            "routing": None, "commands": [], "events": [], "ticket": None, "sent": []}


def _path_json(path: trace.Path, slugs: dict[int, str]) -> dict:
    row, m, t = path.inbound, path.message, path.ticket
    d = Disposition.from_json(m.decision) if m is not None else None
    return {
        "inbound_id": row.id,
        "received": {"how": row.source.split(":", 1)[0], "source": row.source,
                     "at": row.received_at, "instance": row.instance or None,
                     "peer": row.peer, "helo": row.helo, "mail_from": row.mail_from,
                     "rcpt_to": list(row.rcpt_tos), "size": row.size, "sha256": row.sha256,
                     "raw_kept": path.stored > 0},
        "processing": {"state": row.state, "reason": row.reason, "attempts": row.attempts,
                       "processed_at": row.processed_at},
        "message": None if m is None else {
            "id": m.id, "message_id": m.message_id, "from": m.from_addr,
            "subject": m.subject, "author": m.author, "direction": m.direction,
            "attachments": path.attachments},
        "routing": None if d is None else {
            "target": str(d.route.target), "rule": str(d.route.rule),
            "reason": d.route.reason, "actor": d.actor,
            "automatic": d.auto.automatic, "notes": list(d.notes),
            "rules": [{"rule": str(h.rule), "matched": h.matched, "detail": h.detail}
                      for h in d.route.hits]},
        "commands": [] if d is None else [{"line": c.line, "ok": c.ok, "result": c.result}
                                          for c in d.commands],
        "events": [{"at": e.at, "actor": e.actor, "kind": e.kind, "old": e.old,
                    "new": e.new, "detail": e.detail} for e in path.events],
        "ticket": None if t is None else {
            "number": t.id, "subject": t.subject, "project": slugs.get(t.project_id),
            "status": t.status, "created_at": t.created_at},
        "sent": [_outgoing(o) for o in path.outbox]}


def _outgoing(o: Outbox) -> dict:
    return {"outbox_id": o.id, "kind": o.kind, "rcpt": o.rcpt, "message_id": o.message_id,
            "ticket": o.ticket_id, "state": o.state, "attempts": o.attempts,
            "created_at": o.created_at, "sent_at": o.sent_at,
            "relay_reply": o.relay_reply or o.last_error or None, "reason": o.reason,
            "inbound_id": o.inbound_id}


def _show(data: dict) -> None:
    via = data["via_outgoing"]
    if via is not None:
        say(f"outgoing mail <{via['message_id']}> (outbox {via['outbox_id']}, {via['kind']} "
            f"to {via['rcpt']}, {via['state']})")
        if data["inbound_id"] is None and via["inbound_id"] is not None:
            say(f"  caused by inbound {via['inbound_id']}, which is no longer kept "
                "([retention] spam_after_days)")
            return
        if data["inbound_id"] is None:
            say("  not caused by an incoming mail (a timer, or an agent on the command line)")
            return
        say(f"  caused by inbound {data['inbound_id']}:")
        say()
    r, p, m = data["received"], data["processing"], data["message"]
    fields([("inbound", data["inbound_id"]),
            ("received", f"{r['at']:%Y-%m-%d %H:%M:%S} UTC over {r['source']} by "
                         f"{r['instance'] or 'an unrecorded instance'}"),
            ("from peer", f"{r['peer']} (HELO {r['helo']})" if r["peer"] else None),
            ("envelope", f"{r['mail_from'] or '<>'} -> {', '.join(r['rcpt_to'])}"),
            ("size", f"{r['size']} bytes" + ("" if r["raw_kept"] else " (bytes no longer "
                                                                       "kept)")),
            ("state", f"{p['state']} after {p['attempts']} attempt(s)"
                      + (f": {p['reason']}" if p["reason"] else ""))]
           + ([] if m is None else [
               ("message-id", f"<{m['message_id']}>" if m["message_id"] else "(none)"),
               ("from", m["from"]), ("subject", m["subject"]),
               ("attachments", m["attachments"])]))
    for other in data["same_message_id"]:
        say(f"(the same Message-ID also arrived as inbound {other})")
    route = data["routing"]
    if route is not None:
        say()
        say(f"routing: {route['target']} by rule {route['rule']}: {route['reason']}")
        for hit in route["rules"]:
            say(f"  {'+' if hit['matched'] else '-'} {hit['rule']}: {hit['detail']}")
        for note in route["notes"]:
            say(f"  note: {note}")
    for c in data["commands"]:
        say(f"command {'applied' if c['ok'] else 'refused'}: {c['line']} -> {c['result']}")
    t = data["ticket"]
    say()
    say(f"ticket: #{t['number']} {t['subject']} ({t['project']}, {t['status']})"
        if t is not None else "ticket: none")
    for e in data["events"]:
        change = f" {e['old']} -> {e['new']}" if e["old"] or e["new"] else ""
        say(f"  {e['at']:%Y-%m-%d %H:%M:%S} {e['kind']}{change} by {e['actor']}"
            + (f": {e['detail']}" if e["detail"] else ""))
    say()
    say(f"sent because of it: {len(data['sent'])}")
    for o in data["sent"]:
        when = f", sent {o['sent_at']:%Y-%m-%d %H:%M:%S}" if o["sent_at"] else ""
        reply = f", relay: {o['relay_reply']}" if o["relay_reply"] else ""
        say(f"  {o['kind']} to {o['rcpt']}: {o['state']}, {o['attempts']} attempt(s){when}"
            f"{reply} <{o['message_id']}>")
