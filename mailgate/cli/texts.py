"""`template` and `workflow` verbs: what mailgate would write, and the statuses it knows."""

from __future__ import annotations

import argparse

from mailgate.cli import Context
from mailgate.cli.args import ticket_number
from mailgate.cli.output import block, emit_json, listing, say, table
from mailgate.handlers import ServiceError
from mailgate.handlers.canned import FOLDER as REPLIES
from mailgate.handlers.notify import preview_vars
from mailgate.mail.templating import LANGUAGES, TemplateProblem
from mailgate.mail.variables import SAMPLE_VARS, language_of


def register(sub) -> None:
    p = sub.add_parser("template", help="list and preview mail templates")
    ts = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    lst = ts.add_parser("list", help="templates and the file each one comes from")
    lst.add_argument("--replies", action="store_true",
                     help="the agents' canned replies (/template NAME) instead")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=cmd_list)
    pv = ts.add_parser("preview", help="render a template or canned reply for a ticket "
                                       "(nothing is sent)")
    pv.add_argument("name")
    pv.add_argument("--ticket", type=ticket_number,
                    help="ticket to render for (default: sample data)")
    pv.add_argument("--language", choices=LANGUAGES,
                    help="language to render in (default: the ticket's project's, or en)")
    pv.add_argument("--json", action="store_true")
    pv.set_defaults(handler=cmd_preview)

    p = sub.add_parser("workflow", help="list workflows and show their statuses")
    ws = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    lst = ws.add_parser("list", help="workflows (presets and config)")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=cmd_workflow_list)
    show = ws.add_parser("show", help="statuses, transitions and rules of a workflow")
    show.add_argument("name")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=cmd_workflow_show)

    p = sub.add_parser("timers", help="workflow timers and reminders")
    ts = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    run = ts.add_parser("run", help="run the timers and reminders that are due now (the "
                                    "daemon does this every 15 minutes)")
    run.add_argument("--json", action="store_true")
    run.set_defaults(handler=cmd_timers_run)


def cmd_list(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    if args.replies:
        return _list_replies(args, app)
    rows = [{"name": n, "file": app.templates.source_of(n)} for n in app.templates.names()]
    listing(args, rows, [("name", "TEMPLATE", None), ("file", "FILE", None)])
    return 0


def _list_replies(args: argparse.Namespace, app) -> int:
    """Each canned reply, the languages it is written in, and the file English comes from
    (an override folder's file wins over the shipped one)."""
    languages: dict[str, list[str]] = {}
    for name, language in app.templates.variants(REPLIES):
        languages.setdefault(name, []).append(language)
    rows = [{"name": n, "languages": ", ".join(langs),
             "file": app.templates.source_of(f"{REPLIES}/{n}", langs[0])}
            for n, langs in ((n, sorted(ls, key=LANGUAGES.index))
                             for n, ls in sorted(languages.items()))]
    listing(args, rows, [("name", "REPLY", None), ("languages", "LANGUAGES", None),
                         ("file", "FILE", None)])
    return 0


def cmd_preview(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    template = args.name
    if args.name not in app.templates.names():
        if args.name in app.templates.names(REPLIES):    # a canned reply (/template NAME)
            template = f"{REPLIES}/{args.name}"
        else:
            raise ServiceError(f"no template {args.name!r} (see `mailgate template list` "
                               "and `mailgate template list --replies`)")
    if args.ticket is None:
        variables = SAMPLE_VARS
    else:
        with app.db.unit(write=False) as session:
            variables = preview_vars(session, app, args.ticket, now=app.now())
    try:
        rendered = app.templates.render(template, variables,
                                        args.language or language_of(variables))
    except TemplateProblem as exc:
        raise ServiceError(str(exc)) from None
    if args.json:
        emit_json({"name": args.name, "subject": rendered.subject, "body": rendered.body})
    else:
        # the subject and body quote the ticket's mail: shown safe like any mail text
        say(f"Subject: {rendered.subject}")
        say()
        block(rendered.body)
    return 0


def workflow_json(wf) -> dict:
    return {
        "name": wf.name, "label": wf.label, "initial": wf.initial, "close": wf.close,
        "reopen": wf.reopen, "customer_close": wf.customer_close,
        "customer_close_from": list(wf.customer_close_from),
        "customer_may_reopen": wf.customer_may_reopen, "urgent_on_reopen": wf.urgent_on_reopen,
        "types": list(wf.types), "substatuses": list(wf.substatuses),
        "substatus_rows": [_status_json(s) for s in wf.substatus_info.values()],
        "on_assign": wf.on_assign, "after_close": wf.after_close or None,
        "reopen_within_days": wf.reopen_within_days,
        "notify_customer": wf.notify_customer,
        "customer_approve": {k: ", ".join(v) for k, v in wf.customer_approve.items()},
        "timers": [{"when": t.when, "days": t.days, "to": t.to, "remind": t.remind}
                   for t in wf.timers],
        "statuses": [{"name": s.name, "label": s.label, "category": s.category,
                      "actor": s.actor, "actors": list(s.actors), "todo": s.todo,
                      "customer_visible": s.customer_visible,
                      "on_customer_reply": s.on_customer_reply, "notify": list(s.notify),
                      "next": None if s.next is None else list(s.next)}
                     for s in wf.statuses.values()],
    }


def cmd_workflow_list(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    rows = [{"name": wf.name, "label": wf.label, "statuses": ", ".join(wf.statuses)}
            for wf in app.workflows.values()]
    listing(args, rows, [("name", "WORKFLOW", None), ("label", "LABEL", 34),
                         ("statuses", "STATUSES", 80)])
    return 0


def cmd_workflow_show(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    wf = app.workflows.get(args.name)
    if wf is None:
        raise ServiceError(f"unknown workflow {args.name!r} (known: {', '.join(app.workflows)})")
    data = workflow_json(wf)
    if args.json:
        emit_json(data)
        return 0
    say(f"{wf.name}: {wf.label}; new tickets start as {wf.initial}")
    say("customers are told of " + ("every change (status, priority, handler, due date)"
                                    if wf.notify_customer == "every-change"
                                    else "customer-visible statuses"))
    rows = [dict(s, next="any" if s["next"] is None else ", ".join(s["next"]),
                 notify=", ".join(s["notify"]), actor=", ".join(s["actors"]) or "-")
            for s in data["statuses"]]
    table(rows, [("name", "STATUS", None), ("label", "LABEL", 30), ("category", "CATEGORY", None),
                 ("actor", "WHO ACTS", 34), ("next", "MAY MOVE TO", 40),
                 ("on_customer_reply", "CUSTOMER REPLY ->", 30), ("notify", "NOTIFY", 20)])
    _todo("what is to be done", data["statuses"])
    if wf.substatuses:
        _todo("sub-statuses", data["substatus_rows"])
    if wf.on_assign:
        say(f"an assigned ticket in {wf.initial} moves to {wf.on_assign}")
    for when, to in data["customer_approve"].items():
        say(f"the customer's approval in {when}: -> {to.strip(', ') or 'no change'}")
    for t in wf.timers:
        what = f"-> {t.to}" if t.to else f"remind the {t.remind}"
        say(f"after {t.days} quiet days in {t.when}: {what}")
    return 0


def _status_json(s) -> dict:
    return {"name": s.name, "label": s.label, "actors": list(s.actors), "todo": s.todo,
            "customer_visible": s.customer_visible}


def _todo(title: str, rows: list[dict]) -> None:
    """One line per status: who acts and what they are to do (too long for the table)."""
    say()
    say(f"{title}:")
    for s in rows:
        who = ", ".join(s["actors"]) or "nobody"
        say(f"  {s['name']} ({s['label']}) - {who}: {s['todo'] or '-'}")


def cmd_timers_run(args: argparse.Namespace, ctx: Context) -> int:
    from mailgate.handlers.timers import run_reminders, run_timers

    app = ctx.app()
    now = app.now()
    moved = [{"ticket": n, "status": status} for n, status in run_timers(app, now=now)]
    reminded = [{"ticket": n, "reminder": what} for n, what in run_reminders(app, now=now)]
    if args.json:
        emit_json({"moved": moved, "reminded": reminded})
        return 0
    for row in moved:
        say(f"#{row['ticket']}: moved to {row['status']}")
    for row in reminded:
        say(f"#{row['ticket']}: reminder ({row['reminder']})")
    if not moved and not reminded:
        say("nothing due")
    return 0
