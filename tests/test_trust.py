"""Who may steer a ticket: sender verification through our own MTA's Authentication-Results,
forwarded notifications, duplicate command mail. Tables plus end-to-end over SMTP."""

from __future__ import annotations

import json

import pytest

from routing.trust import sender_verified
from tests.support.harness import make_mail, reply_to

ID = "mx.agency.example"
CARLA = "carla@client.example"
ANNA = "anna@agency.example"

# (Authentication-Results values, top first; expected ok; words in the reason)
CASES = [
    ([f"{ID}; dkim=pass header.d=agency.example; spf=pass"], True, "dkim=pass"),
    ([f"{ID}; dmarc=pass header.from=agency.example"], True, "dmarc=pass"),
    ([f"{ID}; dkim=pass header.d=mail.agency.example"], True, "dkim=pass"),
    ([f"{ID}; dkim=pass header.i=@agency.example"], True, "dkim=pass"),
    ([f"{ID}; dkim=fail header.d=agency.example; dmarc=fail"], False, "dkim=fail"),
    ([f"{ID}; spf=pass smtp.mailfrom=agency.example"], False, "spf=pass"),
    ([f"{ID}; dkim=pass header.d=evil.example"], False, "did not see"),
    # the sender's own claim, with another id or below ours, is ignored
    (["evil.example; dkim=pass header.d=agency.example"], False, "no Authentication"),
    ([f"{ID}; dkim=none", f"{ID}; dkim=pass header.d=agency.example"], False, "dkim=none"),
    ([], False, "no Authentication-Results"),
]


@pytest.mark.parametrize(("values", "ok", "words"), CASES)
def test_sender_verification(values, ok, words):
    headers = [("Authentication-Results", v) for v in values]
    verdict = sender_verified(headers, authserv_id=ID, from_domain="agency.example")
    assert verdict.ok is ok and words in verdict.reason


@pytest.fixture
def guarded(harness_factory, sqlite_url):
    h = harness_factory(sqlite_url, mail={"trusted_authserv_id": ID}).start()
    assert h.cli("project", "add", "acme", "--name", "ACME", "--customer", CARLA).code == 0
    assert h.cli("agent", "add", ANNA, "--name", "Anna Agent").code == 0
    h.send(make_mail(sender=CARLA, subject="Drucker"))
    h.settle()
    return h


def agent_reply(h, body: str, auth: str | None) -> None:
    note = h.relay.wait_for(ANNA)[0]
    raw = reply_to(note.message, sender=ANNA, body=body)
    if auth is not None:
        raw = f"Authentication-Results: {auth}\r\n".encode() + raw
    h.send(raw, rcpt=note.message["Reply-To"].addresses[0].addr_spec, mail_from=ANNA)
    h.settle()


def show(h) -> dict:
    return json.loads(h.cli("ticket", "show", str(h.tickets()[0].id), "--json").out)


def test_a_verified_agent_command_applies(guarded):
    agent_reply(guarded, "/status waiting\nBitte Foto.", f"{ID}; dkim=pass header.d=agency.example")
    assert show(guarded)["status"] == "waiting"
    assert "Bitte Foto." in guarded.relay.wait_for(CARLA, 2)[1].text


def test_an_unverified_agent_mail_runs_nothing_and_never_reaches_the_customer(guarded):
    agent_reply(guarded, "/status closed\nAlles erledigt, Rechnung folgt.",
                "evil.example; dkim=pass header.d=agency.example")
    data = show(guarded)
    assert data["status"] == "new"
    assert data["messages"][-1]["direction"] == "internal"
    assert len(guarded.relay.to(CARLA)) == 1                # only the acknowledgement
    told = guarded.relay.wait_for(ANNA, 2)[1]
    assert "could not be verified" in told.text


def test_an_unverified_plain_agent_reply_is_kept_internal_and_the_agent_is_told(guarded):
    agent_reply(guarded, "Hallo Carla, bitte überweisen Sie an IBAN XY.", None)
    assert show(guarded)["messages"][-1]["direction"] == "internal"
    assert len(guarded.relay.to(CARLA)) == 1
    assert "kept as an internal note" in guarded.relay.wait_for(ANNA, 2)[1].text


def test_a_forwarded_notification_answered_by_someone_else_runs_nothing(mg):
    mg.send(make_mail(sender=CARLA, subject="Drucker"))
    mg.settle()
    note = mg.relay.wait_for(ANNA)[0]
    assert mg.cli("agent", "add", "bob@agency.example", "--name", "Bob").code == 0
    mg.send(reply_to(note.message, sender="bob@agency.example", body="/close\nErledigt."),
            rcpt=note.message["Reply-To"].addresses[0].addr_spec, mail_from="bob@agency.example")
    mg.settle()
    ticket = json.loads(mg.cli("ticket", "show", str(mg.tickets()[0].id), "--json").out)
    assert ticket["status"] == "new" and len(ticket["messages"]) == 1
    row = mg.inbound()[-1]
    assert row.state == "unassigned"


def test_the_same_command_mail_delivered_twice_applies_once(mg):
    mg.send(make_mail(sender=CARLA, subject="Drucker"))
    mg.settle()
    note = mg.relay.wait_for(ANNA)[0]
    raw = reply_to(note.message, sender=ANNA, body="/priority high\nIch schaue.")
    for _ in range(2):
        mg.send(raw, rcpt=note.message["Reply-To"].addresses[0].addr_spec, mail_from=ANNA)
    mg.settle()
    ticket = json.loads(mg.cli("ticket", "show", str(mg.tickets()[0].id), "--json").out)
    assert [e["kind"] for e in ticket["events"]].count("priority") == 1
    assert sorted(r.state for r in mg.inbound()) == ["done", "done", "duplicate"]
    assert len(mg.relay.to(CARLA)) == 2                  # ack + one forwarded reply


def test_a_stranger_cc_on_a_customer_mail_does_not_become_a_participant(mg):
    mg.send(make_mail(sender=CARLA, subject="Drucker", headers={"Cc": "eve@evil.example"}))
    mg.settle()
    ticket = json.loads(mg.cli("ticket", "show", str(mg.tickets()[0].id), "--json").out)
    assert "eve@evil.example" not in [p["email"] for p in ticket["participants"]]
    mg.send(make_mail(sender="eve@evil.example", subject=f"Re: [#{ticket['number']}] Drucker"))
    mg.settle()
    assert mg.inbound()[-1].state == "unassigned"
    assert mg.relay.to("eve@evil.example") == []
