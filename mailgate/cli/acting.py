"""`ticket reply|note|set|new|log|merge`: acting on tickets as an agent, without a mail.

Thin: reads the text (`-` is standard input) and the files, names the acting agent
(`--as`, else `[cli] agent`), and calls `mailgate.handlers.desk_actions` in one unit of
work. The effects are those of the same act by mail; what would have been the
transcript mail is printed. A refusal is one line on stderr, exit 1, nothing changed.
"""

from __future__ import annotations

import argparse
import mimetypes
import sys
from pathlib import Path

from mailgate.cli import EX_USAGE, CliError, Context, _Parser
from mailgate.cli.args import ticket_number
from mailgate.cli.common import me
from mailgate.cli.output import say
from mailgate.handlers import desk_actions
from routing.acting import LOG_KINDS, SetOptions

MAX_FILE_BYTES = 64 * 1024 * 1024      # one --file; the mail's own limit applies when sent


def register_ticket_verbs(ts) -> None:
    """Adds the acting verbs to the `ticket` verb group."""
    p = ts.add_parser("reply", help="answer the ticket's customers as an agent")
    _ticket_and_agent(p)
    p.add_argument("--file", action="append", default=[], metavar="F",
                   help="attach a file (repeatable)")
    p.add_argument("--template", metavar="NAME", help="a canned reply, above the text")
    _text(p)
    p.set_defaults(handler=cmd_reply, note=False)

    p = ts.add_parser("note", help="an internal note, never sent to a customer")
    _ticket_and_agent(p)
    _text(p)
    p.set_defaults(handler=cmd_reply, note=True, file=[], template=None)

    p = ts.add_parser("set", help="change fields as the mail commands do (/status …)")
    _ticket_and_agent(p)
    for name, meta in (("status", "S"), ("priority", "P"), ("assign", "A"), ("owner", "A"),
                       ("group", "G"), ("type", "T"), ("due", "DATE|none")):
        p.add_argument(f"--{name}", metavar=meta)
    p.add_argument("--cc-add", action="append", default=[], metavar="ADDR")
    p.add_argument("--cc-remove", action="append", default=[], metavar="ADDR")
    p.set_defaults(handler=cmd_set)

    p = ts.add_parser("new", help="start a conversation with a customer")
    p.add_argument("--project", required=True, metavar="SLUG")
    p.add_argument("--to", required=True, metavar="ADDR")
    p.add_argument("--subject", required=True, metavar="S")
    _agent(p)
    p.add_argument("--template", metavar="NAME", help="a canned reply, above the text")
    p.add_argument("--file", action="append", default=[], metavar="F",
                   help="attach a file (repeatable)")
    _text(p)
    p.set_defaults(handler=cmd_new)

    p = ts.add_parser("log", help="log a call, text message or meeting (never mailed)")
    _ticket_and_agent(p)
    p.add_argument("--kind", required=True, choices=LOG_KINDS)
    p.add_argument("--from-customer", action="store_true",
                   help="the customer called or wrote (default: we did)")
    p.add_argument("text", metavar="TEXT", help="what was said; - reads standard input")
    p.set_defaults(handler=cmd_log)

    p = ts.add_parser("merge", help="move a ticket's mail, people and log into another")
    p.add_argument("number", type=ticket_number, metavar="N")
    p.add_argument("--into", required=True, type=ticket_number, metavar="M")
    _agent(p)
    p.set_defaults(handler=cmd_merge)


def _agent(p) -> None:
    p.add_argument("--as", dest="actor", metavar="EMAIL",
                   help="the acting agent (default: [cli] agent in the config)")


def _ticket_and_agent(p) -> None:
    p.add_argument("number", type=ticket_number, metavar="N")
    _agent(p)


def _text(p) -> None:
    p.add_argument("text", nargs="?", default="", metavar="TEXT",
                   help="the text; - reads standard input")
    p.__class__ = _TextLast


class _TextLast(_Parser):
    """`ticket reply 12 --as anna "text"`: argparse (before Python 3.12.7) gives an
    optional positional its empty match at the first positional and then calls the text
    after the options unrecognized; one such word is the text."""

    def parse_known_args(self, args=None, namespace=None):
        parsed, extras = argparse.ArgumentParser.parse_known_args(self, args, namespace)
        if len(extras) == 1 and not parsed.text and not extras[0].startswith("-"):
            parsed.text, extras = extras[0], []
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def acting_agent(args, ctx: Context) -> str:
    email = me(args.actor, ctx.config)
    if not email:
        raise CliError("--as EMAIL is required (or set [cli] agent in the config, or "
                       "$MAILGATE_AGENT)", EX_USAGE)
    return email


def read_text(text: str) -> str:
    if text != "-":
        return text
    data = sys.stdin.buffer.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise CliError("standard input is not UTF-8 text") from None


def read_files(paths: list[str]) -> list[desk_actions.File]:
    files = []
    for name in paths:
        path = Path(name)
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                raise CliError(f"{name}: larger than {MAX_FILE_BYTES // 2**20} MB")
            data = path.read_bytes()
        except OSError as exc:
            raise CliError(f"cannot read {name}: {exc.strerror}") from None
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        files.append(desk_actions.File(path.name, ctype, data))
    return files


def _report(done: desk_actions.Done, what: str) -> None:
    for c in done.changes:
        say(f"{c.field}: {c.old or '-'} -> {c.new or '-'}" + (f"  ({c.rule})" if c.rule else ""))
    tail = f"; {done.queued} mail(s) queued" if done.queued else ""
    if done.dropped:
        tail += f", {done.dropped} stopped (see: mailgate ticket show {done.ticket})"
    say(f"{what} on ticket #{done.ticket}{tail}")


def cmd_reply(args: argparse.Namespace, ctx: Context) -> int:
    agent = acting_agent(args, ctx)
    text, files = read_text(args.text), read_files(args.file)
    app = ctx.app()
    with app.db.unit() as session:
        done = desk_actions.reply(session, app, number=args.number, agent=agent, text=text,
                                  files=files, template=args.template, note=args.note,
                                  now=app.now())
    kind = "note" if args.note else "reply"
    _report(done, f"{kind} stored as message {done.message}")
    return 0


def cmd_set(args: argparse.Namespace, ctx: Context) -> int:
    agent = acting_agent(args, ctx)
    options = SetOptions(status=args.status, priority=args.priority, assign=args.assign,
                         owner=args.owner, group=args.group, type=args.type, due=args.due,
                         cc_add=tuple(args.cc_add), cc_remove=tuple(args.cc_remove))
    app = ctx.app()
    with app.db.unit() as session:
        done = desk_actions.set_fields(session, app, number=args.number, agent=agent,
                                       options=options, now=app.now())
    _report(done, "changed")
    return 0


def cmd_new(args: argparse.Namespace, ctx: Context) -> int:
    agent = acting_agent(args, ctx)
    text, files = read_text(args.text), read_files(args.file)
    app = ctx.app()
    with app.db.unit() as session:
        done = desk_actions.new_ticket(session, app, project=args.project, to=args.to,
                                       subject=args.subject, agent=agent, text=text,
                                       files=files, template=args.template, now=app.now())
    _report(done, f"conversation started as message {done.message}")
    return 0


def cmd_log(args: argparse.Namespace, ctx: Context) -> int:
    agent = acting_agent(args, ctx)
    text = read_text(args.text)
    app = ctx.app()
    with app.db.unit() as session:
        done = desk_actions.log_entry(session, app, number=args.number, agent=agent,
                                      kind=args.kind, text=text,
                                      from_customer=args.from_customer, now=app.now())
    _report(done, f"{args.kind} logged")
    return 0


def cmd_merge(args: argparse.Namespace, ctx: Context) -> int:
    agent = acting_agent(args, ctx)
    app = ctx.app()
    with app.db.unit() as session:
        moved = desk_actions.merge(session, app, number=args.number, into=args.into,
                                   agent=agent, now=app.now())
    say(f"ticket #{args.number} merged into #{args.into}: "
        + ", ".join(f"{n} {what}" for what, n in moved.items()))
    return 0
