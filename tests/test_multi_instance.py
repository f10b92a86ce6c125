"""Several instances on one PostgreSQL, exactly once.

Three real `mailgate serve` processes (their own SMTP ports, one database, one relay
sink) take a load of mail at once: copies of one mail sent to two instances, mails
without a Message-ID, replies racing the first mail of their thread to another
instance. One instance is killed with SIGKILL mid-load and started again. Afterwards
every accepted mail is stored once, every thread has one ticket, nothing is lost and
every outbox mail went to the relay once (twice only for a mail the relay took just
before the kill, then with the same Message-ID). Timers run by two instances with a
fake clock fire once.
"""

from __future__ import annotations

import collections
import datetime as dt
import os
import signal
import smtplib
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import select

from mailgate.bootstrap import build_app
from mailgate.config import config_from_dict
from mailgate.edges.timed import one_instance
from mailgate.handlers.timers import run_reminders, run_timers
from scheduler.jobs import Job, run_job
from store.models import Event, Inbound, Message, Outbox, Ticket
from tests.support.harness import SUPPORT, base_config, make_mail, toml_dumps
from tests.support.relay import free_port

ROOT = Path(__file__).resolve().parent.parent
INSTANCES = 3
THREADS = 450          # a first mail and a reply sent at once to two instances: 900 mails
TWICE = 250            # one mail sent to two instances: 500 sends
NO_ID = 100            # mails without a Message-ID
SENDERS = 40           # few senders: their contacts are made by racing instances
CLIENTS = 12           # concurrent SMTP clients
OUTBOUND_BATCH = 10    # mails the killed instance may have in flight to the relay
PROJECT = "support+acme@example.com"


def _serve_config(url: str, relay_port: int, name: str, port: int) -> dict:
    return base_config(url, relay_port, **{
        "smtp": {"port": port},
        "server": {"instance": name},
        "outbound": {"lease_seconds": 8.0, "batch_size": OUTBOUND_BATCH},
        "processing": {"in_process": True, "parse_workers": 0, "poll_seconds": 0.5,
                       "lease_seconds": 8.0, "parse_timeout_seconds": 5.0},
        "mail": {"auto_reply_limit": 1000},
    })


class Site:
    """Three `mailgate serve` processes on one database."""

    def __init__(self, tmp_path: Path, url: str, relay_port: int) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MAILGATE_")}
        self.env["PYTHONPATH"] = str(ROOT)
        self.ports = [free_port() for _ in range(INSTANCES)]
        self.configs = []
        for i, port in enumerate(self.ports):
            path = tmp_path / f"mg{i}.toml"
            path.write_text(toml_dumps(_serve_config(url, relay_port, f"mg-{i}", port)))
            self.configs.append(path)
        self.procs: list[subprocess.Popen | None] = [None] * INSTANCES
        self.stopped: list[subprocess.Popen] = []
        data = _serve_config(url, relay_port, "test", 0)
        self.app = build_app(config_from_dict(data, source="test"), configure_logs=False)

    def cli(self, *args: str) -> None:
        done = subprocess.run([sys.executable, "-m", "mailgate", "--config",
                               str(self.configs[0]), *args], env=self.env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr

    def start(self, i: int) -> None:
        proc = subprocess.Popen([sys.executable, "-m", "mailgate", "--config",
                                 str(self.configs[i]), "serve"], env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.procs[i] = proc
        assert "SMTP on" in proc.stdout.readline(), f"instance {i} did not start"

    def kill(self, i: int) -> None:
        proc = self.procs[i]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        self.stopped.append(proc)

    def close(self) -> None:
        for proc in [p for p in self.procs if p is not None] + self.stopped:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
            proc.stdout.close()
        self.app.db.dispose()

    def send(self, i: int, raw: bytes, sender: str) -> int:
        """Hand one mail to instance `i` like an MTA with several MX hosts: on a refused
        connection or a lost one, try the next instance until one answers 250. Returns
        the instance that took it."""
        deadline = time.monotonic() + 60
        while True:
            try:
                with smtplib.SMTP("127.0.0.1", self.ports[i], timeout=30) as smtp:
                    smtp.sendmail(sender, [PROJECT], raw)
                return i
            except (OSError, smtplib.SMTPException):
                if time.monotonic() > deadline:
                    raise
                i = (i + 1) % INSTANCES
                time.sleep(0.05)

    def settle(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.app.db.unit(write=False) as s:
                busy = s.exec(select(func.count()).select_from(Inbound).where(
                    Inbound.state.in_(["pending", "processing"]))).one()
                sending = s.exec(select(func.count()).select_from(Outbox).where(
                    Outbox.state.in_(["pending", "sending"]))).one()
            if not busy and not sending:
                return
            time.sleep(0.25)
        raise AssertionError(f"not settled: {busy} mails in, {sending} out still waiting")


@pytest.fixture
def site(tmp_path, pg_url, relay):
    s = Site(tmp_path, pg_url, relay.port)
    yield s
    s.close()


def _load() -> list[tuple[str, bytes, str, list[int]]]:
    """(what, bytes, sender, instances to send it to), interleaved so the parts of one
    thread and the copies of one mail go out at the same moment."""
    sends = []
    for n in range(THREADS):
        sender = f"c{n % SENDERS}@client.example"
        root_id = f"<root-{n}@client.example>"
        first = make_mail(sender=sender, to=PROJECT, subject=f"thread {n}",
                          body=f"first of thread {n}", msgid=root_id)
        reply = make_mail(sender=sender, to=PROJECT, subject=f"Re: thread {n}",
                          body=f"reply in thread {n}", msgid=f"<reply-{n}@client.example>",
                          headers={"In-Reply-To": root_id, "References": root_id})
        # every other reply goes first: it may open the ticket before its first mail
        pair = [(f"thread {n}", first, sender, [n % INSTANCES]),
                (f"Re: thread {n}", reply, sender, [(n + 1) % INSTANCES])]
        sends.extend(reversed(pair) if n % 2 else pair)
    for n in range(TWICE):
        sender = f"c{n % SENDERS}@client.example"
        raw = make_mail(sender=sender, to=PROJECT, subject=f"twice {n}", body=f"twice {n}")
        sends.append((f"twice {n}", raw, sender, [n % INSTANCES, (n + 1) % INSTANCES]))
    for n in range(NO_ID):
        sender = f"c{n % SENDERS}@client.example"
        raw = make_mail(sender=sender, to=PROJECT, subject=f"no id {n}", body=f"no id {n}")
        raw = b"".join(line for line in raw.splitlines(keepends=True)
                       if not line.lower().startswith(b"message-id:"))
        sends.append((f"no id {n}", raw, sender, [n % INSTANCES]))
    return sends


def test_three_instances_store_and_send_everything_once_through_a_sigkill(site, relay):
    site.start(0)
    site.cli("project", "add", "acme", "--name", "ACME Corp")
    for i in range(1, INSTANCES):
        site.start(i)
    load = _load()
    jobs = [(what, raw, sender, i) for what, raw, sender, targets in load for i in targets]
    half = threading.Event()
    done = 0
    lock = threading.Lock()

    def send(job) -> None:
        nonlocal done
        _what, raw, sender, i = job
        site.send(i, raw, sender)
        with lock:
            done += 1
            if done == len(jobs) // 2:
                half.set()

    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(send, job) for job in jobs]
        assert half.wait(120)
        site.kill(1)                     # mid-load, with work claimed and mail in flight
        time.sleep(1.0)
        site.start(1)
        for f in futures:
            f.result()
    sent_in = time.monotonic() - started
    site.settle(timeout=120)

    with site.app.db.unit(write=False) as s:
        messages = s.exec(select(Message.subject, Message.ticket_id, Message.message_id)
                          .where(Message.direction == "in")).all()
        states = collections.Counter(s.exec(select(Inbound.state)).all())
        tickets = s.exec(select(func.count()).select_from(Ticket)).one()
        outbox = s.exec(select(Outbox.message_id, Outbox.state)).all()
    # every mail stored once; the second copy of a mail sent twice is a duplicate
    stored = collections.Counter(subject for subject, _, _ in messages)
    assert set(stored) == {what for what, *_ in load}
    assert [k for k, n in stored.items() if n != 1] == []
    assert set(states) <= {"done", "duplicate"}, states
    assert states["duplicate"] >= TWICE
    # one ticket per thread, whichever part came first and to which instance
    ticket_of = {subject: ticket for subject, ticket, _ in messages}
    assert all(ticket_of[f"thread {n}"] == ticket_of[f"Re: thread {n}"]
               for n in range(THREADS))
    assert tickets == THREADS + TWICE + NO_ID
    # every outbox mail handed to the relay once, a re-send only with its Message-ID
    assert {state for _, state in outbox} <= {"sent", "dropped"}
    sent = {mid for mid, state in outbox if state == "sent"}
    relayed = collections.Counter(m.header("Message-ID").strip("<>") for m in relay.messages)
    assert set(relayed) == sent
    twice = [mid for mid, n in relayed.items() if n > 1]
    assert len(twice) <= OUTBOUND_BATCH and all(n == 2 for n in relayed.values() if n > 1)
    print(f"\n{len(jobs)} mails sent in {sent_in:.1f} s to {INSTANCES} instances, "
          f"{len(relayed)} mails relayed, {len(twice)} twice (in flight at the kill)")


# --- timers ---------------------------------------------------------------------------------


class FakeClock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def test_timers_run_by_two_instances_with_a_fake_clock_fire_once(tmp_path, pg_url, relay):
    """Two instances run the workflow timers at the same fake moment, again and again:
    each ticket gets its reminder once, whichever instance ran the job."""
    clock = FakeClock(dt.datetime.now(dt.UTC))
    tomorrow = clock.now.date() + dt.timedelta(days=1)
    apps = [build_app(config_from_dict(base_config(pg_url, relay.port, **{
        "server": {"instance": f"mg-{i}"}}), source="test"), clock=clock,
        configure_logs=False) for i in range(2)]
    from tests.support.harness import Harness
    h = Harness(tmp_path / "h", pg_url, relay, clock=clock,
                processing={"in_process": True, "parse_workers": 0}).start()
    try:
        assert h.cli("project", "add", "acme", "--name", "ACME Corp",
                     "--customer", "carla@client.example").code == 0
        for n in range(6):
            h.send(make_mail(sender="carla@client.example", subject=f"due {n}",
                             body="Bitte bis morgen."), rcpt=SUPPORT)
        h.settle()
        numbers = [t.id for t in h.tickets()]
        assert len(numbers) == 6
        with h.app.db.unit() as s:         # due tomorrow (as a /due command sets it)
            for t in s.exec(select(Ticket)):
                t.due_date = tomorrow
        clock.now += dt.timedelta(days=1, hours=1)

        def timers(app):
            def run() -> str:
                moved = run_timers(app, now=app.now())
                return f"{len(moved)} moved, {len(run_reminders(app, now=app.now()))} sent"
            return Job("workflow-timers", 900, one_instance(app, "workflow-timers", run),
                       blocking=True)

        barrier = threading.Barrier(2)

        def turns(app) -> None:
            for _ in range(3):
                barrier.wait(10)
                run_job(timers(app), on_error=lambda _n, exc: pytest.fail(str(exc)),
                        clock=clock)

        threads = [threading.Thread(target=turns, args=(app,)) for app in apps]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        with h.app.db.unit(write=False) as s:
            reminded = collections.Counter(s.exec(select(Event.ticket_id).where(
                Event.kind == "due-reminder")).all())
        assert reminded == dict.fromkeys(numbers, 1)
    finally:
        h.stop()
        for app in apps:
            app.db.dispose()


# --- one sender's mails in arrival order -----------------------------------------------------


def test_a_senders_newer_mail_waits_while_another_instance_holds_the_older(pg_url, relay):
    """Two instances claiming from one inbox: x's second mail is not taken while x's
    first is in another instance's batch, and is taken once that one is applied; other
    senders' mail (and bounces, with the null sender) is not held back."""
    from store import inbox

    app = build_app(config_from_dict(base_config(pg_url, relay.port), source="test"),
                    configure_logs=False)
    now, lease = dt.datetime.now(dt.UTC), dt.timedelta(seconds=60)

    def claim(limit: int = 10, at: dt.datetime = now) -> list[str]:
        with app.db.unit() as s:
            ids = inbox.claim_inbound(session=s, now=at, lease=lease, limit=limit)
            return [s.get(Inbound, i).reason for i in ids]

    try:
        with app.db.unit() as s:
            for name, sender in (("x1", "x@c.example"), ("y1", "y@c.example"),
                                 ("x2", "x@c.example"), ("z1", "")):
                s.add(Inbound(raw=b"Subject: t\r\n\r\nhi\r\n", mail_from=sender,
                              rcpt_tos=[SUPPORT], reason=name))
        assert claim(limit=1) == ["x1"]                 # instance A
        assert claim() == ["y1", "z1"]                  # instance B: x2 waits for x1
        with app.db.unit() as s:                        # A applies x1
            x1 = s.exec(select(Inbound.id).where(Inbound.reason == "x1")).one()
            inbox.finish(session=s, rows=[{"row_id": x1, "state": "done", "reason": "x1"}],
                         now=now)
        assert claim() == ["x2"]
    finally:
        app.db.dispose()


# --- one instance per IMAP mailbox -----------------------------------------------------------


def test_one_imap_mailbox_is_fetched_by_one_instance_and_another_takes_over(
        tmp_path, pg_url, relay, dovecot):
    """Two instances configured with the same mailbox: one fetches, the other stands by;
    when the one that fetches stops, the other goes on with the mail still waiting."""
    from tests.support.harness import Harness
    from tests.test_imap import imap_box, wait_until

    box = imap_box(dovecot)
    first, second = (Harness(tmp_path / name, pg_url, relay, server={"instance": name},
                             imap=[box], processing={"in_process": True, "parse_workers": 0})
                     for name in ("mg-a", "mg-b"))
    try:
        first.start()
        assert first.cli("project", "add", "acme", "--name", "ACME",
                         "--customer", "carla@client.example").code == 0
        second.start()

        def taken_in() -> collections.Counter:
            return collections.Counter(r.instance for r in first.inbound())

        for n in range(5):
            dovecot.append("support", make_mail(sender="carla@client.example",
                                                subject=f"imap {n}"))
        wait_until(lambda: sum(taken_in().values()) == 5, what="five mails fetched")
        assert taken_in() == {"mg-a": 5}
        first.stop()
        for n in range(5, 8):
            dovecot.append("support", make_mail(sender="carla@client.example",
                                                subject=f"imap {n}"))
        wait_until(lambda: sum(taken_in().values()) == 8, what="three more fetched")
        assert taken_in() == {"mg-a": 5, "mg-b": 3}
        second.settle()
        assert len(second.tickets()) == 8
    finally:
        first.stop()
        second.stop()


def test_a_lease_is_one_holders_and_the_server_frees_it_when_the_holder_is_killed(pg_url):
    """A job's lease: a second holder is refused while the first lives; when the first
    process is killed (SIGKILL, no unlock), PostgreSQL frees it at once."""
    from store.db import Database
    from store.leases import Lease

    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from store.db import Database\nfrom store.leases import Lease\n"
        f"lease = Lease(Database({pg_url!r}), 'job:workflow-timers')\n"
        "print(lease.acquire(), flush=True)\ntime.sleep(60)\n")],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
    db = Database(pg_url)
    try:
        assert holder.stdout.readline().strip() == "True"
        mine = Lease(db, "job:workflow-timers")
        assert not mine.acquire()
        other = Lease(db, "job:retention")                    # other jobs are not held up
        assert other.acquire()
        other.release()
        holder.kill()
        holder.wait(10)
        deadline = time.monotonic() + 10
        while not mine.acquire():
            assert time.monotonic() < deadline, "the killed holder's lease stayed"
            time.sleep(0.1)
        assert mine.held()
        mine.release()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
        holder.stdout.close()
        db.dispose()
