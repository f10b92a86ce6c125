#!/usr/bin/env python3
"""`make bench`: every benchmark with its default size, one after the other."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

RUNS = [
    [str(HERE / "smtp_ingest.py"), "-n", "2000", "-c", "16"],
    [str(HERE / "imap_backlog.py"), "-n", "10000"],
]


def main() -> int:
    failed = 0
    for run in RUNS:
        print(f"$ {Path(run[0]).name} {' '.join(run[1:])}", flush=True)
        failed |= subprocess.run([sys.executable, *run]).returncode
    return failed


if __name__ == "__main__":
    sys.exit(main())
