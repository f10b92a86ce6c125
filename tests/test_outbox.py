"""Outgoing mail waits in the outbox until the relay takes it."""

from __future__ import annotations

import json
import time

import pytest
from sqlmodel import select

from store.models import Outbox
from tests.support.harness import make_mail
from tests.support.relay import RelaySink

CARLA = "carla@client.example"


def outbox(h) -> list[Outbox]:
    with h.app.db.unit(write=False) as s:
        return list(s.exec(select(Outbox).order_by(Outbox.id)))


def wait(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_a_4xx_from_the_relay_is_retried_with_backoff_until_accepted(mg):
    mg.relay.fail("RCPT", "451 4.7.1 greylisted, come back later", times=4)
    mg.send(make_mail(sender=CARLA, subject="grey"))
    (ack,) = mg.relay.wait_for(CARLA)
    mg.relay.wait_for("anna@agency.example")
    # the relay has the mail a moment before the outbox row says so
    wait(lambda: all(r.state == "sent" for r in outbox(mg)))
    rows = outbox(mg)
    assert sum(r.attempts for r in rows) == len(rows) + 4      # four refusals, then success
    assert all("greylisted" in r.last_error for r in rows if r.attempts > 1)
    first, last = rows[0].created_at, max(r.sent_at for r in rows)
    assert (last - first).total_seconds() >= 0.2                # waited for the backoff
    assert ack.subject.endswith("grey")


def test_a_5xx_marks_the_mail_failed_and_retry_sends_it(mg):
    mg.relay.fail("RCPT", "550 5.1.1 no such user", times=1)
    mg.send(make_mail(sender=CARLA, subject="bounce me"))
    wait(lambda: any(r.state == "failed" for r in outbox(mg)))
    failed = [r for r in outbox(mg) if r.state == "failed"]
    assert len(failed) == 1 and failed[0].attempts == 1
    assert "550 5.1.1 no such user" in failed[0].last_error
    listed = json.loads(mg.cli("outbox", "list", "--state", "failed", "--json").out)
    assert [r["id"] for r in listed] == [failed[0].id]
    assert mg.cli("outbox", "retry", str(failed[0].id)).code == 0
    mg.relay.wait_for(failed[0].rcpt)
    wait(lambda: all(r.state == "sent" for r in outbox(mg)))


def test_a_connection_lost_after_the_final_dot_resends_the_same_message_id(mg):
    mg.relay.fail("DATA", "DISCONNECT", times=1)
    mg.send(make_mail(sender=CARLA, subject="again"))
    (delivered,) = mg.relay.wait_for(CARLA)
    assert len(mg.relay.dropped) == 1
    assert delivered.header("Message-ID") == mg.relay.dropped[0].message["Message-ID"]
    assert delivered.raw == mg.relay.dropped[0].raw


def test_a_relay_that_is_down_keeps_mail_pending(harness_factory, sqlite_url, relay):
    relay.stop()   # nothing listens on the relay port now
    h = harness_factory(sqlite_url).start()
    assert h.cli("project", "add", "acme", "--name", "A", "--customer", CARLA).code == 0
    h.send(make_mail(sender=CARLA))
    wait(lambda: any(r.attempts >= 2 for r in outbox(h)))
    (row,) = outbox(h)
    assert row.state == "pending" and "refused" in row.last_error.lower()
    relay.restart()   # the relay comes back: the mail goes out
    relay.wait_for(CARLA)


@pytest.fixture
def secure_relay(tmp_path):
    import ssl
    import subprocess

    key, crt = tmp_path / "relay.key", tmp_path / "relay.crt"
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                           "-keyout", str(key), "-out", str(crt), "-days", "2", "-subj",
                           "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                          capture_output=True, text=True)
    if made.returncode != 0:
        from tests.conftest import require_service

        require_service(f"openssl cannot make a certificate: {made.stderr[-200:]}")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(crt), str(key))
    sink = RelaySink(tls_context=context, logins={"mailgate": "relay-pw"}).start()
    yield sink, crt
    sink.stop()


def test_starttls_and_auth_to_the_relay(harness_factory, sqlite_url, secure_relay):
    sink, crt = secure_relay
    h = harness_factory(sqlite_url, outbound={"port": sink.port, "starttls": True,
                                              "tls_ca_file": str(crt),
                                              "username": "mailgate",
                                              "password": "relay-pw"}).start()
    assert h.cli("project", "add", "acme", "--name", "A", "--customer", CARLA).code == 0
    h.send(make_mail(sender=CARLA, subject="sicher"))
    h.settle()
    (ack,) = sink.wait_for(CARLA)
    assert "sicher" in ack.subject and sink.authenticated == ["mailgate"]


def test_a_wrong_relay_password_keeps_mail_pending(harness_factory, sqlite_url, secure_relay):
    sink, crt = secure_relay
    h = harness_factory(sqlite_url, outbound={"port": sink.port, "starttls": True,
                                              "tls_ca_file": str(crt),
                                              "username": "mailgate",
                                              "password": "wrong"}).start()
    assert h.cli("project", "add", "acme", "--name", "A", "--customer", CARLA).code == 0
    h.send(make_mail(sender=CARLA, subject="sicher"))
    wait(lambda: any(r.attempts >= 1 and r.last_error for r in outbox(h)))
    (row,) = outbox(h)
    assert row.state == "pending" and "relay login failed" in row.last_error
    assert sink.messages == []
