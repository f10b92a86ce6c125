"""Canned replies (`/template NAME`, `template list --replies`, `template preview`) and
teamwork (`agent_replied`): the pure parsing and decision as tables, then end to end over
real SMTP on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest

from routing.actors import AgentInfo, Person, Staff
from routing.commands import parse_command
from routing.context import Policy, ProjectInfo, Site, TicketContext, TicketState
from routing.decide import Incoming, decide
from routing.effects import Direction, MailKind
from routing.guards import GuardFacts
from routing.loops import AutoClass
from routing.rules import MailFacts, RouteDecision, Rule, Target
from routing.trust import Verdict
from routing.workflow_config import build_workflows
from tests.support.harness import make_mail, reply_to

# --- parsing -------------------------------------------------------------------------------


@pytest.mark.parametrize("line, value, error", [
    ("/template thanks-received", "thanks-received", ""),
    ("/Template Need-Login", "need-login", ""),
    ("  /template closing_soon  ", "closing_soon", ""),
    ("/template", None, "/template needs a value"),
    ("/template ../../etc/passwd", None, "use /template NAME"),
    ("/template two words", None, "use /template NAME"),
])
def test_a_template_line_parses_to_a_reply_name_or_says_why_not(line, value, error):
    cmd = parse_command(line)
    assert cmd.verb == "template" and cmd.value == value
    assert cmd.error.startswith(error) if error else cmd.error == ""


# --- deciding ----------------------------------------------------------------------------

WORKFLOWS = build_workflows({})
ANNA = AgentInfo("anna@example.com", "Anna Agent", projects=frozenset({"acme"}),
                 notify=frozenset({"agent_replied"}))
BEN = AgentInfo("ben@example.com", "Ben", projects=frozenset({"acme"}),
                notify=frozenset({"agent_replied"}))
BO = AgentInfo("bo@example.com", "Bo", projects=frozenset({"acme"}))       # switched it off
ACME = ProjectInfo("acme", "Acme", "acme", "support")
CARL = Person("carl@customer.example", "Carl")
REPLIES = {"thanks-received": "", "need-login": "", "broken": "line 3: 'x' is undefined"}


def site(replies=REPLIES) -> Site:
    return Site(Staff({a.email: a for a in (ANNA, BEN, BO)}), {"acme": ACME}, WORKFLOWS,
                Policy("support@example.com", replies=replies))


def ticket(**state) -> TicketContext:
    return TicketContext(TicketState(7, "acme", "open", requester=CARL.email, **state),
                         "Printer", ACME, WORKFLOWS["support"], customers=(CARL,))


def agent_mail(text: str, sender: str = ANNA.email, ctx: TicketContext | None = None,
               s: Site | None = None, purpose: str = "reply"):
    s = s or site()
    m = Incoming(MailFacts(sender, "", (), "Re: Printer", ()), "Sender", "<m1@x.example>",
                 text, 0, AutoClass.human(), Verdict.unchecked())
    route = RouteDecision(Target.TICKET, Rule.REPLY_TOKEN, "token", ticket=7, project="acme",
                          purpose=purpose)
    return decide(m, route, ctx or ticket(assignee=ANNA.email), s,
                  GuardFacts(s.policy, frozenset({"support@example.com"})))


def _transcript(effects) -> str:
    (t,) = (m for m in effects.mails if m.kind is MailKind.TRANSCRIPT)
    return t.transcript


@pytest.mark.parametrize("text, canned, direction, to_customer, said", [
    ("/template thanks-received\nI call you tomorrow.", ("thanks-received",), Direction.OUT,
     "I call you tomorrow.", "done: canned reply thanks-received inserted"),
    ("/template thanks-received", ("thanks-received",), Direction.OUT, "",
     "done: canned reply thanks-received"),
    ("/template need-login\n/template thanks-received\nHi", ("need-login", "thanks-received"),
     Direction.OUT, "Hi", "done: canned reply need-login"),
    ("/template thanks-received\n/status waiting\nHi", ("thanks-received",), Direction.OUT,
     "Hi", "done: status is now"),
    ("/template nope\nHi", (), Direction.INTERNAL, None,
     "refused: no canned reply 'nope'; known: broken, need-login, thanks-received"),
    ("/template broken\nHi", (), Direction.INTERNAL, None,
     "refused: canned reply 'broken' cannot be used: line 3"),
    ("/template thanks-received\n/status nonsense\nHi", (), Direction.INTERNAL, None,
     "not sent to the customer"),
    ("/template thanks-received\n/note\nHi", ("thanks-received",), Direction.INTERNAL, None,
     "done: canned reply thanks-received"),
], ids=["reply", "template-only", "two-templates", "with-a-command", "unknown", "broken",
        "another-line-refused", "in-a-note"])
def test_an_agents_template_line_is_planned_and_refusals_keep_the_mail_inside(
        text, canned, direction, to_customer, said):
    """The decision names the canned replies to insert (the handler renders them) and
    drops the line; a refused plan with a /template keeps the mail from the customer."""
    e = agent_mail(text)
    assert e.canned == canned
    assert e.message.direction is direction and "/template" not in e.message.text
    replies = [m for m in e.mails if m.kind is MailKind.REPLY]
    if to_customer is None:
        assert replies == []
    else:
        assert [(m.to.email, m.text) for m in replies] == [(CARL.email, to_customer)]
    assert said in _transcript(e)


def test_a_customer_may_not_use_template():
    e = agent_mail("/template thanks-received\nHello", sender=CARL.email)
    assert e.canned == () and "customers may only use" in _transcript(e)


@pytest.mark.parametrize("state, sender, purpose, told", [
    ({"assignee": ANNA.email, "owner": BEN.email}, ANNA.email, "reply", [BEN.email]),
    ({"assignee": BEN.email, "owner": ANNA.email}, ANNA.email, "reply", [BEN.email]),
    ({"assignee": ANNA.email, "owner": BO.email}, ANNA.email, "reply", []),
    ({"assignee": ANNA.email}, ANNA.email, "reply", []),
    ({}, ANNA.email, "reply", [BEN.email]),           # no owner or handler: the project's
    ({"assignee": ANNA.email, "owner": BEN.email}, ANNA.email, "note", []),
], ids=["owner-told", "handler-told", "switched-off", "alone", "everyone", "a-note"])
def test_the_other_agents_on_a_ticket_are_told_when_one_answers(state, sender, purpose, told):
    e = agent_mail("We are on it.", sender=sender, ctx=ticket(**state), purpose=purpose)
    notes = [m for m in e.mails if m.template == "notify_agent_replied"]
    assert [m.to.email for m in notes] == told
    for m in notes:
        assert (m.text, m.agent.email, m.agent.name) == ("We are on it.", ANNA.email,
                                                         "Anna Agent")


# --- end to end ----------------------------------------------------------------------------

CARLA = "carla@client.example"
ANNA_MAIL = "anna@agency.example"
BOB = "bob@agency.example"


def _text(received) -> str:
    return received.text.replace("\r\n", "\n")


def _answer(h, notification, body: str) -> None:
    h.send(reply_to(notification.message, sender=ANNA_MAIL, body=body),
           rcpt=notification.message["Reply-To"].addresses[0].addr_spec, mail_from=ANNA_MAIL)
    h.settle()


def test_canned_replies_by_mail_and_on_the_command_line(harness_factory, db_url, tmp_path):
    """`/template thanks-received` gives the customer the rendered text (her name, the
    subject, the agent, the project) and then the agent's own text; an unknown name is
    refused in the transcript and nothing reaches the customer; an override folder's
    reply wins; `template list --replies` and `template preview NAME --ticket N` work."""
    overrides = tmp_path / "overrides"
    (overrides / "replies").mkdir(parents=True)
    (overrides / "replies" / "closing-soon.txt.j2").write_text(
        "{% block subject %}x{% endblock %}{% block body %}OUR OWN TEXT for "
        "#{{ ticket.number }} ({{ project.domain }}){% endblock %}\n")
    # renders with the sample data check-config uses, not with a name shorter than 13
    (overrides / "replies" / "broken.txt.j2").write_text(
        "{% block subject %}x{% endblock %}{% block body %}{{ customer.name[12] }}"
        "{% endblock %}\n")
    h = harness_factory(db_url, templates={"override_dir": str(overrides)}).start()
    assert h.cli("project", "add", "acme", "--name", "ACME Corp", "--customer", CARLA).code == 0
    assert h.cli("project", "set", "acme", "--domain", "www.acme.example").code == 0
    assert h.cli("agent", "add", ANNA_MAIL, "--name", "Anna Agent").code == 0
    h.send(make_mail(sender=f"Carla Kunde <{CARLA}>", subject="Drucker", body="Kaputt."))
    h.settle()
    (notification,) = h.relay.wait_for(ANNA_MAIL)
    n = h.tickets()[0].id

    _answer(h, notification, "/template thanks-received\nIch rufe Sie morgen an.")
    _ack, reply = h.relay.wait_for(CARLA, 2)
    canned = ('Hello Carla Kunde,\n\nThank you for your message about "Drucker". It has '
              'reached us, and Anna Agent at ACME Corp is looking into it now.')
    assert _text(reply).startswith(canned) and "/template" not in _text(reply)
    assert _text(reply).index(canned) < _text(reply).index("Ich rufe Sie morgen an.")
    transcript = h.relay.to(ANNA_MAIL)[-1].text
    assert "done: canned reply thanks-received inserted above your text" in transcript
    shown = json.loads(h.cli("ticket", "show", str(n), "--json").out)
    assert shown["messages"][-1]["text"].startswith(canned)     # the ticket keeps what went

    _answer(h, notification, "/template no-such-reply\nNur das hier.")
    assert "refused: no canned reply 'no-such-reply'" in h.relay.to(ANNA_MAIL)[-1].text
    assert len(h.relay.to(CARLA)) == 2
    shown = json.loads(h.cli("ticket", "show", str(n), "--json").out)
    assert shown["messages"][-1]["direction"] == "internal"

    _answer(h, notification, "/template broken\nNur das hier.")
    assert "refused: canned reply 'broken' cannot be used: template 'replies/broken'" in \
        _text(h.relay.to(ANNA_MAIL)[-1])
    assert len(h.relay.to(CARLA)) == 2

    _answer(h, notification, "/template closing-soon")
    assert _text(h.relay.wait_for(CARLA, 3)[-1]).startswith(
        f"OUR OWN TEXT for #{n} (www.acme.example)")

    listed = {r["name"]: r for r in json.loads(
        h.cli("template", "list", "--replies", "--json").out)}
    assert set(listed) == {"broken", "closing-soon", "need-login", "thanks-received"}
    assert listed["closing-soon"]["file"] == str(overrides / "replies" / "closing-soon.txt.j2")
    assert listed["thanks-received"]["file"].endswith("templates/replies/thanks-received.txt.j2")
    assert listed["thanks-received"]["languages"] == "en, de, da"
    preview = h.cli("template", "preview", "thanks-received", "--ticket", str(n),
                    "--language", "de")
    assert preview.code == 0 and "Guten Tag Carla Kunde" in preview.out
    assert "„Drucker“" in preview.out
    missing = h.cli("template", "preview", "no-such-reply", "--ticket", str(n))
    assert missing.code == 1 and "no template 'no-such-reply'" in missing.err
    _canned_text_for_the_command_line(h, n)


def _canned_text_for_the_command_line(h, n: int) -> None:
    """`canned_text`, which `ticket reply/new --template` calls: for a ticket, for a
    conversation not opened yet, and a one-line refusal for an unknown name."""
    from mailgate.handlers import ServiceError
    from mailgate.handlers.canned import canned_text

    with h.app.db.unit(write=False) as session:
        text = canned_text(session, h.app, "need-login", ticket_number=n,
                           agent_email=ANNA_MAIL)
        assert text.startswith("Hello Carla Kunde,") and "www.acme.example" in text
        fresh = canned_text(session, h.app, "thanks-received", ticket_number=None,
                            agent_email=ANNA_MAIL, project_slug="acme",
                            to_address="dora@client.example")
        assert fresh.startswith("Hello dora@client.example,") and "Anna Agent" in fresh
        with pytest.raises(ServiceError, match=r"^no canned reply 'nope' \(see"):
            canned_text(session, h.app, "nope", ticket_number=n, agent_email=ANNA_MAIL)


def test_the_owner_is_told_when_the_handler_answers_unless_switched_off(harness_factory,
                                                                        db_url):
    """Anna (handler) answers Carla: Bob (owner) gets an agent_replied mail naming Anna
    and quoting her text, on by default; after `agent notify --off agent_replied` not."""
    h = harness_factory(db_url).start()
    assert h.cli("project", "add", "acme", "--name", "ACME Corp", "--customer", CARLA).code == 0
    assert h.cli("agent", "add", ANNA_MAIL, "--name", "Anna Agent").code == 0
    assert h.cli("agent", "add", BOB, "--name", "Bob").code == 0
    bob = next(a for a in json.loads(h.cli("agent", "list", "--json").out)
               if a["email"] == BOB)
    assert "agent_replied" in bob["notify"]
    h.send(make_mail(sender=CARLA, subject="Drucker", body="Kaputt."))
    h.settle()
    (notification,) = h.relay.wait_for(ANNA_MAIL)

    def told() -> list:
        return [m for m in h.relay.to(BOB) if "answered by" in m.subject]

    _answer(h, notification, "/assign me\n/owner bob\n\nWir schauen uns das heute an.")
    (note,) = told()
    assert "Anna Agent" in note.subject
    assert _text(note).startswith(f"Anna Agent <{ANNA_MAIL}> answered {CARLA} on ticket #")
    assert "Wir schauen uns das heute an." in note.text
    assert not [m for m in h.relay.to(ANNA_MAIL) if "answered by" in m.subject]

    assert h.cli("agent", "notify", BOB, "--off", "agent_replied").code == 0
    _answer(h, notification, "Noch ein Hinweis.")
    assert len(h.relay.to(CARLA)) == 3                      # ack and both answers
    assert len(told()) == 1
