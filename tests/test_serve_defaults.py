"""Story 5: `make run` serves with no config at all, and SIGTERM loses no accepted mail.

These run the real `mailgate serve` process (what `make run` executes) in an empty
working folder, on the default SMTP port 2525, with the default relay 127.0.0.1:25.
"""

from __future__ import annotations

import os
import re
import signal
import smtplib
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.harness import make_mail, wait_until

ROOT = Path(__file__).resolve().parent.parent
MAILGATE = [sys.executable, "-m", "mailgate"]


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILGATE_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture
def workdir(tmp_path) -> Path:
    if not _port_free(2525):
        pytest.fail("port 2525 (the default SMTP port) is taken on this machine")
    return tmp_path


def start(workdir: Path) -> subprocess.Popen:
    proc = subprocess.Popen([*MAILGATE, "serve"], cwd=workdir, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()   # printed once the port answers
    assert "SMTP on 127.0.0.1:2525" in line, (line, proc.stderr.read() if proc.poll() else "")
    return proc


def stop(proc: subprocess.Popen, timeout: float = 30) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.log = proc.stderr.read()     # what the daemon logged, for the tests to read
        proc.stdout.close()
        proc.stderr.close()


def cli(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*MAILGATE, *args], cwd=workdir, env=_env(), capture_output=True,
                          text=True, timeout=60)


def rows(workdir: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(workdir / "mailgate.db") as db:
        return db.execute(sql).fetchall()


def test_make_run_target_is_serve_without_config():
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^run:.*\n\t(.+)$", makefile, re.M).group(1)
    assert recipe.strip() == "$(BIN)/mailgate serve"


def test_serve_with_no_config_listens_stores_and_keeps_retrying_the_relay(workdir):
    assert _port_free(25), "something listens on port 25; the retry check needs it closed"
    assert cli(workdir, "project", "add", "acme", "--name", "ACME",
               "--customer", "carla@client.example").returncode == 0
    proc = start(workdir)
    try:
        with smtplib.SMTP("127.0.0.1", 2525, timeout=10) as smtp:
            smtp.sendmail("carla@client.example", ["support@example.com"],
                          make_mail(sender="carla@client.example", subject="Hallo"))
        # The acknowledgement waits in the outbox; the relay on :25 is down, so it is
        # retried with backoff rather than dropped.
        wait_until(lambda: rows(workdir, "SELECT state, attempts, last_error FROM outbox "
                                         "WHERE kind = 'ack' AND attempts >= 1"))
        state, _attempts, error = rows(workdir, "SELECT state, attempts, last_error FROM "
                                               "outbox WHERE kind = 'ack'")[0]
        assert state == "pending" and "refused" in error.lower()
    finally:
        assert stop(proc) == 0
    assert (workdir / "mailgate.db").exists()
    assert rows(workdir, "SELECT count(*) FROM ticket") == [(1,)]
    # the default trusts reply addresses alone: the admin is told so, loudly
    assert "agent mail is NOT verified" in proc.log


def test_sigterm_keeps_every_acknowledged_mail(workdir):
    proc = start(workdir)
    try:
        with smtplib.SMTP("127.0.0.1", 2525, timeout=10) as smtp:
            for i in range(20):
                smtp.sendmail("x@client.example", ["support@example.com"],
                              make_mail(sender="x@client.example", subject=f"mail {i}"))
    finally:
        assert stop(proc) == 0
    assert rows(workdir, "SELECT count(*) FROM inbound") == [(20,)]
    # Whatever was not processed before the stop is processed after a restart.
    proc = start(workdir)
    try:
        wait_until(lambda: rows(workdir, "SELECT count(*) FROM inbound WHERE state = "
                                         "'unassigned'") == [(20,)])
    finally:
        assert stop(proc) == 0


def _descendants(pid: int) -> dict[int, tuple[str, int]]:
    """pid -> (name, niceness) of every process below `pid`."""
    parents: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parents.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    out, todo = {}, list(parents.get(pid, []))
    while todo:
        p = todo.pop()
        todo.extend(parents.get(p, []))
        try:
            name = Path(f"/proc/{p}/comm").read_text().strip()
        except OSError:
            continue
        out[p] = (name, os.getpriority(os.PRIO_PROCESS, p))
    return out


def test_processing_runs_below_the_accepting_process(workdir):
    # [processing] nice = 10 by default: an SMTP client waiting for its 250 goes first
    proc = start(workdir)

    def ours() -> list[tuple[str, int]]:
        return sorted(v for v in _descendants(proc.pid).values() if v[0].startswith("mailgate-"))

    try:
        base = os.getpriority(os.PRIO_PROCESS, proc.pid)
        wait_until(lambda: [n for n, _ in ours()] ==
                   ["mailgate-parse", "mailgate-work"])   # parse_workers = 1
        assert all(nice == min(base + 10, 19) for _, nice in ours()), ours()
        assert os.getpriority(os.PRIO_PROCESS, proc.pid) == base
    finally:
        assert stop(proc) == 0


def test_the_serving_process_holds_no_processing_timed_job_or_other_command_code():
    """`mailgate serve` builds only its own commands and starts the worker: the loops,
    the timed jobs (APScheduler, the timers, the sender) and the other commands' code
    are the worker's or the CLI's, never resident in the process that accepts mail."""
    probe = ("import sys\n"
             "from mailgate.cli import _command_of, build_parser\n"
             "build_parser(_command_of(['--config', 'x.toml', 'serve']))\n"
             "import mailgate.edges.serve\n"
             "print(sorted(m for m in sys.modules if m.startswith(('apscheduler', "
             "'mailgate.handlers.', 'mailgate.edges.workers', 'mailgate.edges.timed', "
             "'mailgate.edges.relay', 'mailgate.edges.parse_pool', 'mailgate.cli.'))))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.strip()
    assert out == "['mailgate.cli.run']"


@pytest.mark.parametrize("argv, command", [
    (["serve"], "serve"), (["--config", "serve.toml", "serve"], "serve"),
    (["--config=x.toml", "serve"], "serve"), (["ticket", "list", "--json"], "ticket"),
    (["--version"], None), ([], None), (["--config", "x.toml"], None),
])
def test_the_command_word_is_found_after_the_global_options(argv, command):
    from mailgate.cli import _command_of
    assert _command_of(argv) == command


def test_serving_loads_no_metrics_or_imap_library_until_configured():
    """A daemon with no metrics port and no mailbox pays no memory for their libraries."""
    probe = ("import sys, mailgate.edges.serve; "
             "print(sorted(m for m in ('prometheus_client', 'imap_tools') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
