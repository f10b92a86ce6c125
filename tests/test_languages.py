"""Projects in German and Danish (issue 11): customers get their mails in the project's
language, agents and customers use the documents' status names and commands, and the
two-level flow closes on the customer's approval. End to end over real SMTP, both
databases."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from tests.support.harness import make_mail
from tests.test_mail_commands import ANNA, CARLA, latest, show, write

COMMANDS = re.compile(r"(?<![\w/.])/[^\W\d_][\w-]*")     # not a path or URL part


def today(fmt: str) -> str:
    # the date a mail is decided on is the daemon's (UTC) day
    return dt.datetime.now(dt.UTC).date().strftime(fmt)


def offered(text: str) -> set[str]:
    """The commands a mail tells its reader to write (quoted lines of theirs aside)."""
    return {m.group(0) for line in text.splitlines() if not line.startswith(">")
            for m in COMMANDS.finditer(line)}


def open_ticket(h, subject: str, body: str = "Hallo."):
    h.send(make_mail(sender=CARLA, subject=subject, body=body), mail_from=CARLA)
    h.settle()
    n = h.tickets()[-1].id
    return n, h.relay.wait_for(CARLA)[-1], h.relay.wait_for(ANNA)[-1]


def project(h, slug: str, workflow: str, language: str | None, name: str) -> None:
    extra = ["--language", language] if language else []
    result = h.cli("project", "add", slug, "--name", name, "--workflow", workflow,
                   "--customer", CARLA, *extra)
    assert result.code == 0, result.err
    assert h.cli("agent", "add", ANNA, "--name", "Anna Agent").code == 0


def test_a_german_website_customer_gets_german_mails_with_german_dates(harness_factory,
                                                                       db_url):
    h = harness_factory(db_url, groups={"accounting": "billing@agency.example"}).start()
    project(h, "web", "website", "de", "Webshop Müller")
    n, ack, notification = open_ticket(h, "Neue Webseite")
    assert ack.text.startswith("Guten Tag carla@client.example,")
    assert f"am {today('%d.%m.%Y')} als Anfrage #{n}" in ack.text
    for line in ("/status ToDo", "/status Daten gepruft", "/status In Umsetzung",
                 "/status Projekt-URL hinzugefügt", "/status Beim Kunden"):
        write(h, notification, ANNA, line, quote=False)
    assert show(h, n)["status"] == "at-customer"
    mail = latest(h, CARLA, 4)      # ack, then the three statuses the customer sees
    assert f"am {today('%d.%m.%Y')} geändert: von „Projekt-URL hinzugefügt“ auf " \
           "„Beim Kunden“" in mail.text
    assert "Mit freundlichen Grüßen" in mail.text and "Your support team" in mail.text
    # the website flow lets the customer approve here, never reopen
    assert offered(mail.text) == {"/erledigt"}
    write(h, mail, CARLA, "/erledigt\nSieht gut aus.")
    assert show(h, n)["status"] == "going-live"
    transcript = latest(h, CARLA, 5)
    assert "(Befehle)" in transcript.subject and "Stand der Anfrage: Website geht live" in \
        transcript.text
    # agents filter by the document's names, accents or not
    listed = h.cli("ticket", "list", "--status", "website geht live", "--json")
    assert [t["number"] for t in json.loads(listed.out)] == [n]


def test_danish_two_level_walk_received_test_approval_and_closing_approval(harness_factory,
                                                                           db_url):
    h = harness_factory(db_url).start()
    project(h, "tms", "twolevel", "da", "TmS Kundecenter")
    n, ack, notification = open_ticket(h, "Lønkørsel fejler", "Lønkørslen stopper.")
    assert ack.text.startswith("Hej carla@client.example,") and f"sag #{n}" in ack.text
    assert f"den {today('%d.%m.%Y')} oprettet" in ack.text
    # an assigned new ticket is received
    write(h, notification, ANNA, "/assign me", quote=False)
    data = show(h, n)
    assert (data["status"], data["assignee"]) == ("received", ANNA)
    received = latest(h, CARLA, 2)
    assert 'fra "Ny (Ubehandlet)" til "Modtaget"' in received.text
    # a fix in TEST: the customer's approval records the acceptance, the case stays open
    write(h, notification, ANNA, "/status under behandling, Opdateret i TEST. Afventer kunde "
                                 "accept\nRettelsen ligger nu i TEST.")
    assert show(h, n)["substatus"] == "updated-in-test-waiting-for-approval"
    reply = latest(h, CARLA, 3)
    assert "Rettelsen ligger nu i TEST." in reply.text
    assert "Opdateret i TEST. Afventer kunde accept" in reply.text
    write(h, reply, CARLA, "/godkend\nDet virker i TEST.")
    data = show(h, n)
    assert (data["status"], data["substatus"]) == ("in-progress", "updated-in-test-accepted")
    assert "Opdateret i TEST, Accepteret af kunde" in latest(h, CARLA, 4).text
    # solved: the customer's approval closes the case
    write(h, notification, ANNA, "/status under behandling, Afventer godkendelse fra kunde\n"
                                 "Rettelsen er lagt i PROD.")
    reply = latest(h, CARLA, 5)
    write(h, reply, CARLA, "/godkend\nTak, alt er fint.")
    data = show(h, n)
    assert (data["status"], data["substatus"]) == ("closed", "approved-by-customer")
    done = latest(h, CARLA, 6)
    assert "(kommandoer)" in done.subject
    assert "Sagen står nu som: Lukket, Godkendt af kunde" in done.text
    # no mail ever offered the customer a command the workflow refuses them
    mails = h.relay.to(CARLA)
    assert len(mails) == 6
    allowed = {"/godkend"}
    for m in mails:
        assert offered(m.text) <= allowed, (m.subject, m.text)
        assert not re.search(r"/(luk|genåbn|close|reopen)\b", m.text), m.text
    # where approval was asked for, it was offered
    assert "/godkend" in offered(reply.text)
    assert all("/godkend" not in offered(m.text) for m in (ack, received))


def test_project_fields_reach_templates_and_a_language_override_wins(harness_factory,
                                                                      sqlite_url, tmp_path):
    override = tmp_path / "mine"
    override.mkdir()
    (override / "ack.de.txt.j2").write_text(
        "{% block subject %}Willkommen: {{ ticket.subject }}{% endblock %}"
        "{% block body %}Ihre Seite {{ project.domain }} betreut {{ project.contact_person }}."
        "\nEinladung: {{ project.invitation_url }}\n{{ signature }}\n{% endblock %}")
    h = harness_factory(sqlite_url, templates={"override_dir": str(override)},
                        mail={"language": "de"}).start()
    project(h, "web", "website", None, "Webshop Müller")        # German by [mail] language
    signature = tmp_path / "sig.txt"
    signature.write_text("Agentur Beispiel GmbH\nTel. 0123 456\n")
    result = h.cli("project", "set", "web", "--domain", "www.mueller.example",
                   "--contact-person", "Herr Müller", "--invitation-url",
                   "https://www.mueller.example/einladung/7", "--signature-file",
                   str(signature), "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["language"] == "de"
    _n, ack, _ = open_ticket(h, "Impressum")
    assert ack.subject.endswith("Willkommen: Impressum")
    assert "Ihre Seite www.mueller.example betreut Herr Müller." in ack.text
    assert "Einladung: https://www.mueller.example/einladung/7" in ack.text
    assert "Agentur Beispiel GmbH\r\nTel. 0123 456" in ack.text       # not the global one
    assert "Your support team" not in ack.text
    # an English project still gets the shipped English acknowledgement
    assert h.cli("project", "add", "en", "--name", "English", "--language", "en",
                 "--customer", "eve@client.example").code == 0
    h.send(make_mail(sender="eve@client.example", subject="Hello"), mail_from="eve@client.example")
    h.settle()
    (english,) = h.relay.wait_for("eve@client.example")
    assert english.text.startswith("Hello eve@client.example,") and "Your support team" in \
        english.text
    bad = h.cli("project", "set", "web", "--language", "fr")
    assert bad.code == 2 and "invalid choice" in bad.err
    assert h.cli("project", "set", "web").code != 0                   # nothing to set


@pytest.mark.parametrize(("name", "shown"), [
    ("website", ["digital_coach, customer", "Die fehlenden Unterlagen nachliefern.",
                 "project-url-added (Projekt-URL hinzugefügt)"]),
    ("twolevel", ["sent-to-te-sweden (Sendt til TE Sverige)",
                  "an assigned ticket in new moves to received",
                  "approval in updated-in-test-waiting-for-approval: -> "
                  "updated-in-test-accepted"]),
])
def test_workflow_show_prints_who_acts_and_what_is_to_be_done(harness_factory, sqlite_url,
                                                              name, shown):
    h = harness_factory(sqlite_url)
    result = h.cli("workflow", "show", name)
    assert result.code == 0, result.err
    for text in shown:
        assert text in result.out
    data = json.loads(h.cli("workflow", "show", name, "--json").out)
    assert all(s["todo"] and "actors" in s for s in data["statuses"])


def test_an_upgraded_database_gives_old_projects_english_and_empty_fields(db_url):
    from sqlmodel import select

    from store.db import Database
    from store.migrations import SCHEMA_VERSION, migrate
    from store.models import Project
    from tests.test_store import _load_v1

    db = Database(db_url)
    try:
        _load_v1(db)
        assert migrate(db) == (1, SCHEMA_VERSION)
        with db.unit() as s:
            (p,) = s.exec(select(Project)).all()
            assert (p.language, p.domain, p.contact_person, p.invitation_url, p.signature) \
                == ("en", "", "", "", "")
            p.language, p.signature = "da", "Med venlig hilsen\nTmS"
        with db.unit(write=False) as s:
            (p,) = s.exec(select(Project)).all()
            assert (p.language, p.signature) == ("da", "Med venlig hilsen\nTmS")
    finally:
        db.dispose()
