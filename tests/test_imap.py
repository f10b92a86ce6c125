"""IMAP ingest against a real Dovecot: exactly once, through crashes, resets and outages."""

from __future__ import annotations

import json
import os
import select as fdselect
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import select

from mailgate.edges.imap_wake import StopEvent
from store.models import Inbound
from tests.conftest import require_service
from tests.support.harness import SUPPORT, make_mail, toml_dumps, wait_until
from tests.support.imapserver import Dovecot, DovecotUnavailable

pytestmark = pytest.mark.dovecot

CARLA = "carla@client.example"
ANNA = "anna@agency.example"
ROOT = Path(__file__).resolve().parent.parent


def imap_box(dovecot, **overrides) -> dict:
    box = {"name": "inbox", "host": dovecot.host, "port": dovecot.port, "tls": "none",
           "user": "support", "password": "secret-pw", "poll_seconds": 0.3, "idle": True,
           "batch_size": 50}
    box.update(overrides)
    return box


def running(harness_factory, db_url, *boxes):
    h = harness_factory(db_url, imap=list(boxes)).start()
    assert h.cli("project", "add", "acme", "--name", "ACME", "--customer", CARLA).code == 0
    assert h.cli("agent", "add", ANNA, "--name", "Anna Agent").code == 0
    return h


def test_new_mail_becomes_a_ticket_and_is_moved_after_it_is_stored(dovecot, db_url,
                                                                      harness_factory):
    h = running(harness_factory, db_url, imap_box(dovecot))
    dovecot.append("support", make_mail(sender=CARLA, subject="Per IMAP"))
    wait_until(lambda: h.tickets(), what="a ticket")
    h.settle()
    (ticket,) = h.tickets()
    assert ticket.subject == "Per IMAP"
    wait_until(lambda: dovecot.uids("support") == [], what="the move")
    assert len(dovecot.uids("support", "mailgate-processed")) == 1
    (ack,) = h.relay.wait_for(CARLA)
    assert f"[#{ticket.id}]" in ack.subject
    (row,) = h.inbound()
    assert row.source == "imap:inbox" and row.rcpt_tos == [SUPPORT]
    status = json.loads(h.cli("imap", "status", "--json").out)
    assert status[0]["state"] in ("ok", "idle") and status[0]["stored"] == 1


def test_a_reply_fetched_by_imap_threads_like_smtp_and_plus_addresses_route(dovecot,
                                                                           harness_factory,
                                                                           sqlite_url):
    h = running(harness_factory, sqlite_url, imap_box(dovecot))
    h.send(make_mail(sender=CARLA, subject="Erst SMTP", msgid="<first@client.example>"))
    h.settle()
    (ack,) = h.relay.wait_for(CARLA)
    reply = make_mail(sender=CARLA, subject="Re: " + ack.subject, body="Noch eine Frage.",
                      headers={"In-Reply-To": ack.header("Message-ID"),
                               "References": ack.header("Message-ID")})
    dovecot.append("support", reply)
    # a mail whose Delivered-To names a project address routes there, from anyone
    other = make_mail(sender="neu@else.example", subject="Projektpost",
                      headers={"Delivered-To": "support+acme@example.com"})
    dovecot.append("support", other)
    wait_until(lambda: len(h.inbound()) == 3, what="both IMAP mails")
    h.settle()
    tickets = h.tickets()
    assert [t.subject for t in tickets] == ["Erst SMTP", "Projektpost"]
    shown = json.loads(h.cli("ticket", "show", str(tickets[0].id), "--json").out)
    assert [m["text"] for m in shown["messages"]][-1] == "Noch eine Frage."


def test_the_same_mail_by_smtp_and_imap_is_one_ticket(dovecot, db_url, harness_factory):
    h = running(harness_factory, db_url, imap_box(dovecot))
    raw = make_mail(sender=CARLA, subject="Doppelt", msgid="<twice@client.example>")
    h.send(raw)
    dovecot.append("support", b"Delivered-To: support@example.com\r\n" + raw)
    wait_until(lambda: len(h.inbound()) == 2, what="both copies")
    h.settle()
    assert len(h.tickets()) == 1
    assert sorted(r.state for r in h.inbound()) == ["done", "duplicate"]
    assert len(h.relay.wait_for(CARLA)) == 1                # one acknowledgement


def test_a_uidvalidity_reset_causes_no_duplicate_and_no_loss(dovecot, harness_factory,
                                                            sqlite_url):
    h = running(harness_factory, sqlite_url, imap_box(dovecot, after="flag"))
    dovecot.append("support", make_mail(sender=CARLA, subject="Vorher"))
    wait_until(lambda: len(h.inbound()) == 1, what="the first mail")
    h.settle()
    old = dovecot.uidvalidity("support")
    # the server loses its UID list, and the mail comes back unread under new UIDs
    dovecot.reset_uidvalidity("support")
    assert dovecot.uidvalidity("support") != old
    imap = dovecot.client("support")
    imap.select("INBOX")
    imap.uid("store", "1:*", "-FLAGS", "(\\Seen)")
    imap.logout()
    dovecot.append("support", make_mail(sender=CARLA, subject="Nachher"))
    wait_until(lambda: len([r for r in h.inbound() if r.state != "pending"]) == 3,
               what="the refetch", timeout=30)
    h.settle()
    assert sorted(t.subject for t in h.tickets()) == ["Nachher", "Vorher"]
    assert sorted(r.state for r in h.inbound()) == ["done", "done", "duplicate"]
    assert all("\\Seen" in f for f in dovecot.flags("support").values())


def test_a_wrong_password_is_reported_and_other_mailboxes_keep_working(dovecot,
                                                                       harness_factory,
                                                                       sqlite_url):
    dovecot.add_user("sales", "right")
    bad = imap_box(dovecot, name="sales", user="sales", password="wrong")
    h = running(harness_factory, sqlite_url, bad, imap_box(dovecot))
    dovecot.append("support", make_mail(sender=CARLA, subject="Trotzdem"))
    wait_until(lambda: h.tickets(), what="the good mailbox")

    def states():
        return {r["name"]: r for r in json.loads(h.cli("imap", "status", "--json").out)}

    wait_until(lambda: states()["sales"]["state"] == "auth-failed", what="auth-failed")
    assert "login refused for sales" in states()["sales"]["error"]
    result = h.cli("imap", "status")
    assert result.code == 1 and "auth-failed" in result.out
    tested = h.cli("imap", "test")
    assert tested.code == 1
    assert "sales: FAILED: login refused" in tested.out and "inbox: ok" in tested.out


def test_the_server_going_away_mid_poll_is_survived(dovecot, harness_factory, sqlite_url):
    h = running(harness_factory, sqlite_url, imap_box(dovecot, idle=False))

    def inbox() -> dict:
        return json.loads(h.cli("imap", "status", "--json").out)[0]

    dovecot.append("support", make_mail(sender=CARLA, subject="Eins"))
    wait_until(lambda: len(h.tickets()) == 1, what="the first mail")
    # every server process at once, the one serving mailgate's session too (a graceful
    # `dovecot stop` leaves running sessions alone: mailgate would not notice)
    dovecot.kill()
    # mailgate really polls into the dead server: it says so, and keeps trying
    wait_until(lambda: inbox()["state"] == "error", what="the outage reported")
    assert inbox()["error"]
    dovecot.start()
    dovecot.append("support", make_mail(sender=CARLA, subject="Zwei"))
    wait_until(lambda: len(h.tickets()) == 2, what="the mail after the restart", timeout=30)
    wait_until(lambda: inbox()["state"] == "ok", what="the mailbox ok again")


def test_a_backlog_is_worked_through_in_batches(dovecot, harness_factory, sqlite_url):
    imap = dovecot.client("support")
    for n in range(120):
        imap.append("INBOX", None, None, make_mail(sender=f"c{n}@else.example",
                                                   subject=f"Alt {n}"))
    imap.logout()
    h = running(harness_factory, sqlite_url, imap_box(dovecot, batch_size=25))
    wait_until(lambda: len(h.inbound()) == 120, what="the backlog", timeout=60)
    wait_until(lambda: dovecot.uids("support") == [], what="the moves")
    h.settle(timeout=60)
    assert len(dovecot.uids("support", "mailgate-processed")) == 120
    assert {r.state for r in h.inbound()} == {"unassigned"}


def test_a_crash_between_store_and_move_stores_the_mail_once(dovecot, tmp_path, relay):
    config = tmp_path / "mailgate.toml"
    config.write_text(toml_dumps({
        "database": {"url": f"sqlite:///{tmp_path}/mg.db"},
        "smtp": {"port": 0},
        "mail": {"secret": "s3cret"},
        "outbound": {"port": relay.port, "retry_min_seconds": 0.2, "retry_max_seconds": 1.0},
        "processing": {"parse_workers": 0, "poll_seconds": 0.2},
        "imap": [imap_box(dovecot)],
    }))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILGATE_")}
    env["PYTHONPATH"] = str(ROOT)
    subprocess.run([sys.executable, "-m", "mailgate", "--config", str(config), "project", "add",
                    "acme", "--name", "ACME", "--customer", CARLA], env=env, check=True,
                   capture_output=True, timeout=60)
    dovecot.append("support", make_mail(sender=CARLA, subject="Absturz"))
    crashed = subprocess.Popen([sys.executable, "-m", "mailgate", "--config", str(config),
                                "serve"], env=env | {"MAILGATE_FAULTS": "imap.after_commit=kill"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert crashed.wait(timeout=60) == -9                   # killed right after the commit
    assert len(dovecot.uids("support")) == 1                 # not moved: it will come again
    serve = subprocess.Popen([sys.executable, "-m", "mailgate", "--config", str(config),
                              "serve"], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: dovecot.uids("support") == [], what="the move", timeout=30)
        relay.wait_for(CARLA)
    finally:
        serve.terminate()
        serve.wait(timeout=30)
    from store.db import Database

    db = Database(f"sqlite:///{tmp_path}/mg.db")
    with db.unit(write=False) as s:
        rows = list(s.exec(select(Inbound)))
    db.dispose()
    assert len(rows) == 1 and rows[0].state == "done"
    assert len(relay.to(CARLA)) == 1


def test_our_own_mail_in_a_fetched_folder_is_dropped(dovecot, sqlite_url, harness_factory):
    """A Sent folder (or a forwarding loop) hands our own mail back: it is dropped."""
    h = running(harness_factory, sqlite_url, imap_box(dovecot))
    h.send(make_mail(sender=CARLA, subject="Schleife?"))
    h.settle()
    (ack,) = h.relay.wait_for(CARLA)
    dovecot.append("support", ack.raw)
    wait_until(lambda: len(h.inbound()) == 2 and h.inbound()[1].state != "pending",
               what="the copy")
    h.settle()
    assert h.inbound()[1].state == "dropped" and "loop" in h.inbound()[1].reason
    assert len(h.tickets()) == 1 and len(h.relay.to(CARLA)) == 1


def test_mail_from_an_address_configured_as_a_channel_is_dropped(dovecot, sqlite_url,
                                                                harness_factory):
    """An agent's own mailbox used as a channel holds the agent's sent copies too."""
    h = running(harness_factory, sqlite_url, imap_box(dovecot, address="anna@agency.example"))
    dovecot.append("support", make_mail(sender=ANNA, to=CARLA, subject="Gesendet"))
    dovecot.append("support", make_mail(sender=CARLA, to=ANNA, subject="An Anna"))
    wait_until(lambda: len(h.inbound()) == 2, what="both mails")
    h.settle()
    states = {r.state for r in h.inbound()}
    assert "dropped" in states and len(h.tickets()) == 1


@pytest.mark.parametrize("mode", ["ssl", "starttls"])
def test_fetching_over_tls(mode, sqlite_url, harness_factory):
    try:
        server = Dovecot(tls=True)
        server.add_user("support", "secret-pw")
        server.start()
    except DovecotUnavailable as exc:
        require_service(str(exc))
    try:
        box = imap_box(server, tls=mode, tls_ca_file=server.cert_file,
                       port=server.imaps_port if mode == "ssl" else server.port)
        h = running(harness_factory, sqlite_url, box)
        server.append("support", make_mail(sender=CARLA, subject=f"über {mode}"))
        wait_until(lambda: h.tickets(), what="the ticket")
        assert h.tickets()[0].subject == f"über {mode}"
        assert h.cli("imap", "test").code == 0
        h.stop()
    finally:
        server.cleanup()


def test_stopping_wakes_a_fetcher_waiting_in_idle_at_once():
    """The IDLE wait polls the socket and this pipe: a stop ends it without a timeout."""
    stop = StopEvent()
    with stop.wakeup() as fd:
        assert fdselect.select([fd], [], [], 0)[0] == []
        stop.set()
        assert fdselect.select([fd], [], [], 0)[0] == [fd]
    with stop.wakeup() as fd:                  # stopped before the wait began: no wait
        assert fdselect.select([fd], [], [], 0)[0] == [fd]
