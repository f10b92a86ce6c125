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


# --- [trust] agents: a forged From is not an agent ------------------------------------------
# The attack a trial found: anyone writes "From: Anna Agent <anna@…>" with the ticket's
# number in the subject (or its Message-ID in References) and, before, mailgate forwarded
# it to the customer from the support address as Anna.

def _forged(h, number: int, *, how: str, body: str) -> None:
    headers = {}
    subject = "Re: Drucker"
    if how == "subject-tag":
        subject = f"Re: [#{number}] Drucker"
    else:
        headers["References"] = h.relay.wait_for(CARLA)[0].message["Message-ID"]
    h.send(make_mail(sender=f"Anna Agent <{ANNA}>", subject=subject, body=body,
                     headers=headers), mail_from="eve@evil.example")
    h.settle()


@pytest.mark.parametrize("how", ["subject-tag", "references"])
def test_a_forged_agent_from_reaches_no_customer_and_changes_nothing(mg, how):
    mg.send(make_mail(sender=CARLA, subject="Drucker"))
    mg.settle()
    number = mg.tickets()[0].id
    _forged(mg, number, how=how, body="/cc add eve@evil.example\nBitte zahlen Sie an IBAN XY.")
    data = json.loads(mg.cli("ticket", "show", str(number), "--json").out)
    assert len(mg.relay.to(CARLA)) == 1                          # only the acknowledgement
    assert mg.relay.to("eve@evil.example") == []
    assert "eve@evil.example" not in [p["email"] for p in data["participants"]]
    last = data["messages"][-1]
    assert (last["direction"], "IBAN XY" in last["text"]) == ("internal", True)
    assert "unverified" in [e["kind"] for e in data["events"]]
    told = mg.relay.wait_for(ANNA, 2)[-1]                         # the real Anna is told
    assert "not sent to the customer" in str(told.message["Subject"])
    token = told.message["Reply-To"].addresses[0].addr_spec
    assert token.startswith("support+r") and token in told.text


def test_the_real_agent_answering_that_mail_reaches_the_customer(mg):
    mg.send(make_mail(sender=CARLA, subject="Drucker"))
    mg.settle()
    _forged(mg, mg.tickets()[0].id, how="subject-tag", body="Wir sind dran.")
    told = mg.relay.wait_for(ANNA, 2)[-1]
    mg.send(reply_to(told.message, sender=ANNA, body="Der Toner ist getauscht."),
            rcpt=told.message["Reply-To"].addresses[0].addr_spec, mail_from=ANNA)
    mg.settle()
    assert "Der Toner ist getauscht." in mg.relay.wait_for(CARLA, 2)[1].text


def test_verified_agents_need_something_that_verifies(tmp_path):
    from mailgate.config import ConfigError, load_config

    path = tmp_path / "mailgate.toml"
    path.write_text('[trust]\nagents = "verified"\n')
    with pytest.raises(ConfigError, match=r"\[trust\] agents.*trusted_authserv_id"):
        load_config(path)
    path.write_text(f'[trust]\nagents = "verified"\n[mail]\ntrusted_authserv_id = "{ID}"\n')
    assert load_config(path).trust.agents == "verified"


@pytest.fixture
def verified(harness_factory, sqlite_url):
    h = harness_factory(sqlite_url, mail={"trusted_authserv_id": ID},
                        trust={"agents": "verified"}).start()
    assert h.cli("project", "add", "acme", "--name", "ACME", "--customer", CARLA).code == 0
    assert h.cli("agent", "add", ANNA, "--name", "Anna Agent").code == 0
    h.send(make_mail(sender=CARLA, subject="Drucker"))
    h.settle()
    return h


def test_verified_mode_a_leaked_token_with_a_forged_from_runs_nothing(verified):
    agent_reply(verified, "/cc add eve@evil.example\nHallo.", None)
    data = show(verified)
    assert "eve@evil.example" not in [p["email"] for p in data["participants"]]
    assert len(verified.relay.to(CARLA)) == 1


def test_verified_mode_a_verified_agent_reply_is_forwarded(verified):
    agent_reply(verified, "Hallo Carla, erledigt.", f"{ID}; dkim=pass header.d=agency.example")
    assert "erledigt" in verified.relay.wait_for(CARLA, 2)[1].text


@pytest.mark.parametrize("config, says", [
    ("", "WARNING: agent mail is NOT verified"),
    (f'[mail]\ntrusted_authserv_id = "{ID}"\n', f"verified (Authentication-Results of {ID}"),
    ('[mail]\nverify_dkim = true\n[trust]\nagents = "verified"\n', "DKIM checked by mailgate"),
], ids=["default", "trusted-mta", "verified-dkim"])
def test_check_config_and_status_say_how_agent_mail_is_trusted(tmp_path, config, says):
    import subprocess
    import sys

    path = tmp_path / "mailgate.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/m.db"\n' + config)
    for verb in ("check-config", "status"):
        done = subprocess.run([sys.executable, "-m", "mailgate", "--config", str(path), verb],
                              capture_output=True, text=True, timeout=60)
        agents = [ln for ln in done.stdout.splitlines() if ln.startswith("agents:")]
        assert len(agents) == 1 and says in agents[0], (verb, done.stdout, done.stderr)
