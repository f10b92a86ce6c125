"""Injection, in and out: header injection into our mail, template injection, ambiguous
senders, and CLI search text that looks like SQL. Real SMTP, both databases."""

from __future__ import annotations

import json

import pytest

from tests.support.harness import make_mail

CARLA = "carla@client.example"


def test_encoded_crlf_in_subject_and_name_adds_no_header_or_recipient(mg):
    raw = (b"From: =?utf-8?q?Carla=0D=0AX-Injected=3A_yes?= <carla@client.example>\r\n"
           b"To: support@example.com\r\n"
           b"Subject: =?utf-8?q?Hilfe=0D=0ABcc=3A_eve=40evil=2Eexample=0D=0A=0D=0Abody?=\r\n"
           b"Message-ID: <inj@client.example>\r\n\r\nText\r\n")
    mg.send(raw)
    mg.settle()
    (ack,) = mg.relay.wait_for(CARLA)
    assert ack.rcpt_tos == [CARLA]
    assert ack.header("Bcc") is None and ack.header("X-Injected") is None
    assert "X-Injected: yes" in ack.header("To")          # the name, flattened to one line
    assert "\n" not in ack.subject and "Bcc: eve@evil.example" in ack.subject
    assert all("evil" not in m.rcpt_tos[0] for m in mg.relay.messages)


def test_template_syntax_in_mail_is_shown_literally(mg):
    mg.send(make_mail(sender=CARLA, subject="{{ 7*7 }} <script>alert(1)</script>",
                      body="{{ config }} {% for x in range(3) %}x{% endfor %}"))
    mg.settle()
    (ack,) = mg.relay.wait_for(CARLA)
    assert "{{ 7*7 }}" in ack.subject and "49" not in ack.subject
    (note,) = mg.relay.wait_for("anna@agency.example")
    assert "{{ config }} {% for x in range(3) %}x{% endfor %}" in note.text


AMBIGUOUS = [
    b"From: victim@client.example <attacker@evil.example>\r\n",
    b"From: carla@client.example)<attacker@evil.example>\r\n",
    b"From: carla@client.example\r\nFrom: attacker@evil.example\r\n",
    b"From: =?utf-8?q?carla=40client=2Eexample?= <attacker@evil.example>\r\n",
]


@pytest.mark.parametrize("sender", AMBIGUOUS)
def test_ambiguous_senders_are_never_matched_by_sender(mg, sender):
    assert mg.cli("contact", "add", "victim@client.example", "--project", "acme").code == 0
    mg.send(sender + b"To: support@example.com\r\nSubject: sneaky\r\n\r\nhi\r\n")
    mg.settle()
    (row,) = mg.inbound()
    assert row.state == "unassigned" and "ambiguous sender" in row.reason
    assert mg.relay.messages == []


SEARCHES = ["100%", "a_b", "back\\slash", "it's \"quoted\"", "'; DROP TABLE ticket; --",
            "x" * 10_000]


def test_search_text_matches_literally(mg):
    for subject in ("100% kaputt", "a_b test", "back\\slash", "it's \"quoted\"", "axb test"):
        mg.send(make_mail(sender=CARLA, subject=subject))
    mg.settle()
    found = {}
    for text in SEARCHES:
        result = mg.cli("ticket", "list", "--search", text, "--json")
        assert result.code == 0, result.err
        found[text] = sorted(t["subject"] for t in json.loads(result.out))
    assert found["100%"] == ["100% kaputt"]
    assert found["a_b"] == ["a_b test"]                 # '_' is no wildcard: not "axb"
    assert found["back\\slash"] == ["back\\slash"]
    assert found["it's \"quoted\""] == ["it's \"quoted\""]
    assert found["'; DROP TABLE ticket; --"] == []
    assert found["x" * 10_000] == []
    assert len(mg.tickets()) == 5
