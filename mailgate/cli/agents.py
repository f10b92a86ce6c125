"""`agent` verbs: who works on tickets, and what mails them."""

from __future__ import annotations

import argparse

from mailgate.cli import Context
from mailgate.cli.output import answer, listing, say
from mailgate.handlers import ServiceError
from mailgate.handlers.directory import (
    add_agent,
    choose_notifications,
    notified_about,
    remove_agent,
)
from routing.actors import NOTIFY_EVENTS
from store import people


def register(sub) -> None:
    p = sub.add_parser("agent", help="manage agents")
    ags = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    a = ags.add_parser("add", help="add an agent (or an admin)")
    a.add_argument("email")
    a.add_argument("--name", required=True)
    a.add_argument("--admin", action="store_true", help="may work on every project")
    a.add_argument("--project", action="append", default=[], metavar="SLUG",
                   help="limit the agent to these projects (default: all projects)")
    a.add_argument("--force", action="store_true",
                   help="add it even though the address is a customer contact")
    a.add_argument("--json", action="store_true")
    a.set_defaults(handler=cmd_agent_add)
    rm = ags.add_parser("remove", help="remove an agent; its tickets become unassigned")
    rm.add_argument("email")
    rm.set_defaults(handler=cmd_agent_remove)
    lst = ags.add_parser("list", help="list agents")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=cmd_agent_list)
    n = ags.add_parser("notify", help="choose which events mail an agent",
                       description="events: " + ", ".join(NOTIFY_EVENTS))
    n.add_argument("email")
    # "extend": `--on a --on b` and `--on a b` both mean a and b
    n.add_argument("--on", nargs="+", action="extend", default=[], metavar="EVENT",
                   choices=NOTIFY_EVENTS)
    n.add_argument("--off", nargs="+", action="extend", default=[], metavar="EVENT",
                   choices=NOTIFY_EVENTS)
    n.add_argument("--json", action="store_true")
    n.set_defaults(handler=cmd_agent_notify)


def agents_json(session, agents) -> list[dict]:
    limited = [a.id for a in agents if not (a.all_projects or a.role == "admin")]
    slugs = people.agents_project_slugs(session=session, ids=limited)
    return [{"email": a.email, "name": a.name, "role": a.role, "active": a.active,
             "notify": notified_about(a),
             "projects": slugs.get(a.id, []) if a.id in limited else "all"}
            for a in agents]


def cmd_agent_add(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit() as session:
        agent = add_agent(session, email=args.email, name=args.name, admin=args.admin,
                          project_slugs=args.project, force=args.force)
        (data,) = agents_json(session, [agent])
    answer(args, data, f"{data['role']} {data['email']} added")
    return 0


def cmd_agent_remove(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit() as session:
        unassigned = remove_agent(session, email=args.email, now=app.now())
    tail = (f"; unassigned: {', '.join(f'#{n}' for n in unassigned)}" if unassigned
            else "")
    say(f"agent {args.email.strip().lower()} removed{tail}")
    return 0


def cmd_agent_list(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit(write=False) as session:
        rows = agents_json(session, people.agents(session=session))
    listing(args, rows, [("email", "EMAIL", None), ("name", "NAME", 30), ("role", "ROLE", None),
                         ("projects", "PROJECTS", 50)])
    return 0


def cmd_agent_notify(args: argparse.Namespace, ctx: Context) -> int:
    both = set(args.on) & set(args.off)
    if both:
        raise ServiceError(f"event {sorted(both)[0]} is both --on and --off")
    app = ctx.app()
    with app.db.unit() as session:
        agent = choose_notifications(session, email=args.email, on=args.on, off=args.off)
        (data,) = agents_json(session, [agent])
    answer(args, data, f"{data['email']} is mailed about: {', '.join(data['notify']) or 'nothing'}")
    return 0
