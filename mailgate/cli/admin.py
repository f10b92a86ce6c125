"""`project` and `contact` verbs (and, through `mailgate.cli.agents`, `agent`)."""

from __future__ import annotations

import argparse

from mailgate.cli import Context, agents, project_fields, quota, roles
from mailgate.cli.common import project_json
from mailgate.cli.output import answer, listing, say
from mailgate.handlers import ServiceError
from mailgate.handlers.directory import (
    LANGUAGES,
    add_contact,
    add_project,
    remove_contact,
    rename_project,
    require_project,
)
from mailgate.handlers.project_workflow import change_workflow
from store import desk, people


def _status_pair(text: str) -> tuple[str, str]:
    old, sep, new = text.partition("=")
    if not sep or not old.strip() or not new.strip():
        raise argparse.ArgumentTypeError(f"expected OLD=NEW, got {text[:60]!r}")
    return old.strip(), new.strip()


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
    a.add_argument("--language", choices=LANGUAGES,
                   help="language of its customers' mails (default: [mail] language)")
    a.add_argument("--json", action="store_true")
    a.set_defaults(handler=cmd_project_add)
    r = ps.add_parser("rename", help="change a project's display name (slug and addresses "
                                     "stay)")
    r.add_argument("slug")
    r.add_argument("--name", required=True)
    r.set_defaults(handler=cmd_project_rename)
    w = ps.add_parser("workflow", help="change the workflow of a project",
                      description="Refused while tickets are in statuses the new workflow "
                                  "lacks, unless --map says where they go.")
    w.add_argument("slug")
    w.add_argument("workflow")
    w.add_argument("--map", type=_status_pair, action="extend", nargs="+", default=[],
                   metavar="OLD=NEW", help="move tickets in status OLD to NEW (repeatable)")
    w.set_defaults(handler=cmd_project_workflow)
    lst = ps.add_parser("list", help="list projects")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=cmd_project_list)
    quota.register(ps)
    roles.register(ps)
    project_fields.register(ps)

    p = sub.add_parser("contact", help="manage customer contacts")
    cs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    a = cs.add_parser("add", help="register a customer address to a project")
    a.add_argument("email")
    a.add_argument("--project", action="append", required=True, metavar="SLUG")
    a.add_argument("--name", default="")
    a.add_argument("--json", action="store_true")
    a.set_defaults(handler=cmd_contact_add)
    rm = cs.add_parser("remove", help="unregister a customer address (from one project, or "
                                      "from all)")
    rm.add_argument("email")
    rm.add_argument("--project", metavar="SLUG")
    rm.set_defaults(handler=cmd_contact_remove)
    lst = cs.add_parser("list", help="list contacts")
    lst.add_argument("--project", metavar="SLUG")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=cmd_contact_list)

    agents.register(sub)


def cmd_project_add(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit() as session:
        _check_workflow(app, args.workflow)
        p = add_project(session, slug=args.slug, name=args.name, key=args.key,
                        customers=args.customer, workflow=args.workflow,
                        group_keys=app.config.group_keys(),
                        language=args.language or app.config.mail.language)
        data = project_json(app, p)
    answer(args, data, f"project {data['slug']} created; customers write to {data['address']}")
    return 0


def _check_workflow(app, name: str) -> None:
    if name not in app.workflows:
        raise ServiceError(f"unknown workflow {name!r} (known: {', '.join(app.workflows)})")


def cmd_project_rename(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit() as session:
        old = rename_project(session, slug=args.slug, name=args.name)
    say(f"project {args.slug}: name {old!r} -> {args.name.strip()!r}")
    return 0


def cmd_project_workflow(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit() as session:
        old, moved = change_workflow(session, project_slug=args.slug, workflow=args.workflow,
                                     workflows=app.workflows, pairs=args.map, now=app.now())
    say(f"project {args.slug}: workflow {old} -> {args.workflow}")
    for change, n in sorted(moved.items()):
        say(f"  {n} ticket(s) moved {change}")
    return 0


def cmd_project_list(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit(write=False) as session:
        undone = desk.undone_by_project(session=session)
        rows = [project_json(app, p) | {"undone": undone.get(p.slug, 0)}
                for p in people.projects(session=session)]
    listing(args, rows, [("slug", "SLUG", None), ("name", "NAME", 40), ("address", "ADDRESS", None),
                         ("workflow", "WORKFLOW", None), ("undone", "UNDONE", None)])
    return 0


def cmd_contact_add(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit() as session:
        contact, linked = add_contact(session, email=args.email, project_slugs=args.project,
                                      name=args.name)
        (data,) = contacts_json(session, [contact])
    answer(args, data, f"{data['email']} is now a contact of {', '.join(linked)}" if linked
           else f"{data['email']} was already a contact of {', '.join(args.project)}")
    return 0


def contacts_json(session, contacts) -> list[dict]:
    slugs = people.senders_projects(session=session, emails=[c.email for c in contacts])
    return [{"email": c.email, "name": c.name, "projects": list(slugs.get(c.email, ()))}
            for c in contacts]


def cmd_contact_remove(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit() as session:
        left, gone = remove_contact(session, email=args.email, project_slug=args.project)
    where = ", ".join(left) or "no project"
    tail = "; removed" if gone else ("" if args.project else "; kept on the tickets it wrote")
    say(f"{args.email.strip().lower()} is no longer a contact of {where}{tail}")
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
        rows = contacts_json(session, contacts)
    listing(args, rows, [("email", "EMAIL", None), ("name", "NAME", 30),
                         ("projects", "PROJECTS", 50)])
    return 0
