"""`project role`: which agents play a workflow role in a project (whose turn it is)."""

from __future__ import annotations

import argparse

from mailgate.cli import EX_USAGE, CliError, Context
from mailgate.cli.output import answer, listing, say, table
from mailgate.handlers.directory import require_project
from mailgate.handlers.roles import role_report, set_role


def register(ps) -> None:
    """Adds `role` to the `project` verbs."""
    r = ps.add_parser("role", help="map a workflow role to agents, or list the mapping",
                      description="ROLE is a role of the project's workflow, by key or name "
                                  "in any language (digital_coach, 'Digital Coach', "
                                  "Umsetzer). The agents given replace those mapped before; "
                                  "without any, the project's roles are listed. They are "
                                  "told when a ticket enters a status in which their role "
                                  "acts.")
    r.add_argument("slug")
    r.add_argument("role", nargs="?")
    r.add_argument("emails", nargs="*", metavar="EMAIL")
    r.add_argument("--none", action="store_true", help="map the role to nobody")
    r.add_argument("--json", action="store_true")
    r.set_defaults(handler=cmd_project_role)


def cmd_project_role(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    if args.role and not (args.emails or args.none):
        # a role without agents would silently unmap it: that must be said (--none)
        raise CliError(f"mailgate project role: give the agents who play {args.role!r}, "
                       "or --none to map it to nobody (see --help)", EX_USAGE)
    if args.none and (args.emails or not args.role):
        raise CliError("mailgate project role: --none takes a ROLE and no EMAIL", EX_USAGE)
    if args.role:
        with app.db.unit() as session:
            role, agents = set_role(session, app.workflows, slug=args.slug, role=args.role,
                                    emails=args.emails)
        answer(args, {"slug": args.slug, "role": role, "agents": list(agents)},
               f"project {args.slug}: {role} is played by {', '.join(agents) or 'nobody'}")
        return 0
    with app.db.unit(write=False) as session:
        rows = role_report(session, app.workflows, require_project(session, args.slug))
    listing(args, rows_for_people(rows) if not args.json else rows, ROLE_COLUMNS)
    return 0


ROLE_COLUMNS = [("role", "ROLE", None), ("label", "NAME", 30), ("who", "PLAYED BY", 70)]


def rows_for_people(rows: list[dict]) -> list[dict]:
    """"the ticket's owner, else bob@…", "anna@…, ben@…", "nobody"."""
    out = []
    for r in rows:
        agents = ", ".join(r["agents"])
        who = ", ".join(p for p in (r.get("played_by", ""), agents) if p) or "nobody"
        if r.get("played_by") and agents:
            who = f"{r['played_by']}, else {agents}"
        out.append({**r, "who": who})
    return out


def print_roles(rows: list[dict]) -> None:
    """The roles block of `project show`."""
    say()
    say("roles:")
    table(rows_for_people(rows), ROLE_COLUMNS)
