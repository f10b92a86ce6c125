#!/usr/bin/env python3
"""Two instances on one PostgreSQL beside one: the end-to-end rate of each.

The same part of the shared corpus (registered customers open tickets, strangers wait
unassigned, agents are notified) is sent once to one `mailgate serve` and once to two
serving one fresh database each time, half the mail to each instance over 8 sessions
apiece. The end-to-end rate counts from the first mail sent until every mail is final
and every mail it caused has been handed to the null sink (the relay).

On one machine the two instances share its cores, so the figure shows what coordinating
costs (row claims, thread and ticket locks) more than what a second host would add.

Run: .venv/bin/python bench/instances.py [--database-url URL] [-n MAILS]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import mix  # noqa: E402
from bench.common import PYTHON, Store, corpus, free_port, load, start_sink, wait_port  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MAILS = 2000


def config_text(url: str, smtp_port: int, sink_port: int, name: str) -> str:
    return (f'[database]\nurl = "{url}"\n[server]\ninstance = "{name}"\n'
            f'[smtp]\nport = {smtp_port}\n[mail]\nsecret = "{mix.SECRET}"\n'
            f'[outbound]\nport = {sink_port}\n'
            f'[processing]\nparse_workers = 1\npoll_seconds = 0.5\n[log]\nlevel = "warning"\n')


def split(folder: Path, parts: int, workdir: Path) -> list[Path]:
    """The corpus dealt out into `parts` folders of links, mail by mail."""
    outs = [workdir / f"part{i}" for i in range(parts)]
    for out in outs:
        out.mkdir()
    for i, f in enumerate(sorted(folder.iterdir())):
        (outs[i % parts] / f.name).symlink_to(f)
    return outs


def run(base_url: str, folder: Path, instances: int, sink_port: int) -> float:
    """Mails per second end to end through `instances` daemons on one fresh database."""
    from mailgate.bootstrap import build_app
    from mailgate.config import load_config

    workdir = Path(tempfile.mkdtemp(prefix="mailgate-bench-instances-"))
    store = Store(workdir, base_url)
    ports = [free_port() for _ in range(instances)]
    configs = []
    for i, port in enumerate(ports):
        configs.append(workdir / f"mg{i}.toml")
        configs[-1].write_text(config_text(store.url, port, sink_port, f"bench-{i}"))
    app = build_app(load_config(configs[0]), configure_logs=False)
    mix.register(app, folder)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    daemons = []
    try:
        for config, port in zip(configs, ports, strict=True):
            daemons.append(subprocess.Popen([PYTHON, "-m", "mailgate", "--config",
                                             str(config), "serve"], env=env,
                                            stdout=subprocess.DEVNULL))
            wait_port(port)
        parts = split(folder, instances, workdir)
        t0 = time.monotonic()
        senders = [threading.Thread(target=load, args=(part, port, 8, f"mg{i}"))
                   for i, (part, port) in enumerate(zip(parts, ports, strict=True))]
        for t in senders:
            t.start()
        for t in senders:
            t.join()
        while store.scalar("SELECT count(*) FROM inbound WHERE state IN "
                           "('pending', 'processing')") or store.scalar(
                "SELECT count(*) FROM outbox WHERE state IN ('pending', 'sending')"):
            if time.monotonic() - t0 > 900:
                raise SystemExit("mailgate did not settle")
            time.sleep(0.05)
        seconds = time.monotonic() - t0
        n = store.scalar("SELECT count(*) FROM inbound")
    finally:
        for proc in daemons:
            proc.send_signal(signal.SIGTERM)
        for proc in daemons:
            proc.wait(120)
        app.db.dispose()
        store.drop()
    return n / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get(
        "MAILGATE_BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("-n", type=int, default=MAILS, help="mails of the corpus to send")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="mailgate-bench-corpus-part-"))
    folder = mix.corpus_part(corpus(5000, 1), workdir / "mails", args.n)
    sink_port = free_port()
    sink = start_sink(sink_port)
    try:
        one = run(args.database_url, folder, 1, sink_port)
        two = run(args.database_url, folder, 2, sink_port)
    finally:
        sink.terminate()
        sink.wait(10)
    print(f"instances on postgresql, {args.n} mails end to end: one instance "
          f"{one:.0f} mails/s, two instances {two:.0f} mails/s ({two / one:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
