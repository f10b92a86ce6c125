"""The user stories of the core, end to end: real SMTP in, a real relay out, both databases."""

from __future__ import annotations

import json
import re

from tests.support.harness import SUPPORT, make_mail, reply_to

CARLA = "carla@client.example"
ANNA = "anna@agency.example"
TOKEN_RE = re.compile(r"support\+r(\d+)\.[0-9a-z]+\.[a-z2-7]{16}@example\.com")


def test_known_customer_gets_a_ticket_and_an_acknowledgement(mg):
    """Story 1: a registered customer's mail opens #N (new, normal) and is acknowledged."""
    mg.send(make_mail(sender=f"Carla Kunde <{CARLA}>", subject="Drucker druckt nicht",
                      body="Seit heute früh geht nichts mehr.", msgid="<c1@client.example>"),
            mail_from=CARLA)
    mg.settle()
    (ticket,) = json.loads(mg.cli("ticket", "list", "--json").out)
    assert ticket["project"] == "acme"
    assert (ticket["status"], ticket["priority"]) == ("new", 2)
    assert ticket["requester"] == CARLA

    (ack,) = mg.relay.wait_for(CARLA)
    n = ticket["number"]
    assert ack.subject == f"[#{n}] Drucker druckt nicht"
    assert f"#{n}" in ack.text and "Drucker druckt nicht" in ack.text
    assert ack.header("Auto-Submitted") == "auto-replied"
    assert ack.header("In-Reply-To") == "<c1@client.example>"
    assert SUPPORT in ack.header("From")
    token = TOKEN_RE.search(ack.header("Reply-To"))
    assert token and int(token.group(1)) == n
    assert ack.mail_from.startswith("support+b.")        # a VERP envelope sender

    (note,) = mg.relay.wait_for(ANNA)                    # the agent hears of the new ticket
    assert note.subject == f"[#{n}] New ticket: Drucker druckt nicht"
    assert "Seit heute früh geht nichts mehr." in note.text


def test_project_address_opens_a_ticket_and_registers_the_sender(mg):
    """Story 2: anyone writing to support+<key>@ gets a ticket there and becomes a contact."""
    mg.send(make_mail(sender="Neu <neu@newclient.example>", to="support+acme@example.com",
                      subject="Angebot"), rcpt="support+acme@example.com")
    mg.settle()
    (ticket,) = json.loads(mg.cli("ticket", "list", "--project", "acme", "--json").out)
    assert ticket["requester"] == "neu@newclient.example"
    contacts = json.loads(mg.cli("contact", "list", "--project", "acme", "--json").out)
    assert "neu@newclient.example" in [c["email"] for c in contacts]
    mg.relay.wait_for("neu@newclient.example")
    (project,) = json.loads(mg.cli("project", "list", "--json").out)
    assert project == {"slug": "acme", "name": "ACME Corp", "key": "acme",
                       "address": "support+acme@example.com", "workflow": "support",
                       "language": "en", "undone": 1}     # the new mail, not yet ticked off


def test_agent_reply_from_a_mail_client_reaches_the_customer_and_threads(mg):
    """Story 3: the agent answers the notification; the customer gets it and replies back."""
    mg.send(make_mail(sender=CARLA, subject="VPN kaputt", body="Kein VPN seit gestern.",
                      msgid="<c2@client.example>"))
    mg.settle()
    (notification,) = mg.relay.wait_for(ANNA)
    mg.send(reply_to(notification.message, sender=f"Anna Agent <{ANNA}>",
                     body="Bitte starten Sie den Router neu."),
            rcpt=str(notification.message["Reply-To"].addresses[0].addr_spec), mail_from=ANNA)
    mg.settle()
    acks_and_replies = mg.relay.wait_for(CARLA, 2)
    forwarded = acks_and_replies[1]
    n = mg.tickets()[0].id
    assert forwarded.header("From") == f"Anna Agent <{SUPPORT}>"
    assert forwarded.subject == f"[#{n}] Re: VPN kaputt"
    assert forwarded.header("In-Reply-To") == "<c2@client.example>"
    assert "<c2@client.example>" in forwarded.header("References")
    assert "Bitte starten Sie den Router neu." in forwarded.text
    assert "Kein VPN seit gestern" not in forwarded.text    # the quote is not forwarded
    assert forwarded.header("Auto-Submitted") is None        # a human wrote it

    shown = json.loads(mg.cli("ticket", "show", str(n), "--json").out)
    assert [m["direction"] for m in shown["messages"]] == ["in", "out"]
    assert shown["messages"][1]["from"] == ANNA

    # The customer answers the forwarded reply: same ticket, the agent is told.
    mg.send(reply_to(forwarded.message, sender=CARLA, body="Hat geklappt, danke!"),
            rcpt=str(forwarded.message["Reply-To"].addresses[0].addr_spec))
    mg.settle()
    shown = json.loads(mg.cli("ticket", "show", str(n), "--json").out)
    assert [m["direction"] for m in shown["messages"]] == ["in", "out", "in"]
    assert shown["messages"][2]["text"].startswith("Hat geklappt, danke!")
    assert len(mg.tickets()) == 1
    assert "Hat geklappt" in mg.relay.wait_for(ANNA, 2)[1].text


def test_stranger_mail_waits_unassigned_until_an_admin_triages_it(mg):
    """Story 4: nothing goes back to a stranger; the admin lists, shows, assigns, spams."""
    stranger = "fremd@unknown.example"
    mg.send(make_mail(sender=stranger, subject="Frage zu Preisen", body="Was kostet das?"),
            mail_from=stranger)
    mg.send(make_mail(sender=stranger, subject="Nachtrag", body="Und die Lieferzeit?"),
            mail_from=stranger)
    mg.send(make_mail(sender="spam@junk.example", subject="WIN BIG", body="$$$"))
    mg.settle()
    assert mg.relay.to(stranger) == []
    queue = json.loads(mg.cli("unassigned", "list", "--json").out)
    assert [q["subject"] for q in queue] == ["Frage zu Preisen", "Nachtrag", "WIN BIG"]
    first, second, spam = (q["id"] for q in queue)
    assert set(queue[0]) == {"id", "from", "to", "subject", "received_at", "reason"}
    assert "not a contact of any project" in queue[0]["reason"]

    shown = json.loads(mg.cli("unassigned", "show", str(first), "--json").out)
    assert shown["text"].strip() == "Was kostet das?"
    assert {"name": "Subject", "value": "Frage zu Preisen"} in shown["headers"]
    assert shown["attachments"] == [] and "cc" in shown
    human = mg.cli("unassigned", "show", str(first))
    assert "why" in human.out and "Was kostet das?" in human.out

    done = mg.cli("unassigned", "assign", str(first), "--project", "acme", "--add-contact")
    assert done.code == 0, done.err
    number = int(re.search(r"#(\d+)", done.out).group(1))
    assert mg.cli("unassigned", "assign", str(second), "--ticket", str(number)).code == 0
    assert mg.cli("unassigned", "spam", str(spam)).code == 0
    assert json.loads(mg.cli("unassigned", "list", "--json").out) == []

    ticket = json.loads(mg.cli("ticket", "show", str(number), "--json").out)
    assert [m["subject"] for m in ticket["messages"]] == ["Frage zu Preisen", "Nachtrag"]
    contacts = json.loads(mg.cli("contact", "list", "--project", "acme", "--json").out)
    assert stranger in [c["email"] for c in contacts]
    mg.settle()
    (ack,) = mg.relay.wait_for(stranger)                  # now a customer: acknowledged
    assert f"[#{number}]" in ack.subject


def test_triage_errors_are_one_line_and_nonzero(mg):
    bad = mg.cli("unassigned", "assign", "999", "--project", "acme")
    assert bad.code == 1 and bad.err.count("\n") == 1 and "no unassigned mail" in bad.err
    bad = mg.cli("unassigned", "assign", "1")
    assert bad.code == 2 and "one of the arguments --project --ticket is required" in bad.err
    bad = mg.cli("ticket", "show", "77")
    assert bad.code == 1 and bad.err == "mailgate: no ticket #77\n"
    bad = mg.cli("project", "add", "acme", "--name", "Again")
    assert bad.code == 1 and "exists already" in bad.err
    bad = mg.cli("contact", "add", "not an address", "--project", "acme")
    assert bad.code == 1 and "not a valid email address" in bad.err
