#!/usr/bin/env python3
"""IMAP backlog benchmark: a mailbox with 10,000 waiting mails, worked off by `mailgate serve`.

Fills a private Dovecot's Maildir with the shared generated corpus (written straight into
`new/`, which Dovecot picks up as delivered mail), starts the daemon with one `[[imap]]`
mailbox, and prints how long fetching (stored and moved) and processing took, mails/s,
and the daemon's peak memory, which must stay flat however large the backlog is: mail is
fetched `batch_size` at a time.

Run: .venv/bin/python bench/imap_backlog.py [-n 10000] [--batch-size 50]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import corpus, free_port, peak_rss_mb  # noqa: E402
from tests.support.imapserver import Dovecot  # noqa: E402


def fill_maildir(server: Dovecot, user: str, folder: Path, n: int) -> None:
    """Deliver `n` mails by writing them into the user's Maildir, as an LDA would."""
    maildir = server.root / "mail" / user
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    files = sorted(folder.iterdir())
    for i in range(n):
        raw = files[i % len(files)].read_bytes()
        if i >= len(files):   # repeats get their own Message-ID so none is a duplicate
            raw = raw.replace(b"Message-ID: <", f"Message-ID: <r{i}.".encode(), 1)
        (maildir / "new" / f"{1700000000 + i}.M{i}P1.bench").write_bytes(raw)
    subprocess.run(["chown", "-R", "dovecot:dovecot", str(server.root / "mail")], check=True)


def count(db: Path, where: str) -> int:
    with sqlite3.connect(db, timeout=30) as conn:
        return conn.execute(f"SELECT count(*) FROM inbound {where}").fetchone()[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=10_000)
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    folder = corpus(min(args.n, 5000), args.seed)
    server = Dovecot()
    server.add_user("support", "pw")
    workdir = Path(tempfile.mkdtemp(prefix="mailgate-imapbench-"))
    db = workdir / "bench.db"
    try:
        fill_maildir(server, "support", folder, args.n)
        server.start()
        config = workdir / "mailgate.toml"
        config.write_text(
            f'[database]\nurl = "sqlite:///{db}"\n[smtp]\nport = {free_port()}\n'
            f'[mail]\nsecret = "bench"\n[outbound]\nport = {free_port()}\n'
            f'[log]\nlevel = "warning"\n[[imap]]\nname = "bench"\nhost = "127.0.0.1"\n'
            f'port = {server.port}\ntls = "none"\nuser = "support"\npassword = "pw"\n'
            f"batch_size = {args.batch_size}\npoll_seconds = 1.0\n")
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        t0 = time.monotonic()
        daemon = subprocess.Popen([sys.executable, "-m", "mailgate", "--config", str(config),
                                   "serve"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            fetched_s = processed_s = None
            while processed_s is None:
                time.sleep(0.2)
                if daemon.poll() is not None:
                    raise SystemExit("the daemon died")
                try:            # the daemon may still be creating its tables
                    stored = count(db, "") if db.exists() else None
                except sqlite3.OperationalError:
                    stored = None
                if stored is None:
                    continue
                if fetched_s is None and stored >= args.n:
                    fetched_s = time.monotonic() - t0
                if fetched_s is not None and count(
                        db, "WHERE state IN ('pending', 'processing')") == 0:
                    processed_s = time.monotonic() - t0
            rss = peak_rss_mb(daemon.pid)
            left = len(server.uids("support"))
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(60)
    finally:
        server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"imap backlog ({args.n} mails, batch {args.batch_size})")
    print(f"  fetched and stored: {args.n / fetched_s:8.0f} mails/s   ({fetched_s:.1f} s)")
    print(f"  all processed     : {args.n / processed_s:8.0f} mails/s   ({processed_s:.1f} s)")
    print(f"  left in INBOX     : {left:8d}")
    print(f"  daemon peak RSS   : {rss:8.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
