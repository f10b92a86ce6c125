"""Mail that cannot be parsed or processed is quarantined with a reason, never dropped."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from mailgate import faults
from tests.support.harness import SUPPORT, make_mail


@pytest.fixture
def h(harness_factory, sqlite_url):
    h = harness_factory(sqlite_url, processing={"max_attempts": 2}).start()
    assert h.cli("project", "add", "acme", "--name", "A",
                 "--customer", "carla@client.example").code == 0
    return h


def test_bytes_that_are_no_mail_are_quarantined_with_the_reason(h):
    # no bare CR or LF and a final CRLF, so smtplib sends these exact bytes
    junk = b"\xd0\xcf\x11\xe0" + bytes(b for b in range(256) if b not in b"\r\n") * 4 + b"\r\n"
    h.send(junk)
    h.settle()
    (row,) = json.loads(h.cli("quarantine", "list", "--json").out)
    assert "Outlook .msg" in row["reason"]
    assert row["sha256"] == hashlib.sha256(junk).hexdigest()
    shown = h.cli("quarantine", "show", str(row["id"]))
    assert shown.code == 0 and "Outlook .msg" in shown.out
    raw = subprocess.run([sys.executable, "-m", "mailgate", "--config", str(h.config_path),
                          "quarantine", "show", str(row["id"]), "--raw"],
                         capture_output=True, timeout=60).stdout
    assert raw == junk                                    # byte-identical


def test_a_mail_that_keeps_crashing_is_parked_and_retry_works_after_the_fix(harness_factory,
                                                                            sqlite_url):
    raw = make_mail(sender="carla@client.example", subject="poison")
    faults.arm("pipeline.before_commit=raise")   # the worker process starts with it armed
    try:
        h = harness_factory(sqlite_url, processing={"max_attempts": 2}).start()
        assert h.cli("project", "add", "acme", "--name", "A",
                     "--customer", "carla@client.example").code == 0
        h.send(raw)
        # Two attempts (max_attempts = 2), with backoff in between; speed up the wait.
        deadline_rows = _wait_state(h, "quarantined", timeout=120)
    finally:
        faults.arm("")
    (row,) = deadline_rows
    assert row.attempts == 2
    assert "failed 2 times" in row.reason and "FaultInjected" in row.reason
    assert h.tickets() == []                              # no partial ticket
    result = h.cli("quarantine", "retry", str(row.id), "--json")
    assert result.code == 0, result.err
    (outcome,) = json.loads(result.out)
    assert outcome["state"] == "done" and outcome["ticket"] == h.tickets()[0].id


def _wait_state(h, state, timeout):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = [r for r in h.inbound() if r.state == state]
        if rows:
            return rows
        # Make the backoff due now instead of waiting it out.
        with h.app.db.unit() as s:
            from sqlalchemy import update

            from store.models import Inbound
            s.execute(update(Inbound).where(Inbound.state == "pending")
                      .values(next_attempt_at=None))
        h.daemon.daemon.wake_processor()
        time.sleep(0.1)
    raise AssertionError(f"no inbound reached {state}")


def test_quarantine_errors_are_one_line(h):
    assert h.cli("quarantine", "show", "42").err == (
        "mailgate: no quarantined mail with id 42 (see: mailgate quarantine list)\n")
    assert h.cli("quarantine", "retry").code == 1


@pytest.mark.parametrize(("stdin", "args", "code", "words"), [
    (make_mail(sender="a@client.example"), [], 0, "stored as inbound"),
    (b"", [], 65, "not a mail: empty input"),
    (b"\xd0\xcf\x11\xe0binary", [], 65, "Outlook .msg"),
    (b"just some text\nwithout headers\n", [], 65, "no header section"),
    (make_mail(sender="a@client.example"), ["--recipient", "x@other.example"], 65,
     "refused"),
], ids=["mail", "empty", "msg-file", "no-headers", "foreign-recipient"])
def test_pipe_ingest_exit_codes(h, stdin, args, code, words):
    proc = subprocess.run([sys.executable, "-m", "mailgate", "--config", str(h.config_path),
                           "ingest", *args, "-"], input=stdin, capture_output=True,
                          timeout=60)
    assert proc.returncode == code, proc.stderr
    assert words in (proc.stdout + proc.stderr).decode()


def test_pipe_ingest_is_processed_by_the_daemon(h):
    proc = subprocess.run([sys.executable, "-m", "mailgate", "--config", str(h.config_path),
                           "ingest", "--recipient", SUPPORT, "-"],
                          input=make_mail(sender="carla@client.example", subject="piped"),
                          capture_output=True, timeout=60)
    assert proc.returncode == 0
    h.settle()
    (t,) = h.tickets()
    assert t.subject == "piped"


def test_pipe_ingest_with_the_store_down_exits_75(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[database]\nurl = "postgresql+psycopg://nobody@127.0.0.1:1/none"\n')
    proc = subprocess.run([sys.executable, "-m", "mailgate", "--config", str(cfg), "ingest",
                           "-"], input=make_mail(sender="a@client.example"),
                          capture_output=True, timeout=60)
    assert proc.returncode == 75, proc.stderr
    assert proc.stderr.decode().count("\n") == 1
