"""The support flow of the Zammad-style document, in German, end to end over real SMTP on
both databases: group addresses and owners, owner and handler, the contingent rule, booked
time, the due date told to the customer (issue 11, items 4 and 5)."""

from __future__ import annotations

import json
import re

import pytest

from tests.support import harness
from tests.support.harness import make_mail, reply_to

CARLA = "carla@client.example"
ANNA = "anna@agency.example"        # works on tickets (the handler)
OLGA = "olga@agency.example"        # owns the web group
WEB = "support+web@example.com"


def _toml(data: dict) -> str:
    """The harness's TOML plus inline tables, for `[groups.NAME]` style groups."""
    def inline(v: dict) -> str:
        return "{ " + ", ".join(f'{k} = "{x}"' for k, x in v.items()) + " }"

    plain = {s: ({k: v for k, v in b.items() if not isinstance(v, dict)}
                 if isinstance(b, dict) else b) for s, b in data.items()}
    text = _PLAIN(plain)
    tables = [f"{k} = {inline(v)}" for k, v in data.get("groups", {}).items()
              if isinstance(v, dict)]
    return text.replace("[groups]\n", "[groups]\n" + "".join(t + "\n" for t in tables), 1)


_PLAIN = harness.toml_dumps


@pytest.fixture
def desk(harness_factory, db_url, monkeypatch):
    monkeypatch.setattr(harness, "toml_dumps", _toml)
    h = harness_factory(db_url, groups={"web": {"key": "web", "owner": OLGA},
                                        "accounting": "billing@agency.example"}).start()
    assert h.cli("project", "add", "acme", "--name", "ACME GmbH", "--customer", CARLA).code == 0
    for email, name in ((ANNA, "Anna Agent"), (OLGA, "Olga Owner")):
        assert h.cli("agent", "add", email, "--name", name).code == 0
    return h


def write(mg, to_mail, sender: str, body: str) -> None:
    mg.send(reply_to(to_mail.message, sender=sender, body=body),
            rcpt=to_mail.message["Reply-To"].addresses[0].addr_spec, mail_from=sender)
    mg.settle()


def show(mg, n) -> dict:
    return json.loads(mg.cli("ticket", "show", str(n), "--json").out)


def mails(mg, address: str, count: int, needle: str = "") -> list:
    mg.relay.wait_for(address, count)
    return [m for m in mg.relay.to(address) if needle in m.subject + m.text]


def test_a_group_address_files_the_ticket_under_its_owner_and_owner_and_handler_hear_replies(
        desk):
    desk.send(make_mail(sender=CARLA, to=WEB, subject="Webseite lädt nicht",
                        body="Seit heute Morgen ist unsere Webseite weiß."),
              rcpt=WEB, mail_from=CARLA)
    desk.settle()
    n = desk.tickets()[-1].id
    data = show(desk, n)
    assert (data["group"], data["owner"], data["assignee"]) == ("web", OLGA, OLGA)
    assert any(e["kind"] == "group" and e["new"] == "web" for e in data["events"])
    (notification,) = mails(desk, OLGA, 1)            # the owner is told, not everyone
    assert desk.relay.to(ANNA) == []
    # the owner hands the work on and stays in the loop
    write(desk, notification, OLGA, "/assign anna\nAnna, bitte übernimm das.")
    data = show(desk, n)
    assert (data["owner"], data["assignee"]) == (OLGA, ANNA)
    forwarded = [m for m in desk.relay.wait_for(CARLA, 2) if "Anna, bitte" in m.text][-1]
    # the support workflow lets the customer choose the priority (customer_may)
    write(desk, forwarded, CARLA, "/priority hoch\nHier ist ein Bildschirmfoto, die Seite "
                                  "bleibt weiß.")
    assert show(desk, n)["priority"] == 3
    for agent in (OLGA, ANNA):
        told = mails(desk, agent, 2, "die Seite bleibt weiß")
        assert len(told) == 1, agent
    shown = desk.cli("ticket", "show", str(n)).out
    assert re.search(rf"^owner +{re.escape(OLGA)}$", shown, re.M)
    assert re.search(rf"^assignee +{re.escape(ANNA)}$", shown, re.M)


def test_no_work_without_contingent_or_accepted_offer_except_bugs_and_time_is_booked(desk):
    assert desk.cli("project", "quota", "acme", "--add", "2h",
                    "--note", "Supportvertrag 2027").code == 0
    desk.send(make_mail(sender=CARLA, subject="Neues Feld im Formular",
                        body="Bitte ein Feld für die Steuernummer ergänzen."), mail_from=CARLA)
    desk.settle()
    n = desk.tickets()[-1].id
    (notification,) = mails(desk, ANNA, 1)
    write(desk, notification, ANNA, "/owner olga\n/type change request\n/time 1h45\n/note\n"
                                    "Analyse gemacht.")
    (note80,) = mails(desk, OLGA, 2, "Contingent of ACME GmbH")
    assert "87% used" in note80.subject and "1h45 of 2h" in note80.text
    write(desk, notification, ANNA, "/time 0:30\n/note\nRückfrage intern.")
    notes = mails(desk, OLGA, 3, "Contingent of ACME GmbH")
    assert [m.subject.split(": ")[-1] for m in notes] == ["87% used", "112% used"]

    write(desk, notification, ANNA, "/status in Bearbeitung\nIch fange an.")
    assert show(desk, n)["status"] == "new"
    transcript = mails(desk, ANNA, 1, "> /status in Bearbeitung")[-1]
    assert "refused: In Bearbeitung cannot be entered" in transcript.text
    assert "contingent of project acme is used up" in transcript.text

    project = json.loads(desk.cli("project", "show", "acme", "--json").out)
    q = project["quota"]
    assert (q["added_minutes"], q["used_minutes"], q["left_minutes"]) == (120, 135, -15)
    assert [e["note"] for e in q["entries"]] == ["Supportvertrag 2027"]
    assert [(b["actor"], b["minutes"], b["ticket"]) for b in q["bookings"]] == [
        (ANNA, 105, n), (ANNA, 30, n)]
    text = desk.cli("project", "show", "acme").out
    assert "added 2h, used 2h15, left -15m" in text
    data = show(desk, n)
    assert data["booked_minutes"] == 135
    assert [(e["actor"], e["detail"]) for e in data["events"] if e["kind"] == "time"] == [
        (ANNA, "1h45 against the contingent of project acme"),
        (ANNA, "30m against the contingent of project acme")]

    write(desk, notification, ANNA, "/offer 6h\n/offer accepted\n/status in Bearbeitung\n"
                                    "Das Angebot ist angenommen, ich lege los.")
    data = show(desk, n)
    assert (data["status"], data["offer"]["state"]) == ("in-progress", "accepted")

    desk.send(make_mail(sender=CARLA, subject="Fehler beim Speichern",
                        body="Das Formular speichert nicht."), mail_from=CARLA)
    desk.settle()
    bug = desk.tickets()[-1].id
    bug_note = mails(desk, ANNA, 1, "Fehler beim Speichern")[0]
    write(desk, bug_note, ANNA, "/type bug\n/status in Bearbeitung\nWir sehen uns das an.")
    assert show(desk, bug)["status"] == "in-progress"


def test_the_due_date_is_mailed_to_the_customer_when_set_and_moved(desk):
    desk.send(make_mail(sender=CARLA, subject="Zugang gesperrt", body="Ich komme nicht rein."),
              mail_from=CARLA)
    desk.settle()
    (notification,) = mails(desk, ANNA, 1)
    write(desk, notification, ANNA, "/due 2026-12-31\n/note\nBis Jahresende.")
    (due,) = mails(desk, CARLA, 2, "due 31 December 2026")
    assert "done by 31 December 2026" in due.text
    assert due.header("Auto-Submitted") == "auto-generated"
    write(desk, notification, ANNA, "/due 2027-01-15\n/note\nVerschoben.")
    (moved,) = mails(desk, CARLA, 3, "due 15 January 2027")
    assert "(before: 31 December 2026)" in moved.text


def test_a_project_key_may_not_be_a_group_key(desk):
    result = desk.cli("project", "add", "web", "--name", "Web AG")
    assert result.code != 0
    assert "address key of group web" in result.err
    assert desk.cli("project", "add", "shop", "--name", "Shop", "--key", "laden").code == 0


def test_an_upgraded_database_keeps_owner_offer_contingent_and_booked_time(db_url):
    """The appended migration step: old tickets have no owner and no offer; the new
    tables take entries (run from schema version 1, as test_store does)."""
    import datetime as dt

    from sqlmodel import select

    from store import quota
    from store.db import Database
    from store.migrations import SCHEMA_VERSION, migrate
    from store.models import Ticket
    from tests.test_store import _load_v1

    db = Database(db_url)
    try:
        _load_v1(db)
        assert migrate(db) == (1, SCHEMA_VERSION)
        now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
        with db.unit() as s:
            (t,) = s.exec(select(Ticket)).all()
            assert (t.owner_id, t.offer_state, t.offer_minutes) == (None, "", 0)
            t.owner_id, t.offer_state, t.offer_minutes = 1, "accepted", 360
            quota.add_entry(session=s, project_id=1, minutes=600, note="Vertrag", actor="a",
                            now=now)
            quota.insert_booking(session=s, values={"ticket_id": t.id, "project_id": 1,
                                                    "minutes": 90, "budget": "project",
                                                    "actor": "a", "at": now})
        with db.unit(write=False) as s:
            assert quota.project_budgets(session=s, project_ids=[1]) == {1: (600, 90)}
            assert s.get(Ticket, t.id).offer_minutes == 360
    finally:
        db.dispose()
