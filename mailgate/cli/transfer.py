"""`export` and `import`: tickets as mbox files plus JSON, and back into a mailgate.

The work is `mailgate.handlers.transfer`; these verbs only name the directory and say
what was done.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mailgate.cli import Context
from mailgate.cli.args import ticket_number
from mailgate.cli.output import answer, emit_json, say
from mailgate.handlers.transfer import export_tickets, import_export


def register(sub) -> None:
    exp = sub.add_parser("export", help="write tickets as mbox files of their mails plus "
                                        "JSON (ticket, messages, log, attachments)")
    which = exp.add_mutually_exclusive_group()
    which.add_argument("--project", metavar="SLUG", help="the tickets of this project")
    which.add_argument("--ticket", type=ticket_number, metavar="N", help="ticket N only")
    exp.add_argument("-o", "--output", required=True, metavar="DIR",
                     help="directory to write (made if missing; must hold no export)")
    exp.add_argument("--json", action="store_true")
    exp.set_defaults(handler=cmd_export)
    imp = sub.add_parser("import", help="read a directory written by `mailgate export`")
    imp.add_argument("directory", metavar="DIR")
    imp.add_argument("--json", action="store_true")
    imp.set_defaults(handler=cmd_import)


def cmd_export(args: argparse.Namespace, ctx: Context) -> int:
    out = Path(args.output)
    done = export_tickets(ctx.app(), out, project=args.project, ticket=args.ticket)
    answer(args, {"directory": str(out), "export_id": done.export_id,
                  "tickets": done.tickets, "mails": done.mails, "files": done.files},
           f"exported {len(done.tickets)} ticket(s), {done.mails} mail(s) and {done.files} "
           f"file(s) to {out}")
    return 0


def cmd_import(args: argparse.Namespace, ctx: Context) -> int:
    src = Path(args.directory)
    done = import_export(ctx.app(), src)
    renumbered = done.renumbered
    if args.json:
        emit_json({"directory": str(src), "tickets": [
            {"exported": old, "number": new} for old, new in done.numbers.items()],
            "renumbered": [{"exported": old, "number": new}
                           for old, new in renumbered.items()],
            "mails": done.mails, "files": done.files})
        return 0
    say(f"imported {len(done.numbers)} ticket(s), {done.mails} mail(s) and {done.files} "
        f"file(s) from {src}")
    for old, new in renumbered.items():
        say(f"  ticket #{old} is now #{new} (#{old} was taken)")
    return 0
