"""Agents and customers steer tickets by mail: end to end over real SMTP, both databases."""

from __future__ import annotations

import json

import pytest

from tests.support.harness import make_mail, reply_to

CARLA = "carla@client.example"
ANNA = "anna@agency.example"
BOB = "bob@agency.example"


def reply_address(received) -> str:
    return received.message["Reply-To"].addresses[0].addr_spec


def write(mg, to_mail, sender: str, body: str, quote: bool = True) -> None:
    """`sender` hits Reply on `to_mail` (as received by them) and writes `body`."""
    mg.send(reply_to(to_mail.message, sender=sender, body=body, quote=quote),
            rcpt=reply_address(to_mail), mail_from=sender)
    mg.settle()


def open_ticket(mg, subject="Drucker", body="Er druckt nicht."):
    mg.send(make_mail(sender=CARLA, subject=subject, body=body), mail_from=CARLA)
    mg.settle()
    n = mg.tickets()[-1].id
    return n, mg.relay.wait_for(CARLA)[-1], mg.relay.wait_for(ANNA)[-1]


def show(mg, n) -> dict:
    return json.loads(mg.cli("ticket", "show", str(n), "--json").out)


def latest(mg, address, count):
    return mg.relay.wait_for(address, count)[count - 1]


def test_agent_status_command_changes_status_forwards_text_and_sends_a_transcript(mg):
    n, _ack, notification = open_ticket(mg)
    write(mg, notification, ANNA, "/status waiting\nBitte schicken Sie ein Foto.")
    assert show(mg, n)["status"] == "waiting"
    forwarded = latest(mg, CARLA, 2)
    assert "Bitte schicken Sie ein Foto." in forwarded.text
    assert "/status" not in forwarded.text
    transcript = latest(mg, ANNA, 2)
    assert "> /status waiting" in transcript.text
    assert "done: status is now Warten auf Rückmeldung" in transcript.text   # issue 11
    assert transcript.header("Auto-Submitted") == "auto-replied"
    events = show(mg, n)["events"]
    change = next(e for e in events if e["kind"] == "status")
    assert (change["actor"], change["old"], change["new"]) == (ANNA, "new", "waiting")
    assert (change["old_label"], change["new_label"]) == ("Neu", "Warten auf Rückmeldung")
    assert change["detail"] == "/status waiting"           # the line that caused it
    # the customer answers while we wait for them: the ticket is open again
    write(mg, forwarded, CARLA, "Hier ist das Foto.")
    assert show(mg, n)["status"] == "open"


def test_a_customer_cannot_set_a_status_and_nothing_changes(mg):
    n, ack, _ = open_ticket(mg)
    write(mg, ack, CARLA, "/status closed\nIst erledigt.")
    data = show(mg, n)
    assert data["status"] == "new"
    assert data["messages"][-1]["text"] == "Ist erledigt."      # the text is still stored
    transcript = latest(mg, CARLA, 2)
    assert "refused: customers may only use /close, /reopen" in transcript.text
    assert "Nothing was changed" in transcript.text


def test_a_customer_confirms_a_resolved_ticket_with_close(mg):
    n, _ack, notification = open_ticket(mg)
    write(mg, notification, ANNA, "/status resolved\nDer Treiber ist neu installiert.")
    forwarded = latest(mg, CARLA, 2)
    write(mg, forwarded, CARLA, "/close\nDanke, geht wieder.")
    data = show(mg, n)
    assert data["status"] == "closed"
    assert [e["actor"] for e in data["events"] if e["kind"] == "status"] == [ANNA, CARLA]


def test_thanks_after_resolution_does_not_reopen(mg):
    n, _ack, notification = open_ticket(mg)
    write(mg, notification, ANNA, "/status resolved\nErledigt.")
    write(mg, latest(mg, CARLA, 2), CARLA, "Vielen Dank!")
    assert show(mg, n)["status"] == "resolved"
    # but the customer can reopen on purpose
    write(mg, latest(mg, CARLA, 2), CARLA, "/reopen\nDoch nicht, er spinnt wieder.")
    assert show(mg, n)["status"] == "open"


def test_a_note_never_reaches_the_customer(mg):
    n, _ack, notification = open_ticket(mg)
    before = len(mg.relay.to(CARLA))
    write(mg, notification, ANNA, "/note\nKunde hat noch keinen Wartungsvertrag.")
    data = show(mg, n)
    assert data["messages"][-1]["direction"] == "internal"
    assert "Wartungsvertrag" in data["messages"][-1]["text"]
    mg.settle()
    assert len(mg.relay.to(CARLA)) == before
    assert all("Wartungsvertrag" not in m.text for m in mg.relay.to(CARLA))


def test_one_bad_command_applies_none(mg):
    n, _ack, notification = open_ticket(mg)
    write(mg, notification, ANNA, "/priority high\n/status flying\nText.")
    data = show(mg, n)
    assert (data["status"], data["priority"]) == ("new", 2)
    transcript = latest(mg, ANNA, 2)
    assert "unknown status 'flying'; valid: new (Neu), open (Offen)" in transcript.text
    assert "not applied: another command in this mail was refused" in transcript.text


def test_assign_priority_due_type_and_cc(mg):
    assert mg.cli("agent", "add", BOB, "--name", "Bob Builder").code == 0
    n, _ack, notification = open_ticket(mg)
    write(mg, notification, ANNA, "/assign bob\n/priority 3\n/due 2026-12-24\n/type incident\n"
                                  "/cc add dieter@client.example\nIch gebe an Bob ab.")
    data = show(mg, n)
    assert (data["assignee"], data["priority"], data["due"], data["type"]) == (
        BOB, 3, "2026-12-24", "incident")
    assert "dieter@client.example" in [p["email"] for p in data["participants"]]
    mg.settle()
    # Bob is told of the assignment, and (agent_replied) of what Anna wrote to Carla
    assert any("assigned ticket" in m.text for m in mg.relay.wait_for(BOB))
    assert any("Ich gebe an Bob ab." in m.text for m in mg.relay.to(BOB))
    # the cc'd contact receives the forwarded reply too
    assert "Ich gebe an Bob ab." in mg.relay.wait_for("dieter@client.example")[-1].text


def test_commands_in_a_quoted_block_or_below_the_signature_do_nothing(mg):
    n, _ack, notification = open_ticket(mg)
    write(mg, notification, ANNA, "Schaue ich mir an.\n\n-- \nAnna\n/close")
    assert show(mg, n)["status"] == "new"
    write(mg, notification, ANNA, "Noch dran.\n> /close\n")
    assert show(mg, n)["status"] == "new"


def test_agent_notification_preferences(mg):
    result = mg.cli("agent", "notify", ANNA, "--off", "new_ticket", "--on", "status_change",
                    "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["notify"] == ["customer_reply", "assigned", "status_change",
                                                "reminder", "agent_replied"]
    mg.send(make_mail(sender=CARLA, subject="Leise"), mail_from=CARLA)
    mg.settle()
    assert mg.relay.to(ANNA) == []                          # no new-ticket mail any more
    bad = mg.cli("agent", "notify", ANNA, "--on", "everything")
    assert bad.code != 0 and "invalid choice" in bad.err


def test_template_list_and_preview(mg):
    n, _ack, _ = open_ticket(mg, subject="Vorschau")
    listed = json.loads(mg.cli("template", "list", "--json").out)
    names = {t["name"] for t in listed}
    assert {"ack", "agent_reply", "transcript", "status_changed", "status_notify"} <= names
    preview = mg.cli("template", "preview", "ack", "--ticket", str(n))
    assert preview.code == 0, preview.err
    assert preview.out.startswith("Subject: Vorschau") and f"#{n}" in preview.out
    missing = mg.cli("template", "preview", "nope", "--ticket", str(n))
    assert missing.code != 0 and "no template 'nope'" in missing.err


@pytest.fixture
def site(harness_factory, sqlite_url):
    h = harness_factory(sqlite_url, groups={"accounting": "billing@agency.example"}).start()
    assert h.cli("project", "add", "web", "--name", "Webshop Müller", "--workflow", "website",
                 "--customer", CARLA).code == 0
    assert h.cli("agent", "add", ANNA, "--name", "Anna Agent").code == 0
    return h


def test_website_preset_walked_through_by_mail(site):
    n, ack, notification = open_ticket(site, subject="Neue Webseite")
    assert show(site, n)["status"] == "backlog"
    steps = ["to-do", "data-checked", "in-production", "at-customer"]
    for step in steps:
        write(site, notification, ANNA, f"/status {step}\nWeiter.")
        assert show(site, n)["status"] == step
    # a jump the workflow does not allow is refused
    write(site, notification, ANNA, "/status backlog\nZurück?")
    assert show(site, n)["status"] == "at-customer"
    # the customer approves: going live; the agent puts it live; accounting hears of it
    write(site, ack, CARLA, "/close\nSieht super aus, bitte live schalten.")
    assert show(site, n)["status"] == "going-live"
    write(site, notification, ANNA, "/status live\nIst online.")
    assert show(site, n)["status"] == "live"
    (bill,) = site.relay.wait_for("billing@agency.example")
    assert "Website live" in bill.subject and "Webshop Müller" in bill.subject


def twolevel_site(harness_factory, sqlite_url):
    h = harness_factory(sqlite_url).start()
    assert h.cli("project", "add", "tms", "--name", "TmS", "--workflow", "twolevel",
                 "--customer", CARLA).code == 0
    assert h.cli("agent", "add", ANNA, "--name", "Anna Agent").code == 0
    return h


def test_twolevel_preset_customer_never_changes_status_and_reopen_marks_urgent(
        harness_factory, sqlite_url):
    h = twolevel_site(harness_factory, sqlite_url)
    n, ack, notification = open_ticket(h)
    write(h, notification, ANNA, "/status in progress, waiting for development\nIn Arbeit.")
    data = show(h, n)
    assert (data["status"], data["substatus"]) == ("in-progress", "waiting-for-development")
    write(h, ack, CARLA, "/close\nBitte schließen.")
    assert show(h, n)["status"] == "in-progress"            # customers never change it
    write(h, notification, ANNA, "/close\nGelöst.")
    write(h, notification, ANNA, "/reopen\nFehler ist wieder da.")
    data = show(h, n)
    assert (data["status"], data["urgent"], data["priority"]) == ("reopened", True, 3)


def test_support_preset_walk_through(harness_factory, sqlite_url):
    h = harness_factory(sqlite_url, groups={"web": ANNA}).start()
    assert h.cli("project", "add", "acme", "--name", "Acme", "--customer", CARLA).code == 0
    assert h.cli("agent", "add", ANNA, "--name", "Anna Agent").code == 0
    n, _ack, notification = open_ticket(h)
    write(h, notification, ANNA, "/group web\n/status open\nIch übernehme.")
    data = show(h, n)
    assert (data["status"], data["group"], data["assignee"]) == ("open", "web", ANNA)
    for status in ("waiting-internal", "resolved", "closed"):
        write(h, notification, ANNA, f"/status {status}\nWeiter.")
        assert show(h, n)["status"] == status
    shown = h.cli("ticket", "show", str(n))
    assert "log:" in shown.out and "waiting-internal" in shown.out


def test_twolevel_ticket_waiting_for_approval_closes_itself_after_8_days(
        harness_factory, sqlite_url):
    import datetime as dt

    from mailgate.handlers.timers import run_timers

    h = twolevel_site(harness_factory, sqlite_url)
    n, _ack, notification = open_ticket(h)
    write(h, notification, ANNA, "/status in progress, waiting for customer approval\nFertig.")
    now = dt.datetime.now(dt.UTC)
    assert run_timers(h.app, now=now + dt.timedelta(days=7)) == []
    assert run_timers(h.app, now=now + dt.timedelta(days=8, minutes=1)) == [(n, "closed")]
    data = show(h, n)
    assert data["status"] == "closed"
    assert any(e["kind"] == "timer" and e["actor"] == "system" for e in data["events"])
    assert run_timers(h.app, now=now + dt.timedelta(days=30)) == []   # closed stays closed


def test_mail_to_the_note_address_is_an_internal_note(mg):
    import re

    n, _ack, notification = open_ticket(mg)
    note_address = re.search(r"support\+n[0-9a-z.]+@example\.com", notification.text).group(0)
    mg.send(make_mail(sender=ANNA, to=note_address, subject="intern",
                      body="Kunde ist Großkunde, bitte bevorzugt."),
            rcpt=note_address, mail_from=ANNA)
    mg.settle()
    data = show(mg, n)
    assert data["messages"][-1]["direction"] == "internal"
    assert "Großkunde" in data["messages"][-1]["text"]
    assert len(mg.relay.to(CARLA)) == 1                   # the acknowledgement only
    # a customer who learns the note address gets nowhere with it
    mg.send(make_mail(sender=CARLA, to=note_address, subject="hallo"), rcpt=note_address)
    mg.settle()
    assert mg.inbound()[-1].state == "unassigned"
