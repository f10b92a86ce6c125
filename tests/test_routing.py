"""Routing as a table: mail facts and what is known → the decision and the rule that made it."""

from __future__ import annotations

import datetime as dt

import pytest

from routing.addresses import RecipientRules, classify_recipient
from routing.rules import Directory, MailFacts, Target, TicketView, lookups_for, route
from routing.tokens import TokenKey, make_token

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
KEY = TokenKey(b"routing-secret")
RULES = RecipientRules("support", frozenset({"example.com"}))
CARLA, DORA, ANNA = "carla@client.example", "dora@other.example", "anna@agency.example"
MALLORY = "mallory@evil.example"

TICKETS = {
    7: TicketView(7, "acme", False, frozenset({CARLA, ANNA})),
    8: TicketView(8, "beta", False, frozenset({DORA, ANNA})),
    9: TicketView(9, "acme", True, frozenset({CARLA, ANNA})),   # deleted
}
DIRECTORY = Directory(
    tickets=TICKETS,
    thread_index={"ack-7@example.com": 7, "ack-8@example.com": 8},
    projects_by_key={"acme": "acme", "beta": "beta"},
    token_keys=(KEY,),
)


def tok(ticket: int, who: str, purpose: str = "reply") -> str:
    t = make_token(secret=KEY.secret, purpose=purpose, ticket=ticket, recipient=who,
                   issued=NOW.date())
    return f"support+{t}@example.com"


def facts(sender=CARLA, rcpt=("support@example.com",), subject="Hello", thread=(),
          problem="") -> MailFacts:
    recipients = tuple(classify_recipient(r, RULES) for r in rcpt)
    return MailFacts(sender=sender, sender_problem=problem, recipients=recipients,
                     subject=subject, thread_ids=tuple(thread))


def with_sender(projects=(), tickets=()) -> Directory:
    return Directory(tickets=DIRECTORY.tickets, thread_index=DIRECTORY.thread_index,
                     projects_by_key=DIRECTORY.projects_by_key, sender_projects=projects,
                     sender_tickets=tickets, token_keys=DIRECTORY.token_keys)


CASES = [
    # id, facts, directory, target, ticket/project, rule, words in the reason
    ("token-from-its-recipient", facts(rcpt=(tok(7, CARLA),)), DIRECTORY,
     Target.TICKET, 7, "reply-token", "valid reply token"),
    ("note-token-from-agent", facts(sender=ANNA, rcpt=(tok(7, ANNA, "note"),)), DIRECTORY,
     Target.TICKET, 7, "reply-token", ""),
    ("forged-token-wins-over-registered-sender",
     facts(rcpt=(tok(7, CARLA)[:-16] + "a2a2@example.com",)), with_sender(("acme",)),
     Target.UNASSIGNED, None, "reply-token", "signature does not match"),
    ("token-forwarded-to-stranger", facts(sender=MALLORY, rcpt=(tok(7, CARLA),)), DIRECTORY,
     Target.UNASSIGNED, None, "reply-token", "issued to carla@client.example"),
    ("token-for-deleted-ticket", facts(rcpt=(tok(9, CARLA),)), DIRECTORY,
     Target.UNASSIGNED, None, "reply-token", "was deleted"),
    ("token-of-ticket-the-sender-left", facts(sender=DORA, rcpt=(tok(7, DORA),)), DIRECTORY,
     Target.UNASSIGNED, None, "reply-token", "not a participant"),
    ("token-beats-references", facts(rcpt=(tok(7, CARLA),), thread=("ack-8@example.com",)),
     DIRECTORY, Target.TICKET, 7, "reply-token", ""),
    ("reply-by-in-reply-to", facts(thread=("unknown@x", "ack-7@example.com")), DIRECTORY,
     Target.TICKET, 7, "references", "ack-7@example.com"),
    ("stranger-replying-in-thread", facts(sender=MALLORY, thread=("ack-7@example.com",)),
     DIRECTORY, Target.UNASSIGNED, None, "references", "not a participant"),
    ("subject-tag-from-participant", facts(subject="Re: [#7] Printer"), DIRECTORY,
     Target.TICKET, 7, "subject-tag", "[#7]"),
    ("stranger-with-valid-tag", facts(sender=MALLORY, subject="[#7] give me the data"),
     DIRECTORY, Target.UNASSIGNED, None, "subject-tag", "not a participant"),
    ("tag-of-missing-ticket-falls-through", facts(subject="[#999] hi"), with_sender(("acme",)),
     Target.NEW_TICKET, "acme", "sender-project", ""),
    ("tag-of-deleted-ticket-falls-through", facts(subject="[#9] hi"), with_sender(("acme",)),
     Target.NEW_TICKET, "acme", "sender-project", ""),
    ("project-address-from-anyone", facts(sender=MALLORY, rcpt=("support+beta@example.com",)),
     DIRECTORY, Target.NEW_TICKET, "beta", "project-address", "project beta"),
    ("project-address-beats-registration",
     facts(rcpt=("support+beta@example.com",)), with_sender(("acme",)),
     Target.NEW_TICKET, "beta", "project-address", ""),
    ("two-project-addresses", facts(rcpt=("support+acme@example.com",
                                          "support+beta@example.com")), DIRECTORY,
     Target.UNASSIGNED, None, "project-address", "several projects"),
    ("unknown-key-and-unknown-sender", facts(rcpt=("support+nope@example.com",)), DIRECTORY,
     Target.UNASSIGNED, None, "none", "unknown project key 'nope'"),
    ("registered-sender", facts(), with_sender(("acme",)),
     Target.NEW_TICKET, "acme", "sender-project", "contact of project acme"),
    ("sender-in-two-projects", facts(), with_sender(("acme", "beta")),
     Target.UNASSIGNED, None, "none", "several projects: acme, beta"),
    ("stranger-to-support", facts(sender=MALLORY), DIRECTORY,
     Target.UNASSIGNED, None, "none", "not a contact of any project"),
    ("ambiguous-sender-to-project-address",
     facts(sender=None, problem="ambiguous sender: display name holds another address",
           rcpt=("support+acme@example.com",)), DIRECTORY,
     Target.UNASSIGNED, None, "sender", "ambiguous sender"),
]


@pytest.mark.parametrize(("mail", "directory", "target", "where", "rule", "words"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_routing_table(mail, directory, target, where, rule, words):
    decision = route(mail, directory, NOW)
    assert decision.target is target, decision.reason
    if target is Target.TICKET:
        assert decision.ticket == where
    elif target is Target.NEW_TICKET:
        assert decision.project == where
    assert decision.rule == rule
    assert words in decision.reason
    assert decision.hits, "every decision records the rules it ran"


def test_a_note_token_routes_with_the_note_purpose():
    d = route(facts(sender=ANNA, rcpt=(tok(7, ANNA, "note"),)), DIRECTORY, NOW)
    assert d.purpose == "note"


def test_unassigned_reason_lists_what_every_rule_saw():
    d = route(facts(sender=MALLORY, subject="[#999] x"), DIRECTORY, NOW)
    rules = [h.rule for h in d.hits]
    assert rules == ["sender", "reply-token", "references", "subject-tag", "project-address",
                     "sender-project"]
    assert "names no open ticket" in d.reason


def test_lookups_ask_only_for_what_the_mail_mentions():
    need = lookups_for(facts(rcpt=(tok(7, CARLA), "support+acme@example.com"),
                             subject="Re: [#8] x", thread=("a@b",)))
    assert need.ticket_numbers == {7, 8}
    assert need.project_keys == {"acme"}
    assert need.thread_ids == ("a@b",)
