"""`search`: find mail, notes and log entries by words, "phrases" and prefixes.

The query language and both database engines live in `store.search`; this verb turns
arguments into a `SearchQuery` (refusing an unknown project or status as a usage error,
so a typo does not look like "nothing found") and prints the hits.
"""

from __future__ import annotations

import argparse

from mailgate.cli import EX_USAGE, CliError, Context
from mailgate.cli.args import add_done_flags, day, day_range, row_id, ticket_number
from mailgate.cli.common import filters
from mailgate.cli.conversation import ARROWS
from mailgate.cli.output import emit_json, say
from store.search import SearchQuery, parse_query, search


def register(sub) -> None:
    p = sub.add_parser("search", help="find mail, notes and log entries by their words",
                       description='Words must all occur; "two words" is a phrase, zert* '
                                   "a prefix. Ranked by relevance, then newest first.")
    p.add_argument("query", metavar="QUERY")
    p.add_argument("--project", metavar="SLUG")
    p.add_argument("--ticket", type=ticket_number, metavar="N")
    p.add_argument("--since", type=day, metavar="DATE", help="on or after this day (UTC)")
    p.add_argument("--until", type=day, metavar="DATE", help="on or before this day (UTC)")
    p.add_argument("--status", metavar="S", help="tickets now in this status")
    p.add_argument("--from", dest="sender", metavar="ADDR", help="written by this address")
    p.add_argument("--direction", choices=("in", "out", "internal"))
    add_done_flags(p)
    p.add_argument("--limit", type=row_id, default=20, metavar="N")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_search)


def cmd_search(args: argparse.Namespace, ctx: Context) -> int:
    terms = parse_query(args.query)
    if not terms:
        raise CliError("nothing to search for: the query has no words", EX_USAGE)
    since, until = day_range(args.since, args.until)
    app = ctx.app()
    with app.db.unit(write=False) as session:
        project, statuses = filters(session, app, args)
        hits = search(session, SearchQuery(
            terms=terms, project=project, ticket=args.ticket, since=since, until=until,
            statuses=statuses, sender=args.sender, direction=args.direction,
            done=args.done, limit=args.limit))
    if args.json:
        emit_json([{"ticket": h.ticket, "message": h.message, "date": h.date,
                    "from": h.sender, "direction": h.direction, "subject": h.subject,
                    "snippet": h.snippet, "score": h.score, "kind": h.kind,
                    "event": h.event} for h in hits])
        return 0
    if not hits:
        say("(nothing found)")
    for h in hits:
        where = f"msg {h.message}" if h.message is not None else f"log {h.kind}"
        say(f"#{h.ticket}  {where}  {h.date:%Y-%m-%d %H:%M}  {ARROWS.get(h.direction, '--')} "
            f"{h.sender or '-'}  {h.subject}")
        say(f"    {h.snippet}")
    return 0
