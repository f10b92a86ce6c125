"""`project show` and `project quota`: a project with its contingent (added, used, left)."""

from __future__ import annotations

import argparse

from mailgate.cli import Context
from mailgate.cli.common import project_json
from mailgate.cli.output import answer, emit_json, fields, say, table
from mailgate.cli.roles import print_roles
from mailgate.handlers.directory import require_project
from mailgate.handlers.quota import add_quota, quota_report
from mailgate.handlers.roles import role_report
from routing.quota import show_minutes


def register(ps) -> None:
    """Adds `show` and `quota` to the `project` verbs."""
    s = ps.add_parser("show", help="a project with its support contingent")
    s.add_argument("slug")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=cmd_project_show)
    q = ps.add_parser("quota", help="add hours to a project's support contingent",
                      description="A project without any contingent is unlimited. Once one "
                                  "is added, work statuses need hours left (or an accepted "
                                  "offer on the ticket; bugs are exempt).")
    q.add_argument("slug")
    q.add_argument("--add", required=True, metavar="DURATION",
                   help="10h, 90m, 1.5h, 1:30; negative (--add=-2h) to correct")
    q.add_argument("--note", default="", help='what it is, e.g. "Supportvertrag 2027"')
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=cmd_project_quota)


def cmd_project_show(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit(write=False) as session:
        p = require_project(session, args.slug)
        data = project_json(app, p)
        data["quota"] = quota_report(session, project_id=p.id)
        data["roles"] = role_report(session, app.workflows, p)
    if args.json:
        emit_json(data)
        return 0
    q = data["quota"]
    fields([("project", data["slug"]), ("name", data["name"]), ("address", data["address"]),
            ("workflow", data["workflow"]),
            ("quota", "not in use (unlimited)" if not q or not q["in_use"] else
             f"added {q['added']}, used {q['used']}, left {q['left']}")])
    if data["roles"]:
        print_roles(data["roles"])
    if q and q.get("entries"):
        say()
        say("contingent:")
        table([{**e, "hours": show_minutes(e["minutes"])} for e in q["entries"]],
              [("at", "WHEN", None), ("hours", "HOURS", None), ("note", "NOTE", 50),
               ("actor", "WHO", 30)])
    if q and q.get("bookings"):
        say()
        say("booked:")
        table([{**b, "num": f"#{b['ticket']}", "hours": show_minutes(b["minutes"])}
               for b in q["bookings"]],
              [("at", "WHEN", None), ("num", "TICKET", None), ("hours", "TIME", None),
               ("budget", "AGAINST", None), ("actor", "WHO", 30)])
    return 0


def cmd_project_quota(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit() as session:
        minutes = add_quota(session, slug=args.slug, amount=args.add, note=args.note,
                            actor="admin", now=app.now())
        p = require_project(session, args.slug)
        q = quota_report(session, project_id=p.id)
    answer(args, {"slug": args.slug, "added_minutes": minutes, "quota": q},
           f"project {args.slug}: {show_minutes(minutes)} added; contingent now "
           f"{q['added']}, used {q['used']}, left {q['left']}")
    return 0
