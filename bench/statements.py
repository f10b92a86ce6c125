#!/usr/bin/env python3
"""Processing cost per mail in one process: CPU milliseconds and SQL statements.

The pipeline benchmark's mix (registered site, 300 seeded tickets, corpus mails and the
replies beside them) is stored in the inbox and run through the ingest handler with the
inline parser, batch after batch, in this process. No SMTP, no worker processes, no
sender: the figures are steady on a busy machine, where the throughput of
`bench/pipeline.py` is not, so compare changes with this (run it twice, alternating).

Prints CPU and wall milliseconds per mail, statements per mail (an executemany is one),
the statements by kind and the time spent in each, and the outcome of every mail (the
same before and after a change that only makes it faster).

Run: .venv/bin/python bench/statements.py [-n 1500] [--database-url URL] [--history N]
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import hashlib
import json
import random
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import event, text  # noqa: E402

from bench import mix, pipeline  # noqa: E402
from bench.common import Store, corpus  # noqa: E402
from bench.history import load_history  # noqa: E402

_FROM = re.compile(r"FROM\s+(\w+)")
# what differs from run to run: Message-IDs (ours and make_msgid's), VERP addresses, times
_RANDOM = re.compile(r"mg\d+\.[0-9a-f]{20}@[\w.-]+|\d{6,}\.\d+\.\d+@[\w.-]+"
                     r"|support\+b\.[a-z2-7]{16}@[\w.-]+|\d\d:\d\d(:\d\d(\.\d+)?)?")
_OUTCOME = {   # per table: the columns that say what happened, in a stable order
    "inbound": "id, state, reason, ticket_id",
    "message": "inbound_id, ticket_id, direction, author, message_id, from_addr, subject, "
               "text, full_text, decision, to_addrs, cc_addrs, defects",
    "outbox": "inbound_id, ticket_id, kind, rcpt, automatic, state, template, reason, "
              "audience, last_error, payload",
    "event": "inbound_id, ticket_id, actor, kind, old, new, status, detail",
    "ticket": "id, project_id, subject, status, substatus, priority, assignee_id, owner_id, "
              "group_name, ticket_type, due_date, urgent, offer_state, closed_at IS NULL",
    "ticket_contact": "ticket_id, contact_id, role",
    "thread_ref": "msgid, ticket_id",
}


def kind_of(statement: str) -> str:
    words = statement.split()
    verb = words[0].upper()
    if verb == "SELECT":
        m = _FROM.search(statement)
        return f"SELECT {m.group(1) if m else ' '.join(words[1:3])}"[:60]
    return " ".join(words[:3])[:60]


class Counter:
    def __init__(self, engine) -> None:
        self.count: dict[str, int] = {}
        self.spent: dict[str, float] = {}
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, _cursor, statement, _params, _context, _many) -> None:
        conn.info["bench_t0"] = time.perf_counter()

    def _after(self, conn, _cursor, statement, _params, _context, _many) -> None:
        k = kind_of(statement)
        self.count[k] = self.count.get(k, 0) + 1
        self.spent[k] = self.spent.get(k, 0.0) + time.perf_counter() - conn.info.pop(
            "bench_t0", time.perf_counter())


def outcomes(session, path: str) -> str:
    """Every mail's outcome (its inbound row, message, outbox mails, events) and the
    tickets, as sorted lines in `path`, with what is random in each run (Message-IDs,
    VERP addresses) blanked; returns the digest to compare before and after a change."""
    lines = []
    for table, columns in _OUTCOME.items():
        for row in session.execute(text(f"SELECT {columns} FROM {table}")):
            line = json.dumps(list(row), default=str, sort_keys=True, ensure_ascii=False)
            lines.append(f"{table} {_RANDOM.sub('<r>', line)}")
    dump = "\n".join(sorted(lines)) + "\n"
    Path(path).write_text(dump)
    return hashlib.sha256(dump.encode()).hexdigest()[:16]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=1500, help="corpus mails (replies in proportion)")
    ap.add_argument("--database-url", default="", help="PostgreSQL base URL (default SQLite)")
    ap.add_argument("--history", type=int, default=0, help="mails of history loaded first")
    ap.add_argument("--outcomes", default="", help="write every mail's outcome to this file")
    ap.add_argument("--profile", default="", help="write a cProfile of the timed run here")
    args = ap.parse_args()

    from mailgate.bootstrap import build_app
    from mailgate.config import load_config
    from mailgate.edges.parse_pool import InlineParser
    from mailgate.edges.spool import Arrival, store_arrivals
    from mailgate.handlers.ingest import Ingest

    work = Path(tempfile.mkdtemp(prefix="mailgate-bench-"))
    store = Store(work, args.database_url)
    config = work / "mailgate.toml"
    config.write_text(pipeline.config_text(store.url, 1, 1, 0))
    app = build_app(load_config(config))
    try:
        if args.history:
            load_history(app, args.history)
        folder = corpus(pipeline.TOTAL, 1)
        seeds = mix.register(app, folder)
        ingest = Ingest(app, InlineParser(app.limits))

        def drain() -> int:
            done = 0
            while ids := ingest.claim():
                done += len(ingest.run(ids))
            return done

        store_arrivals(app.db, [Arrival(raw, s or None, (r,))
                                for s, r, raw in mix.seed_mails(seeds)])
        drain()
        with app.db.unit(write=False) as s:
            tickets = [tuple(r) for r in s.execute(text(
                "SELECT t.id, c.email FROM ticket t JOIN contact c ON c.id = t.requester_id"))]
            verps = [r[0] for r in s.execute(text(
                "SELECT mail_from FROM outbox WHERE kind = 'ack' ORDER BY id"))]
        side = mix.side_mails(tickets, verps, dt.datetime.now(dt.UTC).date())
        mails = [Arrival(f.read_bytes(), "x@y.example", (mix.SUPPORT,))
                 for f in sorted(folder.iterdir())[:args.n]]
        mails += [Arrival(raw, s, (r,)) for s, r, raw in side[:args.n * 600 // 4400]]
        random.Random(3).shuffle(mails)
        for i in range(0, len(mails), 64):
            store_arrivals(app.db, mails[i:i + 64])

        counter = Counter(app.db.engine)
        profile = cProfile.Profile(time.process_time) if args.profile else None
        cpu, wall = time.process_time(), time.perf_counter()
        if profile is not None:
            profile.runcall(drain)
        else:
            drain()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if profile is not None:
            profile.dump_stats(args.profile)
        n = len(mails)
        total = sum(counter.count.values())
        print(f"{'postgresql' if args.database_url else 'sqlite'}: {n} mails, "
              f"CPU {1000 * cpu / n:.2f} ms/mail, wall {1000 * wall / n:.2f} ms/mail, "
              f"{total / n:.2f} statements/mail")
        for k, c in sorted(counter.count.items(), key=lambda kv: -counter.spent[kv[0]])[:20]:
            print(f"  {c / n:6.2f}/mail {1000 * counter.spent[k] / n:7.3f} ms/mail  {k}")
        with app.db.unit(write=False) as s:
            print("  inbound:", dict(s.execute(text(
                "SELECT state, count(*) FROM inbound GROUP BY state ORDER BY 1")).all()))
            print("  outbox: ", dict(s.execute(text(
                "SELECT state, count(*) FROM outbox GROUP BY state ORDER BY 1")).all()))
            if args.outcomes:
                print("  outcomes:", outcomes(s, args.outcomes), "in", args.outcomes)
    finally:
        app.db.dispose()
        store.drop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
