"""The customer's overview (issue 11, item 8): `/list` (`/liste`, `/oversigt`) answered with
the sender's own requests and nobody else's, no ticket opened, the request recorded; the
acknowledgement of a new ticket lists the customer's other open requests."""

from __future__ import annotations

import datetime as dt

import pytest

from routing.actors import AgentInfo, Person, Staff
from routing.context import Policy, ProjectInfo, Site
from routing.decide import Incoming, decide
from routing.effects import MailKind, Outcome
from routing.guards import GuardFacts
from routing.loops import AutoClass
from routing.overview import Request, asks_overview, request_rows
from routing.rules import MailFacts, RouteDecision, Rule, Target
from routing.trust import Verdict
from routing.workflow_config import build_workflows
from tests.support.harness import make_mail

WORKFLOWS = build_workflows({})
PROJECTS = {"acme": ProjectInfo("acme", "Acme", "acme", "support", language="de"),
            "web": ProjectInfo("web", "Web", "web", "website")}
ANNA = AgentInfo("anna@example.com", "Anna")
CARL = Person("carl@customer.example", "Carl")
T0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(("text", "asks"), [
    ("/list", True), ("  /LIST  \n", True), ("/liste", True), ("/oversigt", True),
    ("/Oversigt\n\n-- \nCarl Customer\nACME", True),          # a signature is no text
    ("/list\n\nOn Mon, Support wrote:\n> old text", True),     # nor is a quote
    ("/list\nand my printer is broken", False),                # text: a request, not /list
    ("/list all", False), ("list", False), ("/lists", False), ("/close", False), ("", False),
])
def test_what_asks_for_the_overview(text, asks):
    assert asks_overview(text) is asks


def req(number, status, project="acme", day=1) -> Request:
    return Request(number, f"Request {number}", project, status, "",
                   T0 + dt.timedelta(days=day))


def site() -> Site:
    return Site(Staff({ANNA.email: ANNA}), PROJECTS, WORKFLOWS, Policy("support@example.com"))


def test_rows_open_first_newest_first_with_whose_turn():
    rows = request_rows((req(1, "closed", day=5), req(2, "waiting", day=1),
                         req(3, "open", day=3), req(4, "at-customer", "web", day=2)), site())
    assert [(r["number"], r["open"], r["turn"], r["status_label"]) for r in rows] == [
        (3, True, "team", "Offen"), (4, True, "both", "Beim Kunden"),
        (2, True, "customer", "Warten auf Rückmeldung"), (1, False, "", "Geschlossen")]
    assert [r["number"] for r in request_rows((req(1, "closed"), req(2, "new")), site(),
                                              open_only=True)] == [2]


def incoming(text: str, *, requests=(), sender=CARL.email, auto=None, verdict=None,
             ) -> Incoming:
    return Incoming(MailFacts(sender, "", (), "Overview", ()), "Carl", "<m@x>", text,
                    auto=auto or AutoClass.human(), verdict=verdict or Verdict.unchecked(),
                    requests=requests)


ROUTES = {"project": RouteDecision(Target.NEW_TICKET, Rule.PROJECT_ADDRESS, "p", project="acme"),
          "unassigned": RouteDecision(Target.UNASSIGNED, Rule.NONE, "nothing matched"),
          "ticket": RouteDecision(Target.TICKET, Rule.REPLY_TOKEN, "t", 7, "acme")}


@pytest.mark.parametrize(("route", "requests", "kw", "answered", "why"), [
    ("project", (req(1, "open"),), {}, 1, "answered with the sender's own requests (1 open"),
    ("unassigned", (), {}, 0, "answered"),             # a stranger: an empty list
    ("ticket", (req(7, "open"),), {}, 1, "answered"),  # a customer's reply to a ticket mail
    ("project", (req(1, "open"),), {"verdict": Verdict(False, "dkim=fail")}, None,
     "not answered: the sender could not be verified (dkim=fail)"),
    ("project", (req(1, "open"),), {"auto": AutoClass(True, True, ("auto-replied",))}, None,
     "not answered: automatic mail"),
])
def test_a_list_mail_opens_nothing_and_is_answered_or_recorded(route, requests, kw, answered,
                                                                why):
    s = site()
    e = decide(incoming("/list", requests=requests, **kw), ROUTES[route], None, s,
               GuardFacts(s.policy))
    assert e.outcome is Outcome.DONE and e.open is None and e.ticket is None
    assert e.after is None and e.changes == ()
    assert why in e.reason and e.rule == "overview"
    assert any(why in n for n in e.disposition["notes"])
    mails = [m for m in e.mails if m.kind is MailKind.OVERVIEW]
    if answered is None:
        assert e.mails == ()
    else:
        (m,) = mails
        assert m.to.email == CARL.email and len(m.requests) == answered
        assert m.project == (ROUTES[route].project or "")


def test_an_agent_writing_list_to_a_ticket_keeps_to_agent_commands():
    s = site()
    e = decide(incoming("/list", sender=ANNA.email), ROUTES["ticket"], None, s,
               GuardFacts(s.policy))
    assert e.rule != "overview"


def test_the_acknowledgement_lists_the_other_open_requests():
    s = site()
    e = decide(incoming("My printer is broken", requests=(req(1, "closed"), req(2, "open"))),
               ROUTES["project"], None, s, GuardFacts(s.policy))
    (ack,) = [m for m in e.mails if m.kind is MailKind.ACK]
    assert [r["number"] for r in ack.requests] == [2]


# --- end to end -------------------------------------------------------------------------

CARLA, DORA, EVE = "carla@client.example", "dora@client.example", "eve@elsewhere.example"


@pytest.fixture
def desk(harness_factory, db_url):
    h = harness_factory(db_url).start()
    assert h.cli("project", "add", "acme", "--name", "ACME GmbH", "--language", "de",
                 "--customer", CARLA, "--customer", DORA).code == 0
    assert h.cli("agent", "add", "anna@agency.example", "--name", "Anna Agent").code == 0
    return h


def test_list_returns_exactly_the_senders_requests_and_opens_no_ticket(desk):
    for sender, subject in ((CARLA, "Drucker defekt"), (DORA, "Geheimes Projekt"),
                            (CARLA, "Rechnung falsch")):
        desk.send(make_mail(sender=sender, subject=subject, body="Bitte helfen."),
                  mail_from=sender)
        desk.settle()
    acks = desk.relay.wait_for(CARLA, 2)
    # the second acknowledgement lists the other open request
    assert "Ihre weiteren offenen Anfragen:" in acks[1].text
    assert "Drucker defekt" in acks[1].text and "Geheimes Projekt" not in acks[1].text
    before = len(desk.tickets())

    desk.send(make_mail(sender=CARLA, subject="Übersicht", body="/liste"), mail_from=CARLA)
    desk.settle()
    overview = desk.relay.wait_for(CARLA, 3)[-1]
    assert overview.subject.startswith("Ihre Anfragen bei ACME GmbH")
    assert "Drucker defekt" in overview.text and "Rechnung falsch" in overview.text
    assert "Geheimes Projekt" not in overview.text
    assert "wir sind am Zug" in overview.text
    assert len(desk.tickets()) == before                 # no ticket for it
    row = desk.inbound()[-1]
    assert row.state == "done" and row.ticket_id is None and "/list request" in row.reason

    # a stranger gets an empty list, never anyone else's, and no ticket either
    desk.send(make_mail(sender=EVE, subject="x", body="/list"), mail_from=EVE)
    desk.settle()
    (empty,) = desk.relay.wait_for(EVE, 1)
    assert "no open or recently closed requests" in empty.text
    assert "Drucker" not in empty.text and "Geheimes" not in empty.text
    assert len(desk.tickets()) == before
