"""The shipped workflows against their reference documents, and how people name statuses
and commands in German and Danish (issue 11): pure tables."""

from __future__ import annotations

import pytest

from routing.actors import Actor
from routing.commands import parse_command, plan
from routing.context import TicketState, World
from routing.names import key
from routing.workflow import WorkflowError, customer_commands
from routing.workflow_config import build_workflow, build_workflows

WF = build_workflows({})

# Every status the documents in ../shared/seeds name, as they spell it.
WEBSITE_DOC = ["Backlog", "ToDo", "Daten geprüft", "Warten auf Daten", "In Umsetzung",
               "Projekt-URL hinzugefügt", "Beim Kunden", "Website geht live", "Website live"]
TWOLEVEL_LEVEL1 = ["Ny (Ubehandlet)", "Modtaget", "Under behandling", "Lukket", "Genåbnet"]
TWOLEVEL_LEVEL2 = [
    "Afventer adgang til kunde", "Afventer Distribution start",
    "Afventer godkendelse fra kunde", "Afventer konsulent", "Afventer mere info fra kunde",
    "Afventer supporter", "Afventer TmS Drift", "Afventer udviklingen", "Godkendt af kunde",
    "Ikke godkendt af kunde", "Normal", "Opdateret i PROD, Accepteret af kunde",
    "Opdateret i PROD, Ikke accepteret af kunde", "Opdateret i PROD. Afventer kunde accept",
    "Opdateret i TEST, Accepteret af kunde", "Opdateret i TEST, Ikke accepteret af kunde",
    "Opdateret i TEST. Afventer kunde accept", "Sendt til TE Sverige", "Standby",
    "Ændringsønske fra kunde", "Ændringsønske Tilbud Accepteret", "Ændringsønske Tilbud sent"]
# the support document names two states in its text (the rest are Zammad's usual ones)
SUPPORT_DOC = ["Neu", "Offen", "In Bearbeitung", "Warten auf Rückmeldung", "Gelöst",
               "Geschlossen"]
# where nobody is left to act, the document says so
NOBODY_ACTS = {"closed", "standby"}


@pytest.mark.parametrize(("name", "labels", "level"), [
    ("website", WEBSITE_DOC, 1), ("twolevel", TWOLEVEL_LEVEL1, 1),
    ("twolevel", TWOLEVEL_LEVEL2, 2), ("support", SUPPORT_DOC, 1)])
def test_each_preset_carries_every_status_of_its_document_with_actors_and_todo(
        name, labels, level):
    wf = WF[name]
    rows = list(wf.statuses.values()) if level == 1 else list(wf.substatus_info.values())
    assert sorted(r.label for r in rows if r.label in labels) == sorted(labels)
    for row in rows:
        assert row.todo.strip().endswith((".", ")")), row.name    # a sentence
        assert bool(row.actors) is (row.name not in NOBODY_ACTS), row.name
    if level == 2:
        assert len(rows) == len(labels)


def test_who_acts_can_be_more_than_one_role():
    web = WF["website"]
    assert web.statuses["waiting-for-data"].actors == ("digital_coach", "customer")
    assert web.statuses["at-customer"].actors == ("digital_coach", "customer")
    assert not web.statuses["backlog"].customer_visible
    assert web.statuses["at-customer"].customer_visible


# (workflow, what someone typed, the status it names; None = unknown or ambiguous)
LOOKUPS = [
    ("website", "Beim Kunden", "at-customer"),
    ("website", "beim kunden", "at-customer"),
    ("website", "BEIM KUNDEN", "at-customer"),
    ("website", "Daten geprüft", "data-checked"),
    ("website", "Daten gepruft", "data-checked"),         # the accent left out
    ("website", "Daten geprueft", "data-checked"),        # the accent spelled out
    ("website", "data-checked", "data-checked"),          # the internal name
    ("website", "At the customer for approval", "at-customer"),   # the English name
    ("website", "In production", "in-production"),
    ("website", "Projekt-URL", "project-url-added"),      # a unique prefix
    ("website", "projekt url hinzugefugt", "project-url-added"),
    ("website", "Website", None),                         # geht live / live: ambiguous
    ("website", "Website live", "live"),                  # exact beats the prefix
    ("website", "Warten", "waiting-for-data"),
    ("website", "Fliegen", None),
    ("website", "", None),
    ("twolevel", "Under behandling", "in-progress"),
    ("twolevel", "under behandling", "in-progress"),
    ("twolevel", "Genåbnet", "reopened"),
    ("twolevel", "genaabnet", "reopened"),
    ("twolevel", "Genabnet", "reopened"),
    ("twolevel", "Ny", "new"),
    ("twolevel", "Ubehandlet", "new"),
    ("twolevel", "Received", "received"),
    ("support", "in Bearbeitung", "in-progress"),
    ("support", "Warten auf Rückmeldung", "waiting"),
    ("support", "Warten", None),                          # two statuses start so
    ("support", "waiting", "waiting"),                    # a name beats prefixes
    ("support", "Waiting for customer", "waiting"),
    ("support", "gelost", "resolved"),
    ("support", "Geschlossen", "closed"),
    ("support", "closed", "closed"),
]


@pytest.mark.parametrize(("name", "text", "expected"), LOOKUPS)
def test_status_lookup(name, text, expected):
    found = WF[name].find_status(text)
    assert (found.name if found else None) == expected


SUB_LOOKUPS = [
    ("Opdateret i TEST. Afventer kunde accept", "updated-in-test-waiting-for-approval"),
    ("opdateret i test, accepteret af kunde", "updated-in-test-accepted"),
    ("Opdateret i PROD, Ikke accepteret af kunde", "updated-in-production-not-accepted"),
    ("Opdateret i", None),                                        # six start so
    ("Sendt til TE Sverige", "sent-to-te-sweden"),
    ("Ændringsønske fra kunde", "change-request"),
    ("aendringsoenske fra kunde", "change-request"),
    ("waiting for customer approval", "waiting-for-customer-approval"),   # English
    ("Afventer godkendelse", "waiting-for-customer-approval"),
]


@pytest.mark.parametrize(("text", "expected"), SUB_LOOKUPS)
def test_substatus_lookup(text, expected):
    assert WF["twolevel"].find_substatus(text) == expected


@pytest.mark.parametrize(("a", "b"), [("ß", "ss"), ("æ", "ae"), ("ø", "oe"), ("å", "aa"),
                                      ("å", "a"), ("Ü", "u"), ("ü", "ue"), ("É", "e")])
def test_spellings_without_special_letters_are_the_same_key(a, b):
    assert key(f"x{a}y") == key(f"x{b}y")


# customers' commands in their language
ALIASES = [
    ("/schließen", "close"), ("/schliessen", "close"), ("/erledigt", "close"),
    ("/wieder öffnen", "reopen"), ("/wiedereröffnen", "reopen"), ("/öffnen", "reopen"),
    ("/Wieder Öffnen", "reopen"), ("/luk", "close"), ("/genåbn", "reopen"),
    ("/genaabn", "reopen"), ("/godkend", "approve"), ("/approve", "approve"),
]


@pytest.mark.parametrize(("line", "verb"), ALIASES)
def test_localised_command_names(line, verb):
    cmd = parse_command(line)
    assert (cmd.verb, cmd.error) == (verb, "")


def test_a_word_after_a_foreign_command_is_still_an_unknown_command():
    assert "unknown command /wieder" in parse_command("/wieder da").error


TWO = WF["twolevel"]
WORLD = World(agents={"anna@a.example": ("Anna Agent", None)}, projects={"tms": "twolevel"})
AGENT = Actor("anna@a.example", "agent")
CUSTOMER = Actor("carla@c.example", "customer")


def ticket(status: str, sub: str = "", assignee: str = "") -> TicketState:
    return TicketState(number=3, project="tms", status=status, substatus=sub,
                       assignee=assignee, requester="carla@c.example")


# (ticket before, who, line, applied?, (status, sub-status) after)
TWO_LEVEL = [
    (ticket("new"), AGENT, "/assign anna", True, ("received", "")),
    (ticket("in-progress"), AGENT, "/assign anna", True, ("in-progress", "")),
    (ticket("new", assignee="bob@a.example"), AGENT, "/assign anna", True, ("new", "")),
    (ticket("in-progress", "waiting-for-customer-approval"), CUSTOMER, "/godkend", True,
     ("closed", "approved-by-customer")),
    (ticket("in-progress", "updated-in-production-waiting-for-approval"), CUSTOMER,
     "/godkend", True, ("closed", "updated-in-production-accepted")),
    (ticket("in-progress", "updated-in-test-waiting-for-approval"), CUSTOMER, "/godkend",
     True, ("in-progress", "updated-in-test-accepted")),
    (ticket("in-progress", "normal"), CUSTOMER, "/godkend", False,
     ("in-progress", "normal")),
    (ticket("in-progress", "waiting-for-customer-approval"), CUSTOMER, "/luk", False,
     ("in-progress", "waiting-for-customer-approval")),
    (ticket("closed"), CUSTOMER, "/genåbn", False, ("closed", "")),
    (ticket("in-progress", "waiting-for-customer-approval"), CUSTOMER,
     "/status under behandling, godkendt af kunde", False,
     ("in-progress", "waiting-for-customer-approval")),
]


@pytest.mark.parametrize(("before", "actor", "line", "applied", "after"), TWO_LEVEL)
def test_twolevel_approval_and_assignment(before, actor, line, applied, after):
    result = plan((parse_command(line),), before, actor, TWO, WORLD)
    assert result.applied is applied, result.outcomes[0].message
    assert (result.after.status, result.after.substatus) == after


# what a mail to the customer may offer: exactly what the workflow accepts now
OFFERS = [
    ("twolevel", "in-progress", "normal", ()),
    ("twolevel", "in-progress", "waiting-for-customer-approval", ("approve",)),
    ("twolevel", "in-progress", "updated-in-test-waiting-for-approval", ("approve",)),
    ("twolevel", "closed", "approved-by-customer", ()),
    ("support", "resolved", "", ("close", "reopen")),
    ("support", "closed", "", ("reopen",)),
    ("support", "in-progress", "", ()),
    ("website", "at-customer", "", ("close",)),
    ("website", "live", "", ()),
]


@pytest.mark.parametrize(("name", "status", "sub", "offered"), OFFERS)
def test_customer_commands_follow_the_workflow(name, status, sub, offered):
    wf = WF[name]
    assert customer_commands(wf, status, sub) == offered
    for verb in ("close", "reopen", "approve"):
        result = plan((parse_command(f"/{verb}"),), ticket(status, sub), CUSTOMER, wf,
                      World(projects={"tms": name}))
        assert result.applied is (verb in offered), (verb, result.outcomes[0].message)


def test_an_approval_to_an_unknown_status_is_a_config_error():
    table = {"statuses": [{"name": "a"}, {"name": "b", "category": "closed"}],
             "customer_approve": {"a": "nowhere"}}
    with pytest.raises(WorkflowError, match="customer_approve"):
        build_workflow("x", table)
    assert build_workflow("x", table | {"customer_approve": {"a": "b"}}
                          ).customer_approve == {"a": ("b", "")}
