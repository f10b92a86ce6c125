#!/usr/bin/env python3
"""Pipeline benchmark: the whole of `mailgate serve` under a realistic mix, beside the
shared null SMTP sink measured in the same run.

For each database (SQLite; PostgreSQL with --database-url) it prints:
- the null sink's accept rate (the ceiling of any Python SMTP server on this machine);
- mailgate's accept rate (250 after commit) and its ratio to the sink, p50/p99 latency;
- the end-to-end rate: from the first mail sent until every mail is final (ticket,
  unassigned, duplicate, bounce …) and every mail it causes is queued;
- CPU milliseconds per mail of all mailgate processes together, and their summed peak RSS;
- the same again with 50,000 mails of history already in the database;
- what one 20 MB mail adds to the summed peak RSS of a fresh daemon.

The mix (see bench/mix.py): 4,400 mails of the shared corpus over 16 sessions (a third
from registered customers: tickets, acknowledgements, three agents notified; the rest
from strangers), and beside them 600 replies to 300 existing tickets over 2 sessions:
agents' commands, customers' answers, autoresponders, bounces.

Run: .venv/bin/python bench/pipeline.py [--database-url URL] [--skip-history]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import mix  # noqa: E402
from bench.common import (  # noqa: E402
    PYTHON,
    Store,
    corpus,
    cpu_by_role,
    free_port,
    load,
    start_sink,
    usage,
    wait_port,
)
from bench.history import load_history  # noqa: E402

TOTAL = 5000
MAIN = 4400


def config_text(url: str, smtp_port: int, sink_port: int, workers: int) -> str:
    return (f'[database]\nurl = "{url}"\n[smtp]\nport = {smtp_port}\n'
            f'[mail]\nsecret = "{mix.SECRET}"\n[outbound]\nport = {sink_port}\n'
            f'[processing]\nparse_workers = {workers}\npoll_seconds = 0.5\n'
            + (f'batch_size = {os.environ["BENCH_BATCH"]}\n' if os.environ.get("BENCH_BATCH")
               else "")   # the daemon's default unless asked
            + '[log]\nlevel = "warning"\n')


class Site:
    """One database with the registered site on it, and a daemon serving it."""

    def __init__(self, base_url: str, workers: int, sink_port: int) -> None:
        from mailgate.bootstrap import build_app
        from mailgate.config import load_config

        self.workdir = Path(tempfile.mkdtemp(prefix="mailgate-bench-"))
        self.store = Store(self.workdir, base_url)
        self.port = free_port()
        self.config = self.workdir / "mailgate.toml"
        self.config.write_text(config_text(self.store.url, self.port, sink_port, workers))
        self.app = build_app(load_config(self.config), configure_logs=False)
        self.daemon: subprocess.Popen | None = None

    def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.daemon = subprocess.Popen([PYTHON, "-m", "mailgate", "--config", str(self.config),
                                        "serve"], env=env, stdout=subprocess.DEVNULL)
        wait_port(self.port)

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.send_signal(signal.SIGTERM)
            self.daemon.wait(120)
            self.daemon = None

    def close(self) -> None:
        self.stop()
        self.app.db.dispose()
        self.store.drop()

    def count(self, table: str, where: str) -> int:
        return self.store.scalar(f"SELECT count(*) FROM {table} WHERE {where}")

    def settle(self, *, outbox: bool = False, timeout: float = 900) -> float:
        """Wait until every inbound mail is final (and, if asked, all mail is sent)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.count("inbound", "state IN ('pending', 'processing')") and not (
                    outbox and self.count("outbox", "state IN ('pending', 'sending')")):
                return time.monotonic()
            time.sleep(0.05)
        raise SystemExit("mailgate did not settle")


def prepare(site: Site, folder: Path) -> list:
    """Register the site, open 300 tickets, and build the replies sent beside the corpus."""
    seeds = mix.register(site.app, folder)
    site.start()
    mix.SideSender(site.port, mix.seed_mails(seeds), sessions=4).start().join()
    site.settle(outbox=True)
    from sqlalchemy import text
    with site.app.db.unit(write=False) as s:
        tickets = [tuple(r) for r in s.execute(text(
            "SELECT t.id, c.email FROM ticket t JOIN contact c ON c.id = t.requester_id"))]
        verps = [r[0] for r in s.execute(text(
            "SELECT mail_from FROM outbox WHERE kind = 'ack' ORDER BY id"))]
    return mix.side_mails(tickets, verps, dt.datetime.now(dt.UTC).date())


def measure(site: Site, main: Path, side: list, profile: str = "") -> dict:
    spy = None
    if profile:   # py-spy (pip install py-spy): sampled stacks of every mailgate process
        spy = subprocess.Popen(["py-spy", "record", "--subprocesses", "--format", "raw",
                                *(["--gil"] if os.environ.get("BENCH_SPY_GIL") else []),
                                "--rate", "200", "-o", profile, "--pid",
                                str(site.daemon.pid)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        time.sleep(1)
    before = usage(site.daemon.pid)
    t0 = time.monotonic()
    sender = mix.SideSender(site.port, side).start()
    result = load(main, site.port, 16, "mailgate")
    sender.join()
    if os.environ.get("BENCH_VERBOSE"):   # how far processing kept up while accepting
        waiting = site.count("inbound", "state IN ('pending', 'processing')")
        print(f"    accepting ended after {time.monotonic() - t0:.1f} s: "
              f"{waiting} mails still to process")
    t1 = site.settle()
    after = usage(site.daemon.pid)
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(60)
    n = MAIN + len(side)
    roles = cpu_by_role(before, after, site.daemon.pid)
    if os.environ.get("BENCH_VERBOSE"):
        for _pid, (name, peak) in after.peaks.items():
            print(f"    {name:16s} peak {peak:6.0f} MB")
    return {"accept": result, "e2e": n / (t1 - t0), "seconds": t1 - t0,
            "cpu_ms": (after.cpu_s - before.cpu_s) / n * 1000, "peak_mb": after.peak_mb,
            "errors": (result.get("errors") or 0) + sender.errors,
            "roles": {k: v / n * 1000 for k, v in roles.items() if v > 0.05}}


def big_mail(base_url: str, workers: int, sink_port: int, folder: Path) -> float:
    site = Site(base_url, workers, sink_port)
    try:
        seeds = mix.register(site.app, folder)
        site.start()
        mix.SideSender(site.port, mix.seed_mails(seeds[:3]), sessions=1).start().join()
        site.settle(outbox=True)
        before = usage(site.daemon.pid)
        mix.SideSender(site.port, [("", mix.SUPPORT, mix.big_mail(seeds[0]))],
                       sessions=1).start().join()
        site.settle(outbox=True)
        after = usage(site.daemon.pid)
        if os.environ.get("BENCH_VERBOSE"):
            for pid, (name, peak) in after.peaks.items():
                grew = peak - before.peaks.get(pid, (name, 0))[1]
                print(f"    {name:16s} peak {peak:6.0f} MB (+{grew:.0f})")
        return after.peak_mb - before.peak_mb
    finally:
        site.close()


def run(base_url: str, folder: Path, main: Path, workers: int, history: bool,
        profile: str = "") -> None:
    sink_port = free_port()
    sink = start_sink(sink_port)
    try:
        ceiling = load(main, sink_port, 16, "null-sink")
        rows = []
        for label, with_history in (("fresh database", False), ("50,000 mails of history",
                                                                 True)):
            if with_history and not history:
                continue
            site = Site(base_url, workers, sink_port)
            try:
                if with_history:
                    load_history(site.app, 50_000)
                side = prepare(site, folder)
                rows.append((label, measure(site, main, side,
                                            "" if with_history else profile)))
            finally:
                site.close()
        extra = big_mail(base_url, workers, sink_port, folder)
    finally:
        sink.terminate()
        sink.wait(10)
    db = "postgresql" if base_url else "sqlite"
    print(f"pipeline ({db}, {TOTAL} mails: {MAIN} corpus over 16 sessions + 600 replies "
          f"over 2; {workers} parse workers)")
    print(f"  null sink accept         : {ceiling['msgs_per_s']:7.0f} mails/s   "
          f"p50 {ceiling['lat_ms']['p50']} ms  p99 {ceiling['lat_ms']['p99']} ms")
    for label, r in rows:
        a = r["accept"]
        print(f"  [{label}]")
        print(f"    accepted (250)         : {a['msgs_per_s']:7.0f} mails/s   "
              f"{a['msgs_per_s'] / ceiling['msgs_per_s']:.2f}x the sink   p50 "
              f"{a['lat_ms']['p50']} ms  p99 {a['lat_ms']['p99']} ms  errors {r['errors']}")
        print(f"    end to end             : {r['e2e']:7.0f} mails/s   ({r['seconds']:.1f} s)")
        print(f"    CPU per mail           : {r['cpu_ms']:7.1f} ms (all mailgate processes: "
              + ", ".join(f"{k} {v:.1f}" for k, v in sorted(r["roles"].items())) + ")")
        print(f"    peak RSS, all processes: {r['peak_mb']:7.0f} MB")
    if len(rows) == 2:
        slower = 1 - rows[1][1]["e2e"] / rows[0][1]["e2e"]
        print(f"  with history             : {slower * 100:+7.1f} % slower end to end")
    print(f"  one 20 MB mail adds      : {extra:7.0f} MB to the summed peak RSS")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--database-url", default="",
                    help="PostgreSQL base URL; a fresh schema is made and dropped")
    ap.add_argument("--parse-workers", type=int, default=1,
                    help="as the daemon's default [processing] parse_workers")
    ap.add_argument("--skip-history", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", default="", metavar="FILE",
                    help="record py-spy stacks of the fresh run into FILE (collapsed)")
    args = ap.parse_args()
    folder = corpus(TOTAL, args.seed)
    main_part = mix.corpus_part(folder, Path(tempfile.gettempdir()) / "mailgate-bench-main",
                                MAIN)
    run(args.database_url, folder, main_part, args.parse_workers, not args.skip_history,
        args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
