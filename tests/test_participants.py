"""Participants: To/Cc addresses of a customer's mail join the ticket per `[mail]
participants`. A table of the pure decision, then end to end over real SMTP on SQLite and
PostgreSQL: a colleague copied at the customer's domain becomes a participant, her reply
threads and she gets the agent's answer; another domain's address is not added; with
"none" nothing changes."""

from __future__ import annotations

import json

import pytest

from routing.actors import AgentInfo, Staff
from routing.participants import is_system_address, new_participants
from tests.support.harness import SUPPORT, make_mail, reply_to

CARLA = "carla@client.example"
CLAIRE = "claire@client.example"
OTTO = "otto@other.example"
ANNA = "anna@agency.example"
STAFF = Staff({ANNA: AgentInfo(ANNA, "Anna")})
OWN = frozenset({SUPPORT, "helpdesk@imap.example"})

# (copied addresses, mode, already on the ticket, expected added, expected skipped)
CASES = [
    ([CLAIRE, OTTO], "same-domain", (), [CLAIRE], [OTTO]),
    ([CLAIRE, OTTO], "all", (), [CLAIRE, OTTO], []),
    ([CLAIRE, OTTO], "none", (), [], []),
    (["Claire@CLIENT.example"], "same-domain", (), [CLAIRE], []),
    ([SUPPORT, "support+acme@example.com", "support+r12.abc.def@example.com",
      "Helpdesk+x@imap.example"], "all", (), [], []),
    ([ANNA], "all", (), [], [ANNA]),
    ([CARLA, CLAIRE, CLAIRE], "same-domain", (), [CLAIRE], []),
    ([CLAIRE], "same-domain", (CLAIRE,), [], []),
    (["not an address", "x@"], "all", (), [], []),
    ([f"p{i}@client.example" for i in range(12)], "same-domain", (),
     [f"p{i}@client.example" for i in range(10)], ["p10@client.example",
                                                     "p11@client.example"]),
    (["bob@sub.client.example"], "same-domain", (), [], ["bob@sub.client.example"]),
]


@pytest.mark.parametrize(("copied", "mode", "known", "added", "skipped"), CASES)
def test_which_copied_addresses_become_participants(copied, mode, known, added, skipped):
    found = new_participants(copied, writer=CARLA, mode=mode, known=frozenset(known),
                             staff=STAFF, own=OWN)
    assert list(found.added) == added
    assert [a for a, _ in found.skipped] == skipped


@pytest.mark.parametrize(("address", "system"), [
    (SUPPORT, True), ("support+acme@example.com", True), ("SUPPORT+r1.a.b@example.com", True),
    ("helpdesk@imap.example", True), ("support@other.example", False), (CLAIRE, False)])
def test_our_own_addresses_and_their_plus_addresses_are_system_addresses(address, system):
    assert is_system_address(address.lower(), OWN) is system


def _show(h, number: int) -> dict:
    return json.loads(h.cli("ticket", "show", str(number), "--json").out)


def _first_mail(h) -> int:
    h.send(make_mail(sender=f"Carla Client <{CARLA}>", subject="Drucker",
                     body="Der Drucker druckt nicht.", msgid="<carla-1@client.example>",
                     headers={"Cc": f"Claire <{CLAIRE}>, {OTTO}, {ANNA}"}),
           mail_from=CARLA)
    h.settle()
    (ticket,) = h.tickets()
    return ticket.id


def _claire_replies(h, body: str) -> None:
    h.send(make_mail(sender=CLAIRE, to=SUPPORT, subject="Re: Drucker", body=body,
                     headers={"In-Reply-To": "<carla-1@client.example>",
                              "References": "<carla-1@client.example>"}), mail_from=CLAIRE)
    h.settle()


def test_a_colleague_copied_joins_threads_and_gets_the_agents_answer(mg):
    """Under the default same-domain, Claire (Cc, client.example) becomes a participant and
    Otto (other.example) and Anna (an agent) do not; Claire's reply-all threads as a
    customer message; Anna's answer reaches Carla and Claire; a later Cc on Carla's reply
    joins too."""
    number = _first_mail(mg)
    people = [p["email"] for p in _show(mg, number)["participants"]]
    assert CLAIRE in people and OTTO not in people and ANNA not in people
    _claire_replies(mg, "Bei mir auch nicht.")
    data = _show(mg, number)
    assert mg.inbound()[-1].state == "done"
    assert [(m["direction"], m["from"]) for m in data["messages"]][-1] == ("in", CLAIRE)
    note = mg.relay.wait_for(ANNA)[0]
    mg.send(reply_to(note.message, sender=ANNA, body="Wir schicken jemanden."),
            rcpt=note.message["Reply-To"].addresses[0].addr_spec, mail_from=ANNA)
    mg.settle()
    assert "Wir schicken jemanden." in mg.relay.wait_for(CLAIRE)[0].text
    assert "Wir schicken jemanden." in mg.relay.wait_for(CARLA, 2)[-1].text
    assert mg.relay.to(OTTO) == []
    answer = mg.relay.wait_for(CLAIRE)[0]
    mg.send(reply_to(answer.message, sender=CLAIRE, body="Danke!"),
            rcpt=answer.message["Reply-To"].addresses[0].addr_spec, mail_from=CLAIRE)
    mg.settle()
    # the subject tag alone (easy to forge) brings nobody in; Carla's reply to the answer does
    mg.send(make_mail(sender=CARLA, subject=f"Re: [#{number}] Drucker", body="Und Eva?",
                      headers={"Cc": "eva@client.example"}), mail_from=CARLA)
    mine = mg.relay.wait_for(CARLA, 2)[-1]
    mg.send(b"Cc: dirk@client.example\r\n" + reply_to(mine.message, sender=CARLA,
                                                       body="Und Dirk?"),
            rcpt=mine.message["Reply-To"].addresses[0].addr_spec, mail_from=CARLA)
    mg.settle()
    data = _show(mg, number)
    assert [m["text"] for m in data["messages"] if m["direction"] == "in"][-3:] == [
        "Danke!", "Und Eva?", "Und Dirk?"]
    people = [p["email"] for p in data["participants"]]
    assert "dirk@client.example" in people and "eva@client.example" not in people
    assert ("cc", "dirk@client.example") in [(e["kind"], e["new"]) for e in data["events"]]


def test_with_participants_none_a_copied_colleague_stays_outside(harness_factory, db_url):
    """`[mail] participants = "none"`: nobody copied joins, and their reply is not appended."""
    h = harness_factory(db_url, mail={"participants": "none"}).start()
    assert h.cli("project", "add", "acme", "--name", "ACME", "--customer", CARLA).code == 0
    assert h.cli("agent", "add", ANNA, "--name", "Anna Agent").code == 0
    number = _first_mail(h)
    assert [p["email"] for p in _show(h, number)["participants"]] == [CARLA]
    _claire_replies(h, "Bei mir auch nicht.")
    assert h.inbound()[-1].state == "unassigned"
    assert len(_show(h, number)["messages"]) == 1
