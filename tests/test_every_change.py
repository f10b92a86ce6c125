"""Every change told where the workflow says so (issue 11, items 6 and 9): the forum-like
preset tells its customers of status, priority, assignee (by name) and due date, all of
one action in one mail; change requests and files on new tickets notify the agents who
chose them."""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid

import pytest

from routing.actors import Actor, ActorKind, AgentInfo, Person, Staff
from routing.announce import changes_and_mails
from routing.context import Policy, ProjectInfo, Site, TicketContext, TicketState
from routing.decide import Incoming, decide
from routing.every_change import told_changes
from routing.guards import GuardFacts
from routing.rules import MailFacts, RouteDecision, Rule, Target
from routing.workflow import WorkflowError
from routing.workflow_config import build_workflows
from tests.support.harness import reply_to

WORKFLOWS = build_workflows({})
ANNA = AgentInfo("anna@example.com", "Anna Agent", notify=frozenset({"change_request"}))
BOB = AgentInfo("bob@example.com", "Bob Builder", notify=frozenset({"file_uploaded"}))
NONAME = AgentInfo("x@example.com", "")
CARL, DORA = Person("carl@customer.example", "Carl"), Person("dora@customer.example")
PROJECTS = {"band": ProjectInfo("band", "Band", "band", "forum", language="de"),
            "acme": ProjectInfo("acme", "Acme", "acme", "support")}


def site() -> Site:
    return Site(Staff({a.email: a for a in (ANNA, BOB, NONAME)}), PROJECTS, WORKFLOWS,
                Policy("support@example.com", support_name="Studio"))


def state(project: str = "band", **kw) -> TicketState:
    return TicketState(7, project, kw.pop("status", "new"), requester=CARL.email, **kw)


def ctx(project: str = "band", **kw) -> TicketContext:
    return TicketContext(state(project, **kw), "Neuer Mix", PROJECTS[project],
                         WORKFLOWS[PROJECTS[project].workflow], customers=(CARL, DORA))


D = dt.date(2027, 1, 10)


@pytest.mark.parametrize(("project", "before", "after", "rows"), [
    ("band", {}, {"status": "in-progress"}, [("status", "Neu", "In Umsetzung")]),
    ("band", {}, {"priority": 3}, [("priority", "normal", "high")]),
    ("band", {}, {"assignee": BOB.email}, [("assignee", "", "Bob Builder")]),
    ("band", {"assignee": BOB.email}, {"assignee": NONAME.email},
     [("assignee", "Bob Builder", "Studio")]),          # no name: the desk's, never the address
    ("band", {}, {"due": D}, [("due", "", "2027-01-10")]),
    ("band", {"due": D}, {"due": None}, [("due", "2027-01-10", "")]),
    ("band", {}, {"priority": 3, "assignee": BOB.email, "due": D, "status": "questions"},
     [("status", "Neu", "Rückfrage"), ("priority", "normal", "high"),
      ("assignee", "", "Bob Builder"), ("due", "", "2027-01-10")]),
    ("band", {}, {"type": "frage"}, []),                # not a field customers are told of
    ("acme", {}, {"priority": 3, "status": "open"}, []),   # visible-statuses: none of it
])
def test_the_rows_a_customer_is_told(project, before, after, rows):
    got = told_changes(state(project, **before), state(project, **{**before, **after}), site())
    assert [(r["field"], r["old"], r["new"]) for r in got] == rows


AGENT = Actor(BOB.email, ActorKind.AGENT, name="Bob Builder")


@pytest.mark.parametrize(("project", "after", "tell", "templates"), [
    # every-change: one `changes` mail per customer, never a status and a due-date mail;
    # when it is now the customer's turn, the mail asking them carries the list
    ("band", {"priority": 3, "due": D, "status": "in-progress"}, True, {"changes"}),
    ("band", {"priority": 3, "due": D, "status": "questions"}, True, {"ask_customer"}),
    ("band", {"priority": 3}, True, {"changes"}),
    # the agent's forwarded reply carries the list: no separate mail at all
    ("band", {"priority": 3, "due": D, "status": "in-progress"}, False, set()),
    # visible-statuses: the old way (status mail, due-date mail), priority untold
    ("acme", {"priority": 3}, True, set()),
    ("acme", {"due": D, "status": "waiting"}, True, {"due_date", "ask_customer"}),
])
def test_one_action_gives_each_customer_one_mail(project, after, tell, templates):
    c = ctx(project)
    _, _, mails = changes_and_mails(c, c.state, state(project, **after), AGENT, site(),
                                    causes={}, tell_customers=tell)
    to_customers = [m for m in mails if m.to.email in (CARL.email, DORA.email)]
    assert {m.template for m in to_customers} == templates
    if project == "band" and tell:
        assert all(m.changes for m in to_customers)
    if project == "band":
        assert sorted(m.to.email for m in to_customers) == (
            sorted([CARL.email, DORA.email]) if tell else [])


def test_an_agent_reply_with_commands_carries_the_changes_and_nothing_else_goes_out():
    s = site()
    m = Incoming(MailFacts(BOB.email, "", (), "Re: Neuer Mix", ()), "Bob", "<m@x>",
                 "/priority high\n/assign bob\n/due 2027-01-10\nDer Mix ist fertig.")
    e = decide(m, RouteDecision(Target.TICKET, Rule.REPLY_TOKEN, "t", 7, "band"), ctx(), s,
               GuardFacts(s.policy))
    customer_mails = [x for x in e.mails if x.to.email in (CARL.email, DORA.email)]
    assert [x.template for x in customer_mails] == ["agent_reply", "agent_reply"]
    assert [r["field"] for r in customer_mails[0].changes] == ["priority", "assignee", "due"]
    assert customer_mails[0].changes[1]["new"] == "Bob Builder"


def test_a_command_line_action_gives_each_customer_one_changes_mail():
    from routing.commands import find_commands, plan
    from routing.decide import agent_action

    s, c = site(), ctx()
    actor = Actor(BOB.email, ActorKind.AGENT, name="Bob Builder")
    p = plan(find_commands("/status in umsetzung\n/priority high\n/due 2027-01-10").commands,
             c.state, actor, c.workflow, s.world)
    e = agent_action(Incoming(MailFacts(BOB.email, "", (), "", ())), RouteDecision(
        Target.TICKET, "cli", "the command line", 7, "band"), c, s, GuardFacts(s.policy),
        actor, p)
    customer_mails = [m for m in e.mails if m.to.email in (CARL.email, DORA.email)]
    assert [(m.template, m.to.email) for m in customer_mails] == [
        ("changes", CARL.email), ("changes", DORA.email)]
    assert [r["field"] for r in customer_mails[0].changes] == ["status", "priority", "due"]


@pytest.mark.parametrize(("kind", "expected"), [("änderungswunsch", True),
                                               ("Aenderungswunsch", True),
                                               ("change-request", True), ("frage", False)])
def test_a_change_request_notifies_agents_who_chose_it(kind, expected):
    c = ctx(assignee=ANNA.email)
    _, _, mails = changes_and_mails(c, c.state, state(type=kind, assignee=ANNA.email),
                                    Actor(BOB.email, ActorKind.AGENT), site(), causes={})
    told = [m.to.email for m in mails if m.template == "notify_change_request"]
    assert told == ([ANNA.email] if expected else [])


@pytest.mark.parametrize("files, told", [(0, []), (2, [BOB.email])])
def test_a_new_ticket_with_files_tells_who_chose_file_uploaded(files, told):
    s = site()
    m = Incoming(MailFacts(CARL.email, "", (), "Noten", ()), "Carl", "<m@x>", "Anbei.",
                 attachments=files)
    e = decide(m, RouteDecision(Target.NEW_TICKET, Rule.SENDER_PROJECT, "r", project="band"),
               None, s, GuardFacts(s.policy))
    assert [x.to.email for x in e.mails if x.template == "notify_new_ticket"] == told


def test_notify_customer_is_checked():
    with pytest.raises(WorkflowError, match="notify_customer"):
        build_workflows({"x": {"extends": "support", "notify_customer": "always"}})
    assert build_workflows({"x": {"extends": "support", "notify_customer": "every-change"}})[
        "x"].notify_customer == "every-change"


# --- end to end -------------------------------------------------------------------------

CARLA, ANNA_MAIL, BOB_MAIL = "carla@client.example", "anna@agency.example", "bob@agency.example"


@pytest.fixture
def forum(harness_factory, db_url):
    h = harness_factory(db_url).start()
    assert h.cli("project", "add", "band", "--name", "Tonstudio", "--workflow", "forum",
                 "--language", "de", "--customer", CARLA).code == 0
    assert h.cli("agent", "add", ANNA_MAIL, "--name", "Anna Agent").code == 0
    assert h.cli("agent", "add", BOB_MAIL, "--name", "Bob Builder").code == 0
    assert h.cli("agent", "notify", BOB_MAIL, "--on", "file_uploaded", "change_request",
                 "--off", "new_ticket").code == 0
    return h


def with_file(sender: str, subject: str) -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"], msg["To"], msg["Subject"] = sender, "support@example.com", subject
    msg["Message-ID"] = make_msgid(domain="client.example")
    msg.set_content("Anbei die Noten für den neuen Titel.")
    msg.add_attachment(b"%PDF-1.4 notes" * 50, maintype="application", subtype="pdf",
                       filename="noten.pdf")
    return msg.as_bytes()


def test_forum_flow_one_customer_mail_per_agent_mail_and_files_notify(forum):
    forum.send(with_file(CARLA, "Neuer Mix"), mail_from=CARLA)
    forum.settle()
    n = forum.tickets()[-1].id
    (told_bob,) = forum.relay.wait_for(BOB_MAIL, 1)     # he chose file_uploaded only
    assert "Neuer Mix" in told_bob.subject
    notification = forum.relay.wait_for(ANNA_MAIL, 1)[0]
    forum.relay.wait_for(CARLA, 1)                       # the acknowledgement
    forum.send(reply_to(notification.message, sender=ANNA_MAIL,
                        body="/priority high\n/assign bob@agency.example\n/due 2027-01-10\n"
                             "Wir legen los, Bob übernimmt den Mix."),
               rcpt=notification.message["Reply-To"].addresses[0].addr_spec,
               mail_from=ANNA_MAIL)
    forum.settle()
    to_carla = forum.relay.to(CARLA)
    assert len(to_carla) == 2                            # the ack, then exactly one mail
    reply = to_carla[-1]
    assert "Bob übernimmt den Mix" in reply.text
    assert "Priorität: normal → hoch" in reply.text
    assert "Bearbeitet von: keine Angabe → Bob Builder" in reply.text
    assert "Erledigt bis: keine Angabe → 10.01.2027" in reply.text
    assert BOB_MAIL not in reply.text

    # a command-only mail: one `changes` mail, in German, with every change of it
    forum.send(reply_to(notification.message, sender=ANNA_MAIL,
                        body="/status Rückfrage\n/priority normal\n/type Änderungswunsch"),
               rcpt=notification.message["Reply-To"].addresses[0].addr_spec,
               mail_from=ANNA_MAIL)
    forum.settle()
    to_carla = forum.relay.wait_for(CARLA, 3)
    assert len(to_carla) == 3
    assert "Status: Neu → Rückfrage" in to_carla[-1].text
    assert "Priorität: hoch → normal" in to_carla[-1].text
    bobs = forum.relay.wait_for(BOB_MAIL, 3)
    change_request = [m for m in bobs if m.subject.endswith(("(change request)",
                                                              "(Änderungswunsch)"))]
    assert len(change_request) == 1, [m.subject for m in bobs]
    assert f"#{n}" in change_request[0].text
