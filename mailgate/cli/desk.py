"""The agent's desk: `log` (a project's mail, notes and log entries in time), `message
done|undone|raw` and `attachment save`.

Reading only, except the done marks, which go through `mailgate.handlers.desk`. Raw
mail and attachment bytes are written as bytes, never decoded: they are the evidence.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from mailgate.cli import EX_USAGE, CliError, Context
from mailgate.cli.args import add_done_flags, day, day_range, row_id
from mailgate.cli.common import me
from mailgate.cli.conversation import ARROWS
from mailgate.cli.output import emit_json, say
from mailgate.handlers import ServiceError
from mailgate.handlers.desk import mark_done
from mailgate.handlers.directory import require_project
from store import desk

CALL_KINDS = frozenset({"call", "sms", "meeting"})   # manual entries: calls and talks
KINDS = ("mail", "note", "call", "event")


def register(sub) -> None:
    p = sub.add_parser("log", help="a project's mail, notes and log entries in time")
    p.add_argument("slug", metavar="SLUG")
    p.add_argument("--since", type=day, metavar="DATE")
    p.add_argument("--until", type=day, metavar="DATE")
    p.add_argument("--direction", choices=("in", "out", "internal"))
    add_done_flags(p)
    p.add_argument("--kind", choices=KINDS)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_log)

    p = sub.add_parser("message", help="tick messages off as done; a message's raw mail")
    ms = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb, done in (("done", True), ("undone", False)):
        d = ms.add_parser(verb, help=f"mark messages as {'done' if done else 'not done'}")
        d.add_argument("ids", nargs="+", type=row_id, metavar="ID")
        d.add_argument("--as", dest="actor", metavar="EMAIL",
                       help="who (default: $MAILGATE_AGENT, else the login name)")
        d.set_defaults(handler=cmd_done, done=done)
    r = ms.add_parser("raw", help="the stored mail exactly as received (or as sent)")
    r.add_argument("id", type=row_id, metavar="ID")
    r.set_defaults(handler=cmd_raw)

    p = sub.add_parser("attachment", help="files customers sent")
    at = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    s = at.add_parser("save", help="write an attachment's exact bytes to a file")
    s.add_argument("id", type=row_id, metavar="ID")
    s.add_argument("-o", "--output", metavar="PATH",
                   help="file or folder (default: its name, in the current folder)")
    s.add_argument("--force", action="store_true", help="overwrite an existing file")
    s.set_defaults(handler=cmd_save)


def acting_agent(given: str | None, config) -> str:
    """Who ticks a message off: `common.me` (--as, [cli] agent, $MAILGATE_AGENT), else
    the login name."""
    name = me(given, config)
    if not name:
        try:
            name = getpass.getuser()
        except (OSError, KeyError):     # no login name (a container without passwd)
            name = "unknown"
    return name.strip()


def first_line(text: str) -> str:
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def message_kind(direction: str) -> str:
    return "note" if direction == "internal" else "mail"


def event_kind(kind: str) -> str:
    return "call" if kind in CALL_KINDS else "event"


def log_entries(msgs, events, changes, *, kind: str | None) -> list[dict]:
    """Messages and events as one list in time order, each with the status its ticket
    had then. `changes` are each ticket's status changes (`desk.status_changes`)."""
    out = []
    for m, t in msgs:
        if kind and message_kind(m.direction) != kind:
            continue
        out.append({"at": m.created_at, "kind": message_kind(m.direction), "ticket": t.id,
                    "message": m.id, "event": None, "author": m.from_addr,
                    "direction": m.direction,
                    "status": desk.status_at(changes.get(t.id, []), m.created_at, t.status),
                    "text": first_line(m.text) or m.subject,
                    "done": m.done_at is not None, "done_at": m.done_at,
                    "done_by": m.done_by or None})
    for e, t in events:
        if kind and event_kind(e.kind) != kind:
            continue
        change = f"{e.old} -> {e.new}" if e.old else e.new
        out.append({"at": e.at, "kind": event_kind(e.kind), "ticket": t.id, "message": None,
                    "event": e.id, "author": e.actor, "direction": "internal",
                    "status": e.status,
                    "text": " ".join(x for x in (e.kind + ":", change, first_line(e.detail))
                                     if x),
                    "done": None, "done_at": None, "done_by": None})
    out.sort(key=lambda r: (r["at"], r["message"] or 0, r["event"] or 0))
    return out


def cmd_log(args: argparse.Namespace, ctx: Context) -> int:
    since, until = day_range(args.since, args.until)
    app = ctx.app()
    # events are internal and cannot be done: a filter that excludes them skips the query
    events_wanted = args.done is None and args.direction in (None, "internal") \
        and args.kind in (None, "call", "event")
    with app.db.unit(write=False) as session:
        try:
            project = require_project(session, args.slug)
        except ServiceError as exc:
            raise CliError(str(exc), EX_USAGE) from None
        msgs, events = desk.project_log(
            session=session, project_id=project.id, since=since, until=until,
            direction=args.direction, done=args.done,
            with_messages=args.kind in (None, "mail", "note"), with_events=events_wanted)
        changes = desk.status_changes(session=session, numbers={t.id for _, t in msgs})
    rows = log_entries(msgs, events, changes, kind=args.kind)
    if args.json:
        emit_json(rows)
        return 0
    if not rows:
        say("(nothing in the log)")
    for r in rows:
        # an incoming mail nobody has dealt with yet is what the desk is for: marked
        flag = "*" if r["direction"] == "in" and r["done"] is False else " "
        ref = f"msg {r['message']}" if r["message"] else r["kind"]
        say(f"{flag} {r['at']:%Y-%m-%d %H:%M}  #{r['ticket']}  {ref}  "
            f"{ARROWS.get(r['direction'], '--')} {r['author'] or '-'}  [{r['status']}]  "
            f"{r['text']}")
    return 0


def cmd_done(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    actor = acting_agent(args.actor, ctx.config)
    with app.db.unit() as session:
        changed = mark_done(session, ids=args.ids, done=args.done, actor=actor, now=app.now())
    state = "done" if args.done else "not done"
    same = sorted(set(args.ids) - set(changed))
    if changed:
        say(f"marked {state} by {actor}: {', '.join(map(str, changed))}")
    if same:
        say(f"already {state}: {', '.join(map(str, same))}")
    return 0


def cmd_raw(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit(write=False) as session:
        found = desk.messages_on_tickets(session=session, ids=[args.id])
        if args.id not in found:
            raise CliError(f"no message {args.id} on a ticket")
        raw = desk.raw_of_message(session=session, message=found[args.id])
    if raw is None:
        raise CliError(f"message {args.id} has no stored raw mail")
    # deliberately raw, like `quarantine show --raw`: the bytes as they came
    sys.stdout.flush()
    sys.stdout.buffer.write(raw)
    sys.stdout.buffer.flush()
    return 0


def save_path(output: str | None, filename: str) -> Path:
    """Where `attachment save` writes: -o as given (inside it, if a folder), else the
    stored name in the current folder. The stored name is sanitised already; basename
    keeps it so even if an old row was not."""
    name = os.path.basename(filename.replace("\\", "/")) or "attachment"
    if name in (".", ".."):
        name = "attachment"
    if output is None:
        return Path(name)
    path = Path(output)
    return path / name if path.is_dir() else path


def cmd_save(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit(write=False) as session:
        found = desk.attachment(session=session, attachment_id=args.id)
    if found is None:
        raise CliError(f"no attachment {args.id}")
    a, data = found
    path = save_path(args.output, a.filename)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if args.force else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o644)
    except FileExistsError:
        raise CliError(f"{path} exists; --force overwrites it") from None
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    say(f"saved attachment {a.id} to {path} ({len(data)} bytes, {a.content_type})")
    return 0
