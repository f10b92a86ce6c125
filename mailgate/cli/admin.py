"""`project`, `contact` and `agent` verbs."""

from __future__ import annotations

import argparse

from mailgate.cli import Context
from mailgate.cli.output import emit_json, listing
from mailgate.handlers import ServiceError
from mailgate.handlers.directory import (
    add_agent,
    add_contact,
    add_project,
    choose_notifications,
    notified_about,
    require_project,
    set_workflow,
)
from routing.actors import NOTIFY_EVENTS
from routing.addresses import plus_address
from store import people


def register(sub) -> None:
    p = sub.add_parser("project", help="manage projects")
    ps = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    a = ps.add_parser("add", help="create a project")
    a.add_argument("slug")
    a.add_argument("--name", required=True)
    a.add_argument("--key", help="plus-address key (default: the slug)")
    a.add_argument("--customer", action="append", default=[], metavar="EMAIL",
                   help="register a customer address (repeatable)")
    a.add_argument("--workflow", default="support",
                   help="workflow of the project's tickets (see `mailgate workflow list`)")
    a.add_argument("--json", action="store_true")
    a.set_defaults(handler=cmd_project_add)
    w = ps.add_parser("workflow", help="change the workflow of a project")
    w.add_argument("slug")
    w.add_argument("workflow")
    w.set_defaults(handler=cmd_project_workflow)
    lst = ps.add_parser("list", help="list projects")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=cmd_project_list)

    p = sub.add_parser("contact", help="manage customer contacts")
    cs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    a = cs.add_parser("add", help="register a customer address to a project")
    a.add_argument("email")
    a.add_argument("--project", action="append", required=True, metavar="SLUG")
    a.add_argument("--name", default="")
    a.add_argument("--json", action="store_true")
    a.set_defaults(handler=cmd_contact_add)
    lst = cs.add_parser("list", help="list contacts")
    lst.add_argument("--project", metavar="SLUG")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=cmd_contact_list)

    p = sub.add_parser("agent", help="manage agents")
    ags = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    a = ags.add_parser("add", help="add an agent (or an admin)")
    a.add_argument("email")
    a.add_argument("--name", required=True)
    a.add_argument("--admin", action="store_true", help="may work on every project")
    a.add_argument("--project", action="append", default=[], metavar="SLUG",
                   help="limit the agent to these projects (default: all projects)")
    a.add_argument("--json", action="store_true")
    a.set_defaults(handler=cmd_agent_add)
    lst = ags.add_parser("list", help="list agents")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=cmd_agent_list)
    n = ags.add_parser("notify", help="choose which events mail an agent",
                       description="events: " + ", ".join(NOTIFY_EVENTS))
    n.add_argument("email")
    n.add_argument("--on", nargs="+", default=[], metavar="EVENT", choices=NOTIFY_EVENTS)
    n.add_argument("--off", nargs="+", default=[], metavar="EVENT", choices=NOTIFY_EVENTS)
    n.add_argument("--json", action="store_true")
    n.set_defaults(handler=cmd_agent_notify)


def project_json(app, p) -> dict:
    return {"slug": p.slug, "name": p.name, "key": p.key,
            "address": plus_address(app.config.mail.support_address, p.key),
            "workflow": p.workflow}


def cmd_project_add(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit() as session:
        _check_workflow(app, args.workflow)
        p = add_project(session, slug=args.slug, name=args.name, key=args.key,
                        customers=args.customer, workflow=args.workflow)
        data = project_json(app, p)
    if args.json:
        emit_json(data)
    else:
        print(f"project {data['slug']} created; customers write to {data['address']}")
    return 0


def _check_workflow(app, name: str) -> None:
    if name not in app.workflows:
        raise ServiceError(f"unknown workflow {name!r} (known: {', '.join(app.workflows)})")


def cmd_project_workflow(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    _check_workflow(app, args.workflow)
    with app.db.unit() as session:
        old = set_workflow(session, slug=args.slug, workflow=args.workflow)
    print(f"project {args.slug}: workflow {old} -> {args.workflow}")
    return 0


def cmd_project_list(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit(write=False) as session:
        rows = [project_json(app, p) for p in people.projects(session=session)]
    listing(args, rows, [("slug", "SLUG", None), ("name", "NAME", 40), ("address", "ADDRESS", None),
                         ("workflow", "WORKFLOW", None)])
    return 0


def cmd_contact_add(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit() as session:
        contact, linked = add_contact(session, email=args.email, project_slugs=args.project,
                                      name=args.name)
        data = {"email": contact.email, "name": contact.name,
                "projects": list(people.contact_project_slugs(session=session,
                                                               email=contact.email))}
    if args.json:
        emit_json(data)
    elif linked:
        print(f"{data['email']} is now a contact of {', '.join(linked)}")
    else:
        print(f"{data['email']} was already a contact of {', '.join(args.project)}")
    return 0


def cmd_contact_list(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit(write=False) as session:
        if args.project:
            contacts = people.contacts_of_project(session=session,
                                                   project=require_project(session,
                                                                           args.project))
        else:
            contacts = people.all_contacts(session=session)
        rows = [{"email": c.email, "name": c.name,
                 "projects": list(people.contact_project_slugs(session=session,
                                                                email=c.email))}
                for c in contacts]
    listing(args, rows, [("email", "EMAIL", None), ("name", "NAME", 30),
                         ("projects", "PROJECTS", 50)])
    return 0


def agent_json(session, a) -> dict:
    return {"email": a.email, "name": a.name, "role": a.role, "active": a.active,
            "notify": notified_about(a),
            "projects": "all" if a.all_projects or a.role == "admin"
            else people.agent_project_slugs(session=session, agent=a)}


def cmd_agent_add(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit() as session:
        agent = add_agent(session, email=args.email, name=args.name, admin=args.admin,
                          project_slugs=args.project)
        data = agent_json(session, agent)
    if args.json:
        emit_json(data)
    else:
        print(f"{data['role']} {data['email']} added")
    return 0


def cmd_agent_list(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit(write=False) as session:
        rows = [agent_json(session, a) for a in people.agents(session=session)]
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
        data = agent_json(session, agent)
    if args.json:
        emit_json(data)
    else:
        print(f"{data['email']} is mailed about: {', '.join(data['notify']) or 'nothing'}")
    return 0
