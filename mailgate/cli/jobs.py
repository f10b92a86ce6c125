"""`jobs list`: each timed job of `mailgate serve`, where and when it last ran, when it
runs next, and its last error. Read from the records the daemons keep (reading only).
"""

from __future__ import annotations

import argparse

from mailgate.cli import Context
from mailgate.cli.output import listing
from store import jobs


def register(sub) -> None:
    p = sub.add_parser("jobs", help="the timed jobs of `mailgate serve`")
    js = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    lst = js.add_parser("list", help="each job: last run (where, when, how), next run, "
                                     "last error")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=cmd_jobs_list)


def cmd_jobs_list(args: argparse.Namespace, ctx: Context) -> int:
    app = ctx.app()
    with app.db.unit(write=False) as session:
        rows = [{"name": r.name, "instance": r.instance, "last_started": r.started,
                 "last_finished": r.finished, "next_run": r.next_run,
                 "result": "failed" if r.error else "ok", "error": r.error or None,
                 "detail": r.detail or None}
                for r in jobs.job_runs(session=session)]
    listing(args, rows, [("name", "JOB", None), ("instance", "INSTANCE", 30),
                         ("last_started", "LAST RUN", None), ("next_run", "NEXT RUN", None),
                         ("result", "RESULT", None), ("detail", "DID", 40),
                         ("error", "ERROR", 60)],
            empty="no timed job has run yet (is `mailgate serve` running?)")
    return 0
