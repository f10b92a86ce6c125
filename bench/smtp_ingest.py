#!/usr/bin/env python3
"""SMTP ingest benchmark: the real `mailgate serve` under the shared load generator.

Starts the daemon as a subprocess on a temporary database (SQLite by default, or
PostgreSQL with --database-url), relaying outgoing mail to the shared null SMTP sink,
sends a generated corpus with ../shared/bench/smtp_load.py, and prints:

- accepted mails/s over SMTP and latency p50/p99 (from the load generator),
- the time until every stored mail was processed (routing, tickets, outbox) -> mails/s,
- the daemon's peak memory (VmHWM) and the null sink's ceiling for comparison.

Run: .venv/bin/python bench/smtp_ingest.py [-n 2000] [-c 16] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "bench"
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def corpus(n: int, seed: int) -> Path:
    """The shared generated corpus, cached in /tmp by size and seed."""
    out = Path(tempfile.gettempdir()) / f"mailgate-bench-corpus-{n}-{seed}"
    if not out.is_dir() or len(list(out.iterdir())) < n:
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run([PYTHON, str(SHARED / "make_corpus.py"), str(out), "-n", str(n),
                        "--seed", str(seed)], check=True, stdout=subprocess.DEVNULL)
    return out


def start_sink(port: int, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([PYTHON, str(SHARED / "sinks.py"), "--mode", "null", "--port",
                             str(port), "--max-seconds", str(seconds)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing answered on port {port}")


def load(folder: Path, port: int, concurrency: int, label: str) -> dict:
    result = subprocess.run([PYTHON, str(SHARED / "smtp_load.py"), str(folder), "--port",
                             str(port), "-c", str(concurrency), "--rcpt", "support@example.com",
                             "--time-limit", "300", "--label", label],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pending(db_url: str, workdir: Path) -> int:
    if db_url.startswith("sqlite"):
        with sqlite3.connect(workdir / "bench.db", timeout=30) as conn:
            return conn.execute("SELECT count(*) FROM inbound WHERE state IN "
                                "('pending', 'processing')").fetchone()[0]
    import psycopg
    from sqlalchemy.engine import make_url
    url = make_url(db_url)
    schema = url.query["options"].split("=", 1)[1]
    with psycopg.connect(host=url.host, port=url.port or 5432, user=url.username,
                         dbname=url.database, options=f"-csearch_path={schema}") as conn:
        return conn.execute("SELECT count(*) FROM inbound WHERE state IN "
                            "('pending', 'processing')").fetchone()[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=2000, help="mails to send (default 2000)")
    ap.add_argument("-c", type=int, default=16, help="concurrent SMTP sessions (default 16)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--parse-workers", type=int, default=2)
    ap.add_argument("--database-url", default="",
                    help="PostgreSQL base URL; a fresh schema is made and dropped")
    args = ap.parse_args()

    folder = corpus(args.n, args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="mailgate-bench-"))
    sink_port, smtp_port = free_port(), free_port()
    schema = ""
    db_url = f"sqlite:///{workdir}/bench.db"
    if args.database_url:
        import psycopg
        from sqlalchemy.engine import make_url
        schema = f"bench_{os.getpid()}"
        base = make_url(args.database_url)
        with psycopg.connect(host=base.host, port=base.port or 5432, user=base.username,
                             dbname=base.database, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        db_url = base.update_query_dict({"options": f"-csearch_path={schema}"}) \
            .render_as_string(hide_password=False)
    config = workdir / "mailgate.toml"
    config.write_text(
        f'[database]\nurl = "{db_url}"\n[smtp]\nport = {smtp_port}\n'
        f'[mail]\nsecret = "bench"\n[outbound]\nport = {sink_port}\n'
        f'[processing]\nparse_workers = {args.parse_workers}\npoll_seconds = 0.5\n'
        f'[log]\nlevel = "warning"\n')
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    sink = start_sink(sink_port, 900)
    ceiling = load(folder, sink_port, args.c, "null-sink")
    daemon = subprocess.Popen([PYTHON, "-m", "mailgate", "--config", str(config), "serve"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(smtp_port)
        # senders of the generated corpus are unknown: every mail goes to the unassigned
        # queue after full parsing and routing; no acknowledgements are sent
        t0 = time.monotonic()
        result = load(folder, smtp_port, args.c, "mailgate")
        while pending(db_url, workdir):
            time.sleep(0.1)
        processed_s = time.monotonic() - t0
        rss = peak_rss_mb(daemon.pid)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(60)
        sink.terminate()
        sink.wait(10)
        if schema:
            with psycopg.connect(host=base.host, port=base.port or 5432, user=base.username,
                                 dbname=base.database, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        shutil.rmtree(workdir, ignore_errors=True)
    db = "postgresql" if schema else "sqlite"
    print(f"smtp ingest ({db}, {args.n} mails, {args.c} sessions, "
          f"{args.parse_workers} parse workers)")
    print(f"  null sink ceiling : {ceiling['msgs_per_s']:8.0f} mails/s")
    print(f"  accepted (250)    : {result['msgs_per_s']:8.0f} mails/s   "
          f"p50 {result['lat_ms']['p50']} ms  p90 {result['lat_ms']['p90']} ms  "
          f"p99 {result['lat_ms']['p99']} ms  errors {result.get('errors') or 0}")
    print(f"  all processed     : {args.n / processed_s:8.0f} mails/s   "
          f"({processed_s:.1f} s from first mail to last routed)")
    print(f"  daemon peak RSS   : {rss:8.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
