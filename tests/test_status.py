"""`mailgate status`: the daemon at a glance, exit 1 when a person should look."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from mailgate.cli.status import Snapshot, needs_attention
from tests.support.harness import make_mail

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
QUIET = Snapshot(inbound={"done": 40, "unassigned": 3}, outbox={"sent": 80}, open_tickets=7)

# (snapshot, fragments of the lines expected; empty: nothing needs attention)
CASES = [
    (QUIET, []),
    (Snapshot(inbound={"quarantined": 2}, outbox={}, open_tickets=0),
     ["2 quarantined incoming mail(s): mailgate quarantine list"]),
    (Snapshot(inbound={}, outbox={"failed": 1}, open_tickets=0),
     ["1 outgoing mail(s) refused by the relay"]),
    # pending for a few minutes is normal (backoff); for hours it is not
    (Snapshot(inbound={}, outbox={"pending": 3}, open_tickets=0,
              oldest_pending_out=NOW - dt.timedelta(minutes=20)), []),
    (Snapshot(inbound={}, outbox={"pending": 3}, open_tickets=0,
              oldest_pending_out=NOW - dt.timedelta(hours=3),
              oldest_pending_error="connect: ConnectionRefusedError"),
     ["waited 3.0 hours for the relay (last error: connect: ConnectionRefusedError)"]),
    (Snapshot(inbound={}, outbox={}, open_tickets=0, mailboxes=(
        {"name": "a", "state": "idle", "error": ""},
        {"name": "b", "state": "auth-failed", "error": "login refused"},
        {"name": "c", "state": "never-ran", "error": ""})),
     ["mailbox b: auth-failed (login refused): mailgate imap status"]),
    (Snapshot(inbound={}, outbox={"dropped": 2}, open_tickets=0, dropped_today=2),
     ["2 outgoing mail(s) stopped by a loop or bounce guard in the last 24 hours: "
      "mailgate outbox list --state dropped"]),
]


@pytest.mark.parametrize(("snap", "expected"), CASES)
def test_what_needs_attention(snap, expected):
    found = needs_attention(snap, NOW)
    assert len(found) == len(expected)
    for line, fragment in zip(found, expected, strict=True):
        assert fragment in line


def test_status_of_a_running_mailgate_and_a_refused_mail(mg):
    mg.send(make_mail(sender="carla@client.example", subject="Alles gut"))
    mg.settle()
    mg.relay.wait_for("anna@agency.example")
    ok = mg.cli("status", "--json")
    assert ok.code == 0, ok.err
    data = json.loads(ok.out)
    assert (data["inbound"], data["outbox"], data["open_tickets"], data["attention"]) == (
        {"done": 1}, {"sent": 2}, 1, [])
    words = mg.cli("status")
    assert words.code == 0 and "open tickets: 1" in words.out
    assert "attention:    nothing" in words.out
    # the relay refuses the next acknowledgement for good: a person must look
    mg.relay.fail("RCPT", "550 5.1.1 no such user", times=1)
    mg.send(make_mail(sender="carla@client.example", subject="Noch was"))
    mg.settle()
    bad = mg.cli("status", "--json")
    assert bad.code == 1
    assert json.loads(bad.out)["attention"] == [
        "1 outgoing mail(s) refused by the relay: mailgate outbox list --state failed"]
