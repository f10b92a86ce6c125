"""Agents are never silenced by loop protection, their automatic mail stays inside, and
a mail a guard stops is never silent: end to end over SMTP."""

from __future__ import annotations

import datetime as dt
import json

from tests.support.harness import make_mail, reply_to

CARLA = "carla@client.example"
ANNA = "anna@agency.example"


class FakeClock:
    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now


def test_an_agent_gets_all_300_notifications_of_a_day(harness_factory, db_url):
    """300 new tickets spread over one (fake-clock) day: Anna is told of every one,
    while the per-address cap (3 here) would have silenced any outside address. The fake
    clock needs the worker in process, not SQLite: both databases."""
    clock = FakeClock(dt.datetime(2026, 12, 1, 0, 0, tzinfo=dt.UTC))
    h = harness_factory(db_url, clock=clock, mail={"auto_reply_limit": 3},
                        processing={"in_process": True}).start()
    assert h.cli("project", "add", "acme", "--name", "ACME").code == 0
    assert h.cli("agent", "add", ANNA, "--name", "Anna").code == 0
    for n in range(300):
        clock.now += dt.timedelta(minutes=4, seconds=48)        # 300 of them make a day
        h.send(make_mail(sender=f"kunde{n}@client.example", to="support+acme@example.com",
                         subject=f"Anfrage {n}"), rcpt="support+acme@example.com")
        if n % 50 == 49:
            h.settle()
    h.settle()
    assert len(h.tickets()) == 300
    assert len(h.relay.wait_for(ANNA, 300)) == 300
    dropped = json.loads(h.cli("outbox", "list", "--state", "dropped", "--json").out)
    assert dropped == []


def test_an_agents_out_of_office_reply_reaches_no_customer(mg):
    mg.send(make_mail(sender=CARLA, subject="Drucker", body="Er druckt nicht."))
    mg.settle()
    (notification,) = mg.relay.wait_for(ANNA)
    reply = reply_to(notification.message, sender=ANNA,
                     body="Ich bin bis Montag nicht im Büro.")
    reply = reply.replace(b"\nSubject:", b"\nAuto-Submitted: auto-replied\nSubject:", 1)
    mg.send(reply, rcpt=notification.message["Reply-To"].addresses[0].addr_spec,
            mail_from=ANNA)
    mg.settle()
    n = mg.tickets()[0].id
    shown = json.loads(mg.cli("ticket", "show", str(n), "--json").out)
    assert [m["direction"] for m in shown["messages"]] == ["in", "internal"]
    assert len(mg.relay.to(CARLA)) == 1                     # the acknowledgement only
    assert not any("nicht im Büro" in m.text for m in mg.relay.to(CARLA))


def test_a_mail_a_guard_stops_shows_on_its_ticket_and_in_status(mg):
    """Carla's address bounced hard: the next acknowledgement is stopped, and both the
    ticket's log and `mailgate status` say so."""
    from tests.test_loops import dsn

    mg.send(make_mail(sender=CARLA, subject="Erstes"))
    mg.settle()
    (ack,) = mg.relay.wait_for(CARLA)
    mg.send(dsn(ack.mail_from, CARLA, "5.1.1"), rcpt=ack.mail_from, mail_from="")
    mg.settle()
    assert mg.cli("status").code == 0                       # a bounce alone is no alarm
    mg.send(make_mail(sender=CARLA, subject="Zweites"))
    mg.settle()
    second = json.loads(mg.cli("ticket", "show", str(mg.tickets()[-1].id), "--json").out)
    stopped = [e for e in second["events"] if e["kind"] == "mail-suppressed"]
    assert stopped and "bounced" in stopped[0]["detail"]
    status = mg.cli("status", "--json")
    assert status.code == 1
    (line,) = [a for a in json.loads(status.out)["attention"] if "stopped by" in a]
    assert line.startswith("1 outgoing mail(s) stopped")
    (row,) = json.loads(mg.cli("outbox", "list", "--state", "dropped", "--json").out)
    assert row["rcpt"] == CARLA and row["kind"] == "ack"
