"""kill -9 at the worst moments of a real `mailgate serve`: nothing lost, nothing twice."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.harness import SUPPORT, make_mail, toml_dumps
from tests.support.relay import free_port

ROOT = Path(__file__).resolve().parent.parent
CARLA = "carla@client.example"


@pytest.fixture
def site(tmp_path, relay):
    port = free_port()
    config = tmp_path / "mailgate.toml"
    config.write_text(toml_dumps({
        "database": {"url": f"sqlite:///{tmp_path}/mg.db"},
        "smtp": {"port": port},
        "mail": {"secret": "s3cret"},
        "outbound": {"port": relay.port, "retry_min_seconds": 0.2, "retry_max_seconds": 1.0},
        "processing": {"parse_workers": 0, "poll_seconds": 0.2, "lease_seconds": 2.0,
                       "parse_timeout_seconds": 1.0},
    }))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILGATE_")}
    env["PYTHONPATH"] = str(ROOT)
    subprocess.run([sys.executable, "-m", "mailgate", "--config", str(config), "project", "add",
                    "acme", "--name", "ACME", "--customer", CARLA], env=env, check=True,
                   capture_output=True, timeout=60)

    class Site:
        db = tmp_path / "mg.db"
        def __init__(self) -> None:
            self.procs: list[subprocess.Popen] = []

        def serve(self, faults: str = "", conf: Path = config) -> subprocess.Popen:
            proc = subprocess.Popen(
                [sys.executable, "-m", "mailgate", "--config", str(conf), "serve"],
                env=env | ({"MAILGATE_FAULTS": faults} if faults else {}),
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            assert "SMTP on" in proc.stdout.readline()
            self.procs.append(proc)
            return proc

        def one_process(self) -> Path:
            """The same site with processing as threads of the serve process."""
            text = config.read_text().replace("[processing]\n",
                                              "[processing]\nin_process = true\n")
            path = tmp_path / "one-process.toml"
            path.write_text(text)
            return path

        def rows(self) -> list[tuple[str, str]]:
            with sqlite3.connect(self.db) as conn:
                return conn.execute("SELECT state, reason FROM inbound ORDER BY id").fetchall()

        def tickets(self) -> int:
            with sqlite3.connect(self.db) as conn:
                return conn.execute("SELECT count(*) FROM ticket").fetchone()[0]

        def send(self, raw: bytes) -> None:
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
                smtp.sendmail(CARLA, [SUPPORT], raw)

        def wait(self, check, timeout: float = 30) -> None:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if check():
                    return
                time.sleep(0.05)
            raise AssertionError(f"timed out; rows: {self.rows()}")

    s = Site()
    s.port = port
    yield s
    for proc in s.procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        proc.stdout.close()


def in_data(port: int, subject: bytes) -> smtplib.SMTP:
    """A session that is in the middle of sending a mail's data."""
    smtp = smtplib.SMTP("127.0.0.1", port, timeout=10)
    smtp.ehlo()
    smtp.mail(CARLA)
    smtp.rcpt(SUPPORT)
    smtp.putcmd("data")
    assert smtp.getreply()[0] == 354
    smtp.send(b"From: carla@client.example\r\nSubject: " + subject + b"\r\n\r\nerste Zeile\r\n")
    return smtp


def test_kill_mid_data_leaves_no_row(site):
    proc = site.serve()
    smtp = in_data(site.port, b"halb")
    time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    smtp.close()
    site.serve()
    assert site.rows() == []


def test_kill_after_commit_before_250_collapses_the_retry_into_one_ticket(site, relay):
    raw = make_mail(sender=CARLA, subject="Nochmal", msgid="<retry@client.example>")
    proc = site.serve("spool.after_commit=kill")
    with pytest.raises(smtplib.SMTPServerDisconnected):
        site.send(raw)                                  # no 250: the MTA will retry
    proc.wait(10)
    site.serve()
    site.send(raw)                                      # the sender's retry
    site.wait(lambda: len(site.rows()) == 2 and all(s != "pending" and s != "processing"
                                                    for s, _ in site.rows()))
    assert sorted(s for s, _ in site.rows()) == ["done", "duplicate"]
    assert site.tickets() == 1
    relay.wait_for(CARLA)
    time.sleep(0.5)
    assert len(relay.to(CARLA)) == 1


def test_kill_after_250_before_routing_routes_exactly_once_after_restart(site, relay):
    """kill -9 of the whole daemon (processing in the serve process itself). The mail is
    held just before it is parsed and the daemon killed from outside once the client has
    its 250: a kill at the fault point itself raced the event loop writing that 250 (in
    one process the processing thread can reach the point first), and lost it once."""
    proc = site.serve("pipeline.before_parse=sleep:60", conf=site.one_process())
    site.send(make_mail(sender=CARLA, subject="Angenommen"))   # 250: it is ours now
    site.wait(lambda: site.rows()[0][0] == "processing")       # claimed, not yet parsed
    proc.kill()
    proc.wait(10)
    assert site.rows()[0][0] == "processing" and site.tickets() == 0
    site.serve()                                       # the lease runs out, it is taken up
    site.wait(lambda: site.rows()[0][0] == "done")
    assert site.tickets() == 1
    relay.wait_for(CARLA)
    time.sleep(0.5)
    assert len(relay.to(CARLA)) == 1


def test_a_killed_worker_is_started_again_and_its_mail_routed_once(site, relay):
    """kill -9 of the worker process mid-batch: the serve process starts a new one, which
    takes the mail up when its lease runs out."""
    proc = site.serve("pipeline.before_parse=kill")
    site.send(make_mail(sender=CARLA, subject="Angenommen"))   # 250: it is ours now
    site.wait(lambda: site.rows()[0][0] == "done")
    assert proc.poll() is None                         # the serve process never went down
    assert site.tickets() == 1
    relay.wait_for(CARLA)
    time.sleep(0.5)
    assert len(relay.to(CARLA)) == 1


def test_postgresql_going_away_answers_451_and_the_retry_is_stored_once(pg_url,
                                                                      harness_factory):
    from sqlalchemy.engine import make_url

    from tests.support.tcpproxy import TcpProxy

    url = make_url(pg_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    via_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(
        hide_password=False)
    h = harness_factory(via_proxy, database={"busy_timeout_seconds": 2.0}).start()
    raw = make_mail(sender=CARLA, subject="Datenbank weg")
    proxy.cut()
    try:
        with smtplib.SMTP("127.0.0.1", h.port, timeout=30) as smtp, \
                pytest.raises(smtplib.SMTPDataError) as err:
            smtp.sendmail(CARLA, [SUPPORT], raw)
        assert err.value.smtp_code == 451 and err.value.smtp_error.startswith(b"4.3.0")
        assert b"psycopg" not in err.value.smtp_error.lower()
    finally:
        proxy.restore()
    deadline = time.monotonic() + 30
    while True:                                         # the sending MTA retries
        try:
            h.send(raw)
            break
        except smtplib.SMTPDataError as exc:
            assert exc.smtp_code == 451
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    h.settle()
    assert len(h.inbound()) == 1 and h.inbound()[0].state in ("done", "unassigned")
    proxy.cut()


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB file system of our own (tmpfs), so filling it harms nothing else."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        from tests.conftest import require_service

        require_service(f"cannot mount a tmpfs for the disk-full test: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_answers_452_and_the_database_stays_sound(small_disk, harness_factory):
    h = harness_factory(f"sqlite:///{small_disk}/mailgate.db").start()
    filler = small_disk / "filler"
    with filler.open("wb") as f:                 # leave almost nothing free
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    big = make_mail(sender=CARLA, subject="Groß", body="x" * 400_000)
    with smtplib.SMTP("127.0.0.1", h.port, timeout=30) as smtp, \
            pytest.raises(smtplib.SMTPDataError) as err:
        smtp.sendmail(CARLA, [SUPPORT], big)
    assert err.value.smtp_code == 452 and err.value.smtp_error.startswith(b"4.3.1")
    filler.unlink()
    h.send(big)                                  # space again: the retry is stored
    h.settle()
    assert len(h.inbound()) == 1
    with sqlite3.connect(small_disk / "mailgate.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_sigterm_lets_a_mail_in_data_finish_and_refuses_new_sessions_with_421(site):
    proc = site.serve()
    smtp = in_data(site.port, b"mitten drin")
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    with socket.create_connection(("127.0.0.1", site.port), timeout=5) as late:
        assert late.recv(100).startswith(b"421")
    smtp.send(b"letzte Zeile\r\n.\r\n")
    assert smtp.getreply()[0] == 250                 # the mail in flight is accepted …
    smtp.close()
    assert proc.wait(30) == 0                         # … and the daemon exits cleanly
    assert len(site.rows()) == 1                      # stored exactly once


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_a_2_mb_line_without_lf_is_refused_with_500_and_memory_stays_flat(site):
    proc = site.serve()
    site.send(make_mail(sender=CARLA, subject="warm up"))
    before = _rss_mb(proc.pid)
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", site.port), timeout=30) as s:
            stream = s.makefile("rb")
            stream.readline()
            s.sendall(b"EHLO x\r\nMAIL FROM:<a@client.example>\r\n"
                      b"RCPT TO:<support@example.com>\r\nDATA\r\n")
            replies = b""
            while b"354" not in replies:
                replies += stream.readline()
            s.sendall(b"Subject: long\r\n\r\n" + b"A" * 2 * 1024 * 1024)   # no line end
            s.sendall(b"\r\n.\r\n")
            reply = stream.readline()
            assert reply.startswith(b"500"), reply
    growth = _rss_mb(proc.pid) - before
    assert growth < 30, f"RSS grew {growth:.0f} MB"
    assert len(site.rows()) == 1                          # only the warm-up mail
