"""`mailgate trace`: a mail's whole path from the stored records, for a mail sent over
real SMTP (received, routing rule, ticket, the acknowledgement with its delivery state
after the relay sink took it), in text and JSON."""

from __future__ import annotations

import json

import pytest

from mailgate.cli.trace import bare_msgid
from tests.support.harness import make_mail

CARLA = "carla@client.example"


@pytest.fixture
def mx(harness_factory, db_url):
    h = harness_factory(db_url, server={"instance": "mx-test"}).start()
    assert h.cli("project", "add", "acme", "--name", "ACME Corp",
                 "--customer", CARLA).code == 0
    return h


@pytest.mark.parametrize(("given", "bare"), [
    ("<a.b@c.example>", "a.b@c.example"), ("a.b@c.example", "a.b@c.example"),
    ("  <a@b>  ", "a@b"), ("<broken@x", "<broken@x"),
])
def test_a_message_id_is_looked_up_with_or_without_angle_brackets(given, bare):
    assert bare_msgid(given) == bare


def test_trace_shows_received_rule_ticket_and_the_ack_as_the_relay_took_it(mx):
    mx.send(make_mail(sender=CARLA, subject="Printer on fire", msgid="<fire-1@client.example>"),
            mail_from=CARLA)
    mx.settle()
    mx.relay.wait_for(CARLA)
    mx.settle()
    got = mx.cli("trace", "<fire-1@client.example>", "--json")
    assert got.code == 0, got.err
    data = json.loads(got.out)
    inbound = data["inbound_id"]
    assert data["received"]["how"] == "smtp"
    assert data["received"]["instance"] == "mx-test"
    assert data["received"]["mail_from"] == CARLA
    assert data["received"]["size"] > 0 and data["received"]["raw_kept"]
    assert data["processing"]["state"] == "done"
    assert (data["routing"]["target"], data["routing"]["rule"]) == ("new_ticket",
                                                                    "sender-project")
    assert {"rule": "sender-project", "matched": True}.items() <= \
        data["routing"]["rules"][-1].items()
    number = data["ticket"]["number"]
    assert data["ticket"]["subject"] == "Printer on fire" and data["ticket"]["project"] == "acme"
    assert [e["kind"] for e in data["events"]] == ["created"]
    (ack,) = [o for o in data["sent"] if o["rcpt"] == CARLA]
    assert ack["state"] == "sent" and ack["attempts"] == 1 and ack["sent_at"]
    assert ack["relay_reply"].startswith("250")           # the relay sink's own answer
    assert ack["inbound_id"] == inbound

    text = mx.cli("trace", "fire-1@client.example")
    assert text.code == 0
    assert "over smtp by mx-test" in text.out
    assert f"ticket: #{number} Printer on fire (acme" in text.out
    assert f"{ack['kind']} to {CARLA}: sent, 1 attempt(s)" in text.out
    assert f"relay: {ack['relay_reply']}" in text.out

    # the acknowledgement's own Message-ID leads back to the mail that caused it
    back = json.loads(mx.cli("trace", f"<{ack['message_id']}>", "--json").out)
    assert back["via_outgoing"]["outbox_id"] == ack["outbox_id"]
    assert back["inbound_id"] == inbound
    assert json.loads(mx.cli("trace", str(inbound), "--json").out)["ticket"]["number"] == number


@pytest.mark.parametrize("unknown", ["<nobody@nowhere.example>", "999999"])
def test_an_unknown_mail_is_one_line_and_exit_1(harness_factory, sqlite_url, unknown):
    h = harness_factory(sqlite_url)
    got = h.cli("trace", unknown)
    assert got.code == 1 and got.out == ""
    assert len(got.err.strip().splitlines()) == 1 and "no mail" in got.err
