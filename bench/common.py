"""What every benchmark needs: the shared corpus and yardsticks, ports, a database to run
on, and the CPU and memory of a whole process tree (the daemon and its workers)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "bench"
PYTHON = sys.executable
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing answered on port {port}")


def corpus(n: int, seed: int) -> Path:
    """The shared generated corpus, cached in /tmp by size and seed."""
    out = Path(tempfile.gettempdir()) / f"mailgate-bench-corpus-{n}-{seed}"
    if not out.is_dir() or len(list(out.iterdir())) < n:
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run([PYTHON, str(SHARED / "make_corpus.py"), str(out), "-n", str(n),
                        "--seed", str(seed)], check=True, stdout=subprocess.DEVNULL)
    return out


def start_sink(port: int, seconds: float = 1800) -> subprocess.Popen:
    """The shared null SMTP sink: answers 250 at once (the ceiling, and our relay)."""
    proc = subprocess.Popen([PYTHON, str(SHARED / "sinks.py"), "--mode", "null", "--port",
                             str(port), "--max-seconds", str(seconds)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc


def load(folder: Path, port: int, concurrency: int, label: str) -> dict:
    """Send a folder with the shared load generator; its JSON result."""
    result = subprocess.run([PYTHON, str(SHARED / "smtp_load.py"), str(folder), "--port",
                             str(port), "-c", str(concurrency), "--rcpt", "support@example.com",
                             "--time-limit", "600", "--label", label],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def peak_rss_mb(pid: int) -> float:
    return _status_kb(pid, "VmHWM") / 1024


# --- a process and its descendants --------------------------------------------------------


def tree(pid: int) -> list[int]:
    """`pid` and every process below it (parse workers sit under the worker)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


@dataclass(frozen=True)
class Usage:
    cpu_s: float        # user + system of the tree, including reaped children
    peak_mb: float      # the sum of every process's peak resident size
    rss_mb: float       # the sum of what is resident now
    by_process: dict    # pid -> (name, cpu seconds)
    peaks: dict         # pid -> (name, peak MB)


def usage(pid: int) -> Usage:
    cpu, peak, rss, by, peaks = 0.0, 0.0, 0.0, {}, {}
    for p in tree(pid):
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
            name = Path(f"/proc/{p}/comm").read_text().strip()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        used = sum(int(x) for x in fields[11:15]) / TICK   # utime stime cutime cstime
        cpu += used
        by[p] = (name, used)
        peaks[p] = (name, _status_kb(p, "VmHWM") / 1024)
        peak += peaks[p][1]
        rss += _status_kb(p, "VmRSS") / 1024
    return Usage(cpu, peak, rss, by, peaks)


def cpu_by_role(before: Usage, after: Usage, root: int) -> dict[str, float]:
    """CPU seconds between two readings, by the process's part: serve (SMTP, spool),
    worker (processing and sending), parse workers, the rest."""
    out: dict[str, float] = {}
    for pid, (name, used) in after.by_process.items():
        spent = used - before.by_process.get(pid, (name, 0.0))[1]
        role = "serve" if pid == root else name
        out[role] = out.get(role, 0.0) + spent
    return out


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


# --- a database to run on -----------------------------------------------------------------


class Store:
    """A fresh SQLite file, or a fresh schema on a PostgreSQL server, and SQL on it."""

    def __init__(self, workdir: Path, base_url: str = "") -> None:
        self.schema = ""
        self.base_url = base_url
        self._conn = None
        if not base_url:
            self.url = f"sqlite:///{workdir}/bench.db"
            return
        from sqlalchemy.engine import make_url
        self.schema = f"bench_{os.getpid()}_{int(time.time())}"
        self._sql(f'CREATE SCHEMA "{self.schema}"', schema=False)
        self.url = make_url(base_url).update_query_dict(
            {"options": f"-csearch_path={self.schema}"}).render_as_string(hide_password=False)

    @property
    def name(self) -> str:
        return "postgresql" if self.schema else "sqlite"

    def scalar(self, sql: str):
        """One value, on a connection kept open between calls: the bench polls while the
        daemon works, and a new PostgreSQL connection per poll (a server process forked
        and set up each time) would take CPU from the daemon it measures."""
        return self._sql(sql)

    def _sql(self, sql: str, schema: bool = True):
        if not schema:      # schema set-up and removal: a connection of their own
            with self._connect(schema=False) as conn:
                return self._one(conn.execute(sql))
        if self._conn is None:
            self._conn = self._connect(schema=True)
        return self._one(self._conn.execute(sql))

    @staticmethod
    def _one(cur):
        return cur.fetchone()[0] if cur.description else None

    def _connect(self, *, schema: bool):
        if not self.schema:
            import sqlite3
            return sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=60,
                                   isolation_level=None, check_same_thread=False)
        import psycopg
        from sqlalchemy.engine import make_url
        url = make_url(self.base_url)
        options = f"-csearch_path={self.schema}" if schema else ""
        return psycopg.connect(host=url.host, port=url.port or 5432, user=url.username,
                               dbname=url.database, autocommit=True, options=options)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def drop(self) -> None:
        self.close()
        if self.schema:
            self._sql(f'DROP SCHEMA "{self.schema}" CASCADE', schema=False)
