"""Workflow roles and whose turn it is (issue 11, item 2): who acts on a ticket given a
project's role mapping, the mails that tell them, `project role`, and `ticket list
--waiting-on`. Pure tables, then the website flow in German end to end over real SMTP
on both databases."""

from __future__ import annotations

import json

import pytest

from routing.actors import SYSTEM, Actor, AgentInfo, Person, Staff
from routing.announce import changes_and_mails
from routing.context import Policy, ProjectInfo, Site, TicketContext, TicketState
from routing.roles import (
    customer_todo,
    find_role,
    todo_of,
    turns,
    waits_on,
    workflow_roles,
)
from routing.workflow_config import build_workflows
from tests.support.harness import make_mail
from tests.test_mail_commands import ANNA, CARLA, latest, show, write

WF = build_workflows({})
WEB = {"digital_coach": ("dc@a.example",), "key_account_manager": ("kam@a.example",),
       "implementer": ("uwe@a.example", "ute@a.example")}


# --- who acts: a status, a role map and a ticket -> the people ---------------------------


@pytest.mark.parametrize(("workflow", "status", "sub", "role_map", "ticket", "expected"), [
    ("website", "backlog", "", WEB, {}, [("digital_coach", ("dc@a.example",))]),
    ("website", "to-do", "", WEB, {}, [("key_account_manager", ("kam@a.example",))]),
    ("website", "in-production", "", WEB, {},
     [("implementer", ("uwe@a.example", "ute@a.example"))]),
    ("website", "waiting-for-data", "", WEB, {"customers": ("c@x.example", "d@x.example")},
     [("digital_coach", ("dc@a.example",)), ("customer", ("c@x.example", "d@x.example"))]),
    ("website", "at-customer", "", {}, {"customers": ("c@x.example",)},
     [("digital_coach", ()), ("customer", ("c@x.example",))]),
    ("website", "live", "", WEB, {}, [("digital_coach", ("dc@a.example",)), ("accounting", ())]),
    # owner and handler are the ticket's own; the mapping stands in while it has none
    ("support", "new", "", {"owner": ("boss@a.example",)}, {"owner": "o@a.example"},
     [("owner", ("o@a.example",))]),
    ("support", "new", "", {"owner": ("boss@a.example",)}, {},
     [("owner", ("boss@a.example",))]),
    ("support", "in-progress", "", {}, {"assignee": "h@a.example", "owner": "o@a.example"},
     [("handler", ("h@a.example",))]),
    ("support", "open", "", {}, {}, [("handler", ())]),
    ("support", "waiting", "", {}, {"customers": ("c@x.example",)},
     [("customer", ("c@x.example",))]),
    ("support", "closed", "", WEB, {}, []),
    # two levels: the sub-status is the finer step, unless the ticket is closed
    ("twolevel", "in-progress", "waiting-for-customer-approval", {},
     {"customers": ("c@x.example",)}, [("customer", ("c@x.example",))]),
    ("twolevel", "in-progress", "", {"supporter": ("s@a.example",)}, {},
     [("supporter", ("s@a.example",))]),
    ("twolevel", "in-progress", "standby", {"supporter": ("s@a.example",)}, {}, []),
    ("twolevel", "closed", "approved-by-customer", {"supporter": ("s@a.example",)}, {}, []),
])
def test_who_acts_for_a_status_given_the_role_map_and_the_ticket(workflow, status, sub,
                                                                  role_map, ticket, expected):
    found = turns(WF[workflow], status, sub, role_map, owner=ticket.get("owner", ""),
                  assignee=ticket.get("assignee", ""), customers=ticket.get("customers", ()))
    assert [(t.role, t.people) for t in found] == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("Digital Coach", "digital_coach"), ("digital_coach", "digital_coach"),
    ("Umsetzer", "implementer"), ("umsetzer", "implementer"), ("Key", "key_account_manager"),
    ("Kunde", "customer"), ("CUSTOMER", "customer"), ("Buchhaltung", "accounting"),
    ("Besitzer", None), ("Supporter", None), ("", None),
])
def test_website_roles_are_found_by_key_or_name_in_any_language(text, expected):
    assert find_role(text, workflow_roles(WF["website"])) == expected


def test_every_preset_names_its_roles_and_says_what_is_to_be_done():
    assert workflow_roles(WF["support"]) == ("owner", "handler", "customer")
    assert workflow_roles(WF["website"]) == ("digital_coach", "key_account_manager",
                                             "customer", "implementer", "accounting")
    assert "development" in workflow_roles(WF["twolevel"])
    assert todo_of(WF["website"], "waiting-for-data") == "Die fehlenden Unterlagen nachliefern."
    assert todo_of(WF["twolevel"], "in-progress", "waiting-for-customer-approval") == \
        "Godkende løsningen eller svaret og lukke sagen."


@pytest.mark.parametrize(("language", "expected"), [
    ("de", "Die fehlenden Unterlagen nachliefern."), ("en", ""), ("da", ""),
])
def test_a_customer_is_asked_with_the_todo_only_in_the_workflows_language(language, expected):
    assert customer_todo(WF["website"], "waiting-for-data", "", language) == expected
    assert customer_todo(WF["twolevel"], "in-progress", "waiting-for-access", "da") == \
        "Give adgang til serveren, så arbejdet kan begynde."


@pytest.mark.parametrize(("query", "expected"), [
    ({"role": "customer"}, True), ({"role": "digital_coach"}, True),
    ({"role": "implementer"}, False), ({"email": "dc@a.example"}, True),
    ({"email": "c@x.example"}, False),        # a customer is asked for by role only
    ({"email": "kam@a.example"}, False),
])
def test_a_ticket_waits_on_a_role_or_an_agent_who_plays_one(query, expected):
    found = turns(WF["website"], "waiting-for-data", "", WEB, customers=("c@x.example",))
    assert waits_on(found, **query) is expected


# --- the mails: told once, the customer asked instead of told ----------------------------

DC = AgentInfo("dc@a.example", "Dora Coach", notify=frozenset({"status_change", "assigned"}))
KAM = AgentInfo("kam@a.example", "Karl KAM", notify=frozenset({"status_change"}))
AGENT = AgentInfo("anna@a.example", "Anna")
CUSTOMER = Person("c@x.example", "Carla")


def site() -> Site:
    info = ProjectInfo("web", "Web", "web", "website", language="de",
                       roles=tuple(sorted({**WEB, "implementer": ("anna@a.example",)}.items())))
    return Site(Staff({a.email: a for a in (DC, KAM, AGENT)}), {"web": info}, WF,
                Policy("support@example.com"))


def moved(status: str, to: str, actor: Actor, tell_customers: bool = True, **after):
    before = TicketState(3, "web", status, requester=CUSTOMER.email)
    ctx = TicketContext(before, "Webseite", site().projects["web"], WF["website"],
                        customers=(CUSTOMER,))
    after_state = TicketState(3, "web", to, requester=CUSTOMER.email, **after)
    _, _, mails = changes_and_mails(ctx, before, after_state, actor, site(),
                                    causes={}, tell_customers=tell_customers)
    return sorted((m.to.email, m.template) for m in mails), mails


ANNA_ACTS = Actor("anna@a.example", "agent")


@pytest.mark.parametrize(("status", "to", "actor", "expected"), [
    # the digital coach wants status changes too: one mail, the turn mail
    ("data-checked", "waiting-for-data", ANNA_ACTS,
     [("c@x.example", "ask_customer"), ("dc@a.example", "notify_your_turn"),
      ("kam@a.example", "notify_status_change")]),
    ("to-do", "data-checked", ANNA_ACTS,
     [("dc@a.example", "notify_status_change"), ("kam@a.example", "notify_your_turn")]),
    # whoever moved it is not told: anna is the implementer here
    ("data-checked", "in-production", ANNA_ACTS,
     [("c@x.example", "status_changed"), ("dc@a.example", "notify_status_change"),
      ("kam@a.example", "notify_status_change")]),
    # a timer moves it: everyone acting is told; the customer asked in the plain
    # status mail's stead
    ("in-production", "at-customer", SYSTEM,
     [("c@x.example", "ask_customer"), ("dc@a.example", "notify_your_turn"),
      ("kam@a.example", "notify_status_change")]),
])
def test_acting_roles_are_told_once_and_the_customer_is_asked(status, to, actor, expected):
    got, _ = moved(status, to, actor)
    assert [g for g in got if g[0] != "anna@a.example" or actor is SYSTEM] == expected


def test_a_turn_mail_carries_the_role_the_todo_and_an_assignment_in_one():
    got, mails = moved("data-checked", "waiting-for-data", ANNA_ACTS, assignee="dc@a.example")
    assert [g for g in got if g[0] == "dc@a.example"] == [("dc@a.example", "notify_your_turn")]
    (turn,) = (m for m in mails if m.template == "notify_your_turn")
    assert turn.change["role"] == "Digital Coach"
    assert turn.change["todo"] == "Die fehlenden Unterlagen nachliefern."
    assert turn.change["assigned"] == "handler"
    (ask,) = (m for m in mails if m.template == "ask_customer")
    assert (ask.change["role"], ask.change["new_label"]) == ("Kunde", "Warten auf Daten")


def test_an_english_project_asks_its_customer_without_the_german_todo():
    english = site()
    english = Site(english.staff, {"web": ProjectInfo("web", "Web", "web", "website",
                                                      language="en")}, WF, english.policy)
    before = TicketState(3, "web", "data-checked", requester=CUSTOMER.email)
    ctx = TicketContext(before, "Site", english.projects["web"], WF["website"],
                        customers=(CUSTOMER,))
    _, _, mails = changes_and_mails(ctx, before, TicketState(
        3, "web", "waiting-for-data", requester=CUSTOMER.email), ANNA_ACTS, english, causes={})
    (ask,) = (m for m in mails if m.template == "ask_customer")
    assert (ask.change["role"], ask.change["todo"]) == ("Customer", "")


def test_a_customer_who_gets_the_agents_reply_is_asked_in_it_not_by_a_second_mail():
    got, _ = moved("data-checked", "waiting-for-data", ANNA_ACTS, tell_customers=False)
    assert not [g for g in got if g[0] == CUSTOMER.email]


# --- end to end: the website flow in German ---------------------------------------------

DORA, KARL, UWE = "dora@agency.example", "karl@agency.example", "uwe@agency.example"


def turn_mails(h, address: str) -> list:
    """The mails telling `address` it is their turn: their own, or a note of a new
    ticket or a customer's reply that says so."""
    return [m for m in h.relay.to(address) if "Sie sind am Zug als" in m.text]


def waiting_on(h, *args: str) -> list[int]:
    result = h.cli("ticket", "list", "--waiting-on", *args, "--json")
    assert result.code == 0, result.err
    return sorted(t["number"] for t in json.loads(result.out))


def setup_website(h) -> None:
    assert h.cli("project", "add", "web", "--name", "Webshop Müller", "--workflow", "website",
                 "--customer", CARLA, "--language", "de").code == 0
    for email, name in ((ANNA, "Anna Agent"), (DORA, "Dora Coach"), (KARL, "Karl KAM"),
                        (UWE, "Uwe Umsetzer")):
        assert h.cli("agent", "add", email, "--name", name).code == 0
    for role, email in (("Digital Coach", DORA), ("key account manager", KARL),
                        ("Umsetzer", UWE)):
        result = h.cli("project", "role", "web", role, email)
        assert result.code == 0, result.err
    # Dora wants every status change too: she still gets one mail per change
    assert h.cli("agent", "notify", DORA, "--on", "status_change").code == 0


def test_project_role_sets_lists_and_refuses_with_one_line(harness_factory, sqlite_url):
    h = harness_factory(sqlite_url)
    setup_website(h)
    listed = h.cli("project", "role", "web")
    assert listed.code == 0, listed.err
    assert "digital_coach" in listed.out and DORA in listed.out
    assert "the ticket's customers" in listed.out
    data = json.loads(h.cli("project", "role", "web", "--json").out)
    assert {r["role"]: r["agents"] for r in data}["implementer"] == [UWE]
    shown = h.cli("project", "show", "web")
    assert "roles:" in shown.out and "Umsetzer" in shown.out and UWE in shown.out
    assert json.loads(h.cli("project", "show", "web", "--json").out)["roles"] == data
    # the list is set, not added to
    assert h.cli("project", "role", "web", "umsetzer", KARL, ANNA).code == 0
    data = json.loads(h.cli("project", "role", "web", "--json").out)
    assert {r["role"]: r["agents"] for r in data}["implementer"] == sorted([KARL, ANNA])
    for args, why in ((("Besitzer", ANNA), "has no role 'Besitzer'"),
                      (("Umsetzer", CARLA), f"{CARLA} is no agent"),
                      (("Kunde", ANNA), "played by each ticket's customers"),
                      (("Umsetzer", "nobody@agency.example"), "is no agent")):
        refused = h.cli("project", "role", "web", *args)
        assert refused.code == 1 and why in refused.err, refused.err
        assert len(refused.err.strip().splitlines()) == 1
    assert h.cli("project", "role", "web", "Umsetzer").code == 2      # --none unmaps
    assert h.cli("project", "role", "web", "Umsetzer", "--none").code == 0
    assert h.cli("project", "role", "nope").code == 1


def test_website_walk_tells_each_role_its_turn_and_asks_the_customer_in_german(
        harness_factory, db_url):
    h = harness_factory(db_url, groups={"accounting": "billing@agency.example"}).start()
    setup_website(h)
    h.send(make_mail(sender=CARLA, subject="Neue Webseite", body="Wir brauchen eine Seite."),
           mail_from=CARLA)
    h.send(make_mail(sender=CARLA, subject="Zweite Seite", body="Noch eine."),
           mail_from=CARLA)
    h.settle()
    n, other = (t.id for t in h.tickets())
    notification = next(m for m in h.relay.to(ANNA) if f"#{n} " in m.text)
    # both wait on the digital coach in the backlog; she heard of them as new tickets,
    # and those notes say it is her turn
    assert waiting_on(h, "Digital Coach") == [n, other]
    assert len(h.relay.to(DORA)) == 2
    assert all("Sie sind am Zug als Digital Coach („Backlog“): Den Verkaufsprozess" in m.text
               for m in turn_mails(h, DORA))

    write(h, notification, ANNA, "/status ToDo", quote=False)
    (todo,) = turn_mails(h, KARL)
    assert todo.subject.endswith("(Sie sind am Zug: ToDo)")
    assert "Sie sind am Zug als Key Account Manager:" in todo.text
    assert "Prüfen, ob alle nötigen Daten da sind." in todo.text
    write(h, notification, ANNA, "/status Daten geprüft", quote=False)
    assert len(turn_mails(h, KARL)) == 2
    dora_before = len(h.relay.to(DORA))

    # waiting for data: the digital coach and the customer act
    write(h, notification, ANNA, "/status Warten auf Daten", quote=False)
    assert len(h.relay.to(DORA)) == dora_before + 1           # one mail, not two
    assert "Die fehlenden Unterlagen nachliefern." in turn_mails(h, DORA)[-1].text
    ask = latest(h, CARLA, 3)                                 # two acknowledgements first
    assert ask.subject.endswith("(Ihre Mithilfe ist gefragt)")
    assert "Nun sind Sie am Zug:" in ask.text and "Die fehlenden Unterlagen nachliefern." \
        in ask.text and "„Warten auf Daten“" in ask.text
    assert "/" not in ask.text.replace("://", "")             # the customer may /close only later
    assert waiting_on(h, "kunde") == [n]
    assert waiting_on(h, "customer", "--project", "web") == [n]
    assert waiting_on(h, "me", "--as", DORA) == [n, other]
    assert waiting_on(h, KARL) == []
    data = show(h, n)
    assert [(w["label"], w["people"]) for w in data["waiting_on"]] == [
        ("Digital Coach", [DORA]), ("Kunde", [CARLA])]
    text = h.cli("ticket", "show", str(n)).out
    assert f"waiting on    Digital Coach ({DORA}), Kunde ({CARLA})" in text
    listed = h.cli("ticket", "list").out
    assert "WAITING ON" in listed and "Digital Coach, Kunde" in listed

    # the customer's data moves it on: the KAM hears of the reply, once, told it is his turn
    karl_before = len(h.relay.to(KARL))
    write(h, ask, CARLA, "Anbei die Texte.")
    assert show(h, n)["status"] == "data-checked"
    assert len(h.relay.to(KARL)) == karl_before + 1
    told = h.relay.to(KARL)[-1]
    assert "Anbei die Texte." in told.text
    assert "Sie sind am Zug als Key Account Manager („Daten geprüft“)" in told.text
    assert waiting_on(h, "me", "--as", KARL) == [n]

    write(h, notification, ANNA, "/status In Umsetzung", quote=False)
    write(h, notification, ANNA, "/status Projekt-URL hinzugefügt", quote=False)
    assert ["Die Grundstruktur der Webseite aufsetzen." in m.text
            for m in turn_mails(h, UWE)] == [True, False]
    assert waiting_on(h, "Umsetzer") == [n]

    # at the customer, with a reply: the reply itself asks, no second mail
    before = len(h.relay.to(CARLA))
    write(h, notification, ANNA, "/status Beim Kunden\nDie Seite ist fertig zur Ansicht.",
          quote=False)
    assert len(h.relay.to(CARLA)) == before + 1
    reply = latest(h, CARLA, before + 1)
    assert "Die Seite ist fertig zur Ansicht." in reply.text
    assert "Nun sind Sie am Zug: Die fertige Seite prüfen" in reply.text
    assert "/erledigt" in reply.text and "/wieder" not in reply.text
    assert "Die fertige Seite prüfen" in turn_mails(h, DORA)[-1].text

    # the customer's go-ahead: the KAM puts it live, then the coach tells the customer
    write(h, reply, CARLA, "/erledigt\nPasst so.")
    assert show(h, n)["status"] == "going-live"
    assert "Die Seite online stellen" in turn_mails(h, KARL)[-1].text
    write(h, notification, ANNA, "/status Website live", quote=False)
    assert show(h, n)["status"] == "live"
    last = turn_mails(h, DORA)[-1]
    assert "„Website geht live“ auf „Website live“" in last.text
    assert "Den Kunden bei Bedarf informieren" in last.text
    assert h.relay.wait_for("billing@agency.example")
    # Anna moved it every time and played no role: she got no turn mail
    assert turn_mails(h, ANNA) == []
    assert waiting_on(h, "customer") == []

    # the command line moves a ticket the same way: the KAM's turn on the other one
    result = h.cli("ticket", "set", str(other), "--status", "ToDo", "--as", ANNA)
    assert result.code == 0, result.err
    h.settle()
    assert f"#{other} " in turn_mails(h, KARL)[-1].text
    assert waiting_on(h, "me", "--as", KARL) == [other]
    for args in (("Buchhalter",), ("me",), ("nobody@agency.example",)):
        wrong = h.cli("ticket", "list", "--waiting-on", *args)
        assert wrong.code == 2 and len(wrong.err.strip().splitlines()) == 1, wrong.err
