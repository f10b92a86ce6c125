#!/usr/bin/env python3
"""Search and the project log at scale: bulk-load messages, then time searches.

Loads N messages (default 1,000,000 on 100,000 tickets in three projects: German,
English, Danish) whose text is sentences taken from the shared corpus generator's
mails, through the same schema and triggers mailgate uses (so the load time includes
keeping the search index). Then prints p50/p95/p99 of 200 searches (single words,
phrases, prefixes, with and without a date range and a project filter) and of the
`log SLUG --undone` query, the load time and the database size. Target: p95 <= 100 ms.

Run: .venv/bin/python bench/search.py [--database-url URL] [-n MESSAGES]
(SQLite in a temporary folder without --database-url; on PostgreSQL a schema of its
own is created and dropped.)
"""

from __future__ import annotations

import argparse
import datetime as dt
import email
import email.policy
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text

from bench.common import corpus
from store import desk
from store.db import Database
from store.migrations import migrate
from store.models import Message, Project, Ticket
from store.search import SearchQuery, parse_query, search

PROJECTS = (("web", "de"), ("shop", "en"), ("app", "da"))
START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
FALLBACK = ["Das Zertifikat ist abgelaufen und die Seite zeigt eine Warnung.",
            "The invoice for March is missing the second line item.",
            "Hjemmesiden virker ikke efter opdateringen i går.",
            "Bitte schicken Sie uns die Rechnung noch einmal zu.",
            "Our newsletter signup form returns an error since Monday."]


def sentences(n_mails: int = 400) -> list[str]:
    """Sentences of the generated corpus's text parts (German, English, Danish)."""
    try:
        folder = corpus(n_mails, seed=7)
    except Exception as exc:     # no generator here: still a benchmark, say so
        print(f"# corpus generator unavailable ({exc}); using built-in sentences")
        return FALLBACK
    found: list[str] = []
    for f in sorted(folder.iterdir()):
        msg = email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
        part = msg.get_body(("plain",))
        if part is None:
            continue
        try:
            body = part.get_content()
        except Exception:
            continue
        found += [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", body)
                  if 20 <= len(s.strip()) <= 300 and not s.startswith(">")]
    return found or FALLBACK


def load(db: Database, n: int, tickets: int, pool: list[str], rng: random.Random) -> float:
    started = time.perf_counter()
    with db.unit() as s:
        for slug, lang in PROJECTS:
            s.add(Project(slug=slug, name=slug, key=slug, language=lang))
    span = 3 * 365 * 86400
    with db.unit() as s:
        s.connection().execute(Ticket.__table__.insert(), [
            {"project_id": 1 + i % 3, "subject": rng.choice(pool)[:120], "status": "open",
             "created_at": START, "updated_at": START} for i in range(tickets)])
    for start in range(0, n, 10_000):
        conn_rows = []
        for _ in range(start, min(n, start + 10_000)):
            body = " ".join(rng.choices(pool, k=rng.randint(2, 8)))
            conn_rows.append({
                "ticket_id": 1 + rng.randrange(tickets), "direction": rng.choice("iio"),
                "from_addr": f"kunde{rng.randrange(5000)}@example.com",
                "subject": rng.choice(pool)[:120], "text": body,
                "full_text": body + "\n> " + rng.choice(pool),
                "created_at": START + dt.timedelta(seconds=rng.randrange(span)),
                "done_at": None if rng.random() < 0.1 else START})
        for r in conn_rows:
            r["direction"] = {"i": "in", "o": "out"}[r["direction"]]
        with db.unit() as s:
            s.connection().execute(Message.__table__.insert(), conn_rows)
        print(f"\r  loaded {min(n, start + 10_000):,} messages", end="", file=sys.stderr)
    print(file=sys.stderr)
    return time.perf_counter() - started


def queries(pool: list[str], rng: random.Random, count: int = 200) -> list[SearchQuery]:
    words = sorted({w for s in pool for w in re.findall(r"\w{5,}", s.lower())})
    out = []
    for i in range(count):
        kind = i % 3
        if kind == 0:
            q = rng.choice(words)
        elif kind == 1:
            sentence = re.findall(r"\w+", rng.choice(pool))
            at = rng.randrange(max(1, len(sentence) - 1))
            q = '"' + " ".join(sentence[at:at + 2]) + '"'
        else:
            q = rng.choice(words)[:4] + "*"
        since = START + dt.timedelta(days=rng.randrange(900)) if i % 2 else None
        out.append(SearchQuery(terms=parse_query(q), since=since,
                               until=since + dt.timedelta(days=90) if since else None,
                               project=rng.choice(PROJECTS)[0] if i % 4 < 2 else None))
    return out


def timed(fn, items) -> list[float]:
    out = []
    for item in items:
        started = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - started) * 1000)
    return out


def report(label: str, ms: list[float]) -> None:
    q = statistics.quantiles(ms, n=100)
    print(f"{label:<22} p50 {q[49]:7.1f} ms  p95 {q[94]:7.1f} ms  p99 {q[98]:7.1f} ms  "
          f"(n={len(ms)})")


def size(db: Database, path: Path | None) -> str:
    if path is not None:
        total = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
        return f"{total / 1e6:,.0f} MB"
    with db.engine.connect() as conn:
        return conn.execute(text("SELECT pg_size_pretty(sum(pg_total_relation_size("
                                 "c.oid))) FROM pg_class c JOIN pg_namespace n ON "
                                 "n.oid = c.relnamespace WHERE n.nspname = current_schema() "
                                 "AND c.relkind = 'r'")).scalar_one()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--database-url", default="")
    ap.add_argument("-n", "--messages", type=int, default=1_000_000)
    ap.add_argument("--tickets", type=int, default=0, help="default: messages / 10")
    args = ap.parse_args()
    rng = random.Random(12)
    pool = sentences()
    schema = None
    if args.database_url:
        import psycopg
        from sqlalchemy.engine import make_url

        base = make_url(args.database_url)
        schema = f"bench_search_{uuid.uuid4().hex[:8]}"
        conninfo = f"host={base.host} port={base.port or 5432} user={base.username} " \
                   f"dbname={base.database}"
        with psycopg.connect(conninfo, autocommit=True) as c:
            c.execute(f'CREATE SCHEMA "{schema}"')
        url, path = base.update_query_dict({"options": f"-csearch_path={schema}"}) \
            .render_as_string(hide_password=False), None
    else:
        path = Path(tempfile.mkdtemp(prefix="mailgate-bench-search-")) / "search.db"
        url = f"sqlite:///{path}"
    db = Database(url)
    try:
        migrate(db)
        seconds = load(db, args.messages, args.tickets or max(1, args.messages // 10),
                       pool, rng)
        print(f"{db.dialect}: {args.messages:,} messages loaded and indexed in "
              f"{seconds:,.1f} s; database {size(db, path)}")
        if schema:
            with db.engine.connect() as conn:
                conn.execute(text("ANALYZE"))
                conn.commit()

        def one(q: SearchQuery) -> None:
            with db.unit(write=False) as s:
                search(s, q)

        def log(project_id: int) -> None:
            with db.unit(write=False) as s:
                msgs, _ = desk.project_log(session=s, project_id=project_id, done=False,
                                           with_events=False, limit=200)
                desk.status_changes(session=s, numbers={t.id for _, t in msgs})

        report("search", timed(one, queries(pool, rng)))
        report("log SLUG --undone", timed(log, [1 + i % 3 for i in range(60)]))
    finally:
        db.dispose()
        if path is not None:
            shutil.rmtree(path.parent, ignore_errors=True)
        if schema:
            with psycopg.connect(conninfo, autocommit=True) as c:
                c.execute(f'DROP SCHEMA "{schema}" CASCADE')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
