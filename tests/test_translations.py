"""Every mail in German, Danish and English (issue 11, items 3 and 7): each template
renders in each language without an undefined variable, reads as that language, writes
dates the language's way and names statuses by their label; every customer command
alias parses to its verb; a German or Danish customer's transcript answers in their
language. End to end over real SMTP on both databases: a Danish project's customer gets
the status mail and the due-date mail in Danish with Danish dates."""

from __future__ import annotations

import copy
import datetime as dt
import re
from pathlib import Path

import pytest

from mailgate.mail.dates import format_date
from mailgate.mail.templating import Templates
from mailgate.mail.variables import SAMPLE_VARS
from routing.actors import Actor
from routing.commands import ALIASES, parse_command, plan
from routing.context import TicketState, World
from routing.names import key
from routing.overview import asks_overview
from routing.transcripts import WORDS, customer_transcript
from routing.verbs import REGISTRY
from routing.workflow_config import build_workflows
from tests.support.harness import make_mail
from tests.test_mail_commands import ANNA, CARLA, latest, show, write

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = Templates()
NAMES = TEMPLATES.names() + [f"replies/{n}" for n in TEMPLATES.names("replies")]
LANGUAGES = ("en", "de", "da")
DAY, BEFORE = "2026-12-03", "2026-11-20"
WRITTEN = {"en": "3 December 2026", "de": "03.12.2026", "da": "03.12.2026"}


def context(language: str) -> dict:
    """What a real mail about a ticket of a project in `language` is rendered with: the
    preset its teams use (website in German, twolevel in Danish), labels as the workflow
    has them, one date (today = due = since = last change) to look for."""
    v = copy.deepcopy(SAMPLE_VARS)
    v["today"] = DAY
    v["ticket"].update(priority=3, priority_label="high", due=DAY)
    v["reminder"] = {"days": 4, "since": DAY}
    v["project"]["language"] = language
    for r in v["requests"]:
        r["updated"] = DAY
    v["changes"] = [{"field": "priority", "old": "normal", "new": "high"},
                    {"field": "due", "old": "", "new": DAY}]
    if language == "de":
        v["ticket"].update(subject="Impressum ergänzen", status="at-customer",
                           status_label="Beim Kunden", type="Änderungswunsch",
                           todo="Die Webseite prüfen und freigeben.")
        v["project"].update(name="Webshop Müller", domain="www.mueller.example",
                            contact_person="Herr Müller")
        v["customer"] = {"name": "Carla Müller", "email": "carla@mueller.example"}
        v["message"]["text"] = "Die Seite ist fertig, bitte schauen Sie sie sich an."
        v["change"].update(old="project-url-added", new="at-customer",
                           old_label="Projekt-URL hinzugefügt", new_label="Beim Kunden",
                           todo="Die Webseite prüfen und freigeben.")
        v["transcript"] = "> /erledigt\nausgeführt: Status ist jetzt „Website geht live“\n"
        v["signature"] = "Ihr Team der Agentur Beispiel"
    elif language == "da":
        v["ticket"].update(subject="Lønkørsel fejler", status="in-progress",
                           status_label="Under behandling",
                           substatus="waiting-for-customer-approval",
                           substatus_label="Afventer godkendelse fra kunde", type="fejl",
                           todo="Godkende løsningen eller svaret og lukke sagen.")
        v["project"].update(name="TmS Kundecenter", domain="www.tms.example",
                            contact_person="Jens Hansen")
        v["customer"] = {"name": "Carla Jensen", "email": "carla@tms.example"}
        v["message"]["text"] = "Rettelsen ligger nu i TEST."
        v["change"].update(old="received", new="in-progress", old_label="Modtaget",
                           new_label="Under behandling, Afventer godkendelse fra kunde",
                           todo="Godkende løsningen eller svaret og lukke sagen.")
        v["transcript"] = '> /godkend\nudført: status er nu "Lukket, Godkendt af kunde"\n'
        v["signature"] = "Venlig hilsen TmS Support"
    return v


# what some templates are really given instead (routing.announce)
SPECIAL = {
    "due_date": {"change": {"old": BEFORE, "new": DAY}},
    "notify_quota": {"change": {"old": "80", "new": "100", "old_label": "8h of 10h",
                                "new_label": "10h30 of 10h"}},
    # the reason is the trust check's own (technical, English) words
    "agent_unverified": {"transcript": "mx.agentur.example did not see DKIM or DMARC pass"},
}

# words each language's mails use, and words that give away another language
OURS = {"en": {"ticket", "your", "you", "the", "to", "is", "hello", "reply", "mail"},
        "de": {"anfrage", "ihre", "ihnen", "sie", "und", "ist", "hat", "wir", "grüßen",
               "antworten", "am", "auf", "bitte"},
        "da": {"sag", "sagen", "din", "dig", "du", "og", "er", "har", "vi", "hilsen",
               "svar", "på", "til", "den", "med"}}
GIVEAWAY = {"en": {"Anfrage", "Ihre", "Grüßen", "sagen", "din", "hilsen"},
            "de": {"ticket", "Ticket", "the", "your", "Hello", "Reply", "of", "sag", "din",
                   "hilsen", "high"},
            "da": {"ticket", "Ticket", "the", "your", "Hello", "Reply", "of", "Anfrage",
                   "Ihre", "und", "high"}}
INTERNAL_KEYS = {"de": ("at-customer", "project-url-added"),
                 "da": ("in-progress", "waiting-for-customer-approval", "received")}


def render(name: str, language: str):
    v = context(language)
    for field, value in SPECIAL.get(name, {}).items():
        v[field] = v[field] | value if isinstance(value, dict) else value
    rendered = TEMPLATES.render(name, v, language)
    text = f"{rendered.subject}\n{rendered.body}"
    # what the caller put in is not what the template says
    return text, text.replace(v["transcript"].strip(), "").replace(v["message"]["text"], "")


@pytest.mark.parametrize("name", NAMES)
def test_every_template_exists_in_german_danish_and_english(name):
    folder, _, base = name.rpartition("/")
    have = {lang for n, lang in TEMPLATES.variants(folder) if n == base}
    assert have == set(LANGUAGES), f"{name}: only {sorted(have)}"


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", NAMES)
def test_each_template_renders_in_its_language_with_its_dates_and_labels(name, language):
    text, own = render(name, language)
    words = set(re.findall(r"[^\W\d_]+", own))
    assert len({w.lower() for w in words} & OURS[language]) >= 2, own
    assert not words & GIVEAWAY[language], (words & GIVEAWAY[language], own)
    assert not re.search(r"\b\d{4}-\d{2}-\d{2}\b", text), text     # never an ISO date
    if language == "en":
        assert not re.search(r"\b\d{2}\.\d{2}\.\d{4}\b", text), text
    else:
        assert not re.search(r"January|November|December", text), text
        assert not any(k in text for k in INTERNAL_KEYS[language]), text
    if WRITTEN["en"] in render(name, "en")[0]:
        assert WRITTEN[language] in text, text


def test_the_mails_that_show_a_date_include_the_customers_and_the_reminders():
    dated = {n for n in NAMES if WRITTEN["en"] in render(n, "en")[0]}
    assert {"status_changed", "due_date", "transcript", "overview", "reminder_customer",
            "reminder_agent", "reminder_due", "notify_assigned"} <= dated
    assert WRITTEN["de"] in render("ack", "de")[0]       # the English one names no date
    assert "3. Dezember 2026" not in render("due_date", "de")[0]     # the short form
    assert "(bisher: 20.11.2026)" in render("due_date", "de")[0]
    assert "(tidligere: 20.11.2026)" in render("due_date", "da")[0]


# (value, language, style, written)
DATES = [
    (dt.date(2026, 12, 3), "de", "short", "03.12.2026"),
    (dt.date(2026, 12, 3), "de", "long", "3. Dezember 2026"),
    (dt.date(2026, 3, 9), "de", "long", "9. März 2026"),
    (dt.date(2026, 12, 3), "da", "short", "03.12.2026"),
    (dt.date(2026, 12, 3), "da", "long", "3. december 2026"),
    (dt.date(2026, 5, 1), "da", "long", "1. maj 2026"),
    (dt.date(2026, 12, 3), "en", "short", "3 December 2026"),
    (dt.date(2026, 12, 3), "en", "long", "3 December 2026"),
    (dt.date(2026, 12, 3), "fr", "short", "3 December 2026"),        # unknown: English
]


@pytest.mark.parametrize(("day", "language", "style", "written"), DATES)
def test_a_date_is_written_the_languages_way(day, language, style, written):
    assert format_date(day, language, style) == written


@pytest.mark.parametrize(("value", "language", "style", "written"), [
    ("2026-12-03", "de", "", "03.12.2026"),
    ("2026-12-03T09:15:00+00:00", "da", "", "03.12.2026"),
    (dt.datetime(2026, 12, 3, 23, 59), "en", "", "3 December 2026"),
    ("2026-12-03", "de", "long", "3. Dezember 2026"),
    ("", "de", "", ""),
    ("soon", "da", "", "soon"),                # not a date: shown as it is
])
def test_the_date_filter_takes_dates_datetimes_and_iso_strings(value, language, style,
                                                              written):
    templates = Templates()
    arg = f'("{style}")' if style else ""
    template = templates.env.from_string("{{ value | date" + arg + " }}")
    assert template.render(value=value, language=language) == written


# (what a customer writes, the verb it is)
ALIAS_LINES = [
    ("/erledigt", "close"), ("/schließen", "close"), ("/schliessen", "close"),
    ("/SCHLIESSEN", "close"), ("/Schließen", "close"), ("/abschließen", "close"),
    ("/abschliessen", "close"), ("/wieder öffnen", "reopen"), ("/wieder oeffnen", "reopen"),
    ("/wieder-öffnen", "reopen"), ("/wiedereröffnen", "reopen"), ("/öffnen", "reopen"),
    ("/oeffnen", "reopen"), ("/freigeben", "approve"), ("/Freigabe", "approve"),
    ("/abnehmen", "approve"), ("/abnahme", "approve"), ("/genehmigen", "approve"),
    ("/luk", "close"), ("/LUK", "close"), ("/afslut", "close"), ("/genåbn", "reopen"),
    ("/genaabn", "reopen"), ("/Genåbn", "reopen"), ("/åbn igen", "reopen"),
    ("/aabn igen", "reopen"), ("/åbn", "reopen"), ("/godkend", "approve"),
    ("/Godkend", "approve"), ("/accepter", "approve"),
    ("/close", "close"), ("/reopen", "reopen"), ("/approve", "approve"),
]


@pytest.mark.parametrize(("line", "verb"), ALIAS_LINES)
def test_every_customer_command_alias_parses_to_its_verb(line, verb):
    command = parse_command(line)
    assert (command.verb, command.arg, command.error) == (verb, "", "")


def test_no_alias_shadows_a_verb_of_its_own_name():
    assert not set(ALIASES) & {key(v) for v in REGISTRY}


def readme_table() -> list[tuple[str, list[str]]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### Customer commands per language", 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `/")]
    return [(re.findall(r"`(/[^`]+)`", row)[0], re.findall(r"`(/[^`]+)`", row)[1:])
            for row in rows]


def test_the_readme_table_lists_what_the_parser_accepts():
    table = readme_table()
    assert {verb for verb, _ in table} == {"/close", "/reopen", "/approve", "/list"}
    for verb, words in table:
        assert words, verb
        for word in words:
            if verb == "/list":
                assert asks_overview(word), word
            else:
                assert parse_command(word).verb == verb[1:], word
    listed = {w for _, words in table for w in words}
    assert {w for lang in WORDS.values() for w in lang.values()} <= listed


OFFER = re.compile(r"(?:mit der Zeile|med linjen) (/[^.\n]+)\.")


@pytest.mark.parametrize("language", ["de", "da"])
def test_mails_offer_customers_commands_in_their_language_that_parse(language):
    offered: set[str] = set()
    for folder in (ROOT / "templates", ROOT / "templates" / "replies"):
        for path in folder.glob(f"*.{language}.txt.j2"):
            offered.update(OFFER.findall(path.read_text(encoding="utf-8")))
    offered = {o for o in offered if parse_command(o).verb in ("close", "reopen", "approve")}
    assert offered == set(WORDS[language].values())


WF = build_workflows({})
WORLD = World(agents={}, projects={"web": "website", "tms": "twolevel", "help": "support"})
CUSTOMER = Actor("carla@c.example", "customer")

# (project, status, sub-status, lines, language, what the transcript says)
TRANSCRIPTS = [
    ("web", "at-customer", "", "/erledigt", "de",
     ["> /erledigt", "ausgeführt: Status ist jetzt „Website geht live“"]),
    ("web", "in-production", "", "/schliessen", "de",
     ["abgelehnt: Die Anfrage steht auf „In Umsetzung“; bestätigen können Sie sie erst, "
      "wenn sie auf „Beim Kunden“ steht.", "Es wurde nichts geändert."]),
    ("web", "in-production", "", "/status Website live", "de",
     ["abgelehnt: Diesen Befehl können nur unsere Mitarbeiter verwenden."]),
    ("help", "resolved", "", "/wieder öffnen\n/priority hoch", "de",
     ["ausgeführt: Status ist jetzt „Offen“", "ausgeführt: Priorität ist jetzt hoch"]),
    ("web", "at-customer", "", "/hallo\n/erledigt", "de",
     ["abgelehnt: unbekannter Befehl /hallo. Jetzt möglich: /erledigt.",
      "abgelehnt: nicht ausgeführt, weil ein anderer Befehl in dieser E-Mail abgelehnt wurde"]),
    ("tms", "in-progress", "waiting-for-customer-approval", "/godkend", "da",
     ['udført: status er nu "Lukket, Godkendt af kunde"']),
    ("tms", "in-progress", "normal", "/godkend", "da",
     ['afvist: Sagen står som "Under behandling, Normal" og venter ikke på din godkendelse '
      "lige nu.", "Intet er ændret. Din tekst er gemt på sagen."]),
    ("tms", "in-progress", "waiting-for-customer-approval", "/lukk", "da",
     ["afvist: ukendt kommando /lukk. Mulige nu: /godkend."]),
    ("web", "at-customer", "", "/erledigt", "en", ["done: status is now Website geht live"]),
]


@pytest.mark.parametrize(("project", "status", "sub", "lines", "language", "says"),
                         TRANSCRIPTS)
def test_a_customers_transcript_answers_in_the_projects_language(project, status, sub,
                                                                 lines, language, says):
    wf = WF[WORLD.projects[project]]
    ticket = TicketState(number=3, project=project, status=status, substatus=sub,
                         requester=CUSTOMER.email)
    commands = tuple(parse_command(line) for line in lines.splitlines())
    text = customer_transcript(plan(commands, ticket, CUSTOMER, wf, WORLD), wf, language)
    for line in says:
        assert line in text, text
    if language != "en":
        assert not re.search(r"\b(done|refused|status is now)\b", text), text


def test_a_danish_customer_gets_status_and_due_date_mails_in_danish(harness_factory, db_url):
    h = harness_factory(db_url).start()
    assert h.cli("project", "add", "tms", "--name", "TmS Kundecenter", "--workflow",
                 "twolevel", "--language", "da", "--customer", CARLA).code == 0
    assert h.cli("agent", "add", ANNA, "--name", "Anna Agent").code == 0
    h.send(make_mail(sender=CARLA, subject="Lønkørsel fejler", body="Den stopper."),
           mail_from=CARLA)
    h.settle()
    n = h.tickets()[-1].id
    notification = h.relay.wait_for(ANNA)[-1]
    assert notification.subject.endswith("Ny sag: Lønkørsel fejler")     # agents: Danish
    assert f"har oprettet sag #{n} i TmS Kundecenter" in notification.text
    today = format_date(dt.datetime.now(dt.UTC).date(), "da")
    # assigned: received, and the customer is told in Danish with a Danish date
    write(h, notification, ANNA, "/assign me", quote=False)
    status = latest(h, CARLA, 2)
    assert f'den {today} fra "Ny (Ubehandlet)" til "Modtaget"' in status.text
    assert "Med venlig hilsen" in status.text and "received" not in status.text
    # the due date: told in Danish, moved with the date before
    write(h, notification, ANNA, "/due 2027-01-15\n/note\nVi når det i januar.", quote=False)
    due = latest(h, CARLA, 3)
    assert due.subject.endswith("Lønkørsel fejler (forventet færdig 15.01.2027)")
    assert f"sag #{n} færdig senest den 15.01.2027." in due.text
    assert "Vi når det i januar." not in due.text                     # the note stays ours
    write(h, notification, ANNA, "/due 2027-02-01\n/note\nFlyttet.", quote=False)
    moved = latest(h, CARLA, 4)
    assert "senest den 01.02.2027 (tidligere: 15.01.2027)." in moved.text
    assert show(h, n)["due"] == "2027-02-01"
    # the customer's command answered in Danish
    write(h, moved, CARLA, "/luk\nHvornår er det klar?")
    transcript = latest(h, CARLA, 5)
    assert "(kommandoer)" in transcript.subject
    assert 'afvist: Sagen står som "Modtaget"' in transcript.text
    assert not re.search(r"\b(refused|done|Nothing)\b", transcript.text)
