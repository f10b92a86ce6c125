#!/usr/bin/env python3
"""`make bench`: every benchmark with its default size, one after the other.

The pipeline runs on SQLite and, when a PostgreSQL server answers at
MAILGATE_BENCH_DATABASE_URL (default: the test server at 127.0.0.1:5432), on it too.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
PG_URL = os.environ.get("MAILGATE_BENCH_DATABASE_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432),
                                      timeout=2):
            return True
    except OSError:
        return False


def runs() -> list[list[str]]:
    out = [[str(HERE / "pipeline.py")]]
    if reachable(PG_URL):
        out.append([str(HERE / "pipeline.py"), "--database-url", PG_URL])
        # two instances on one PostgreSQL, their end-to-end rate next to one instance's
        out.append([str(HERE / "instances.py"), "--database-url", PG_URL])
    else:
        print(f"# PostgreSQL at {PG_URL} does not answer: pipeline on SQLite only")
    out.append([str(HERE / "imap_backlog.py"), "-n", "10000"])
    return out


def main() -> int:
    failed = 0
    for run in runs():
        print(f"$ {Path(run[0]).name} {' '.join(run[1:])}", flush=True)
        failed |= subprocess.run([sys.executable, *run]).returncode
    return failed


if __name__ == "__main__":
    sys.exit(main())
