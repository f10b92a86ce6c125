"""No loops: automatic mail is never answered, bounces never become tickets, our own mail
coming back is dropped, and automatic mail to one address is capped. Real SMTP."""

from __future__ import annotations

import json
import re
from email.message import EmailMessage
from email.policy import SMTP

import pytest

from routing.loops import classify_automatic
from tests.support.harness import SUPPORT, make_mail, reply_to

CARLA = "carla@client.example"
ANNA = "anna@agency.example"

# (extra headers, subject, sender) of automatic mail
AUTOMATIC = [
    ({"Auto-Submitted": "auto-replied"}, "Re: Drucker", CARLA),
    ({"Auto-Submitted": "auto-generated"}, "Report", CARLA),
    ({"Precedence": "bulk"}, "Newsletter", CARLA),
    ({"Precedence": "junk"}, "Hi", CARLA),
    ({"X-Autoreply": "yes"}, "Hi", CARLA),
    ({"X-Autorespond": "Hi"}, "Hi", CARLA),
    ({}, "Out of Office: Drucker", CARLA),
    ({}, "Automatic reply: Drucker", CARLA),
    ({}, "Abwesenheitsnotiz: Drucker", CARLA),
    ({}, "Automatische Antwort: Drucker", CARLA),
    ({}, "Autosvar: Drucker", CARLA),
    ({}, "Fraværende: Drucker", CARLA),
    ({}, "Hi", "noreply@client.example"),
    ({}, "Hi", "mailer-daemon@client.example"),
    ({}, "Hi", "postmaster@client.example"),
]


@pytest.mark.parametrize(("headers", "subject", "sender"), AUTOMATIC)
def test_automatic_mail_is_recognised(headers, subject, sender):
    pairs = [("From", sender), *headers.items()]
    auto = classify_automatic(pairs, envelope_sender="x@client.example", sender=sender,
                              subject=subject)
    assert auto.automatic, (headers, subject, sender)


# Human mail that must get no automatic answer but is not automatic for loop purposes
# (RT and Zammad treat list mail so): mailing lists, and the null envelope sender alone
# (spam uses it; RFC 3834 forbids answering it). Before issue 13 these were "automatic".
NO_ANSWER = [
    ({"Precedence": "list"}, "Hi", "x@client.example", "Precedence: list"),
    ({"List-Id": "<team.lists.client.example>"}, "Hi", "x@client.example", "List-Id"),
    ({"List-Unsubscribe": "<mailto:u@lists.example>"}, "Hi", "x@client.example",
     "List-Unsubscribe"),
    ({}, "Cheap watches", "", "null envelope sender"),
    ({"Return-Path": "<>"}, "Cheap watches", None, "null envelope sender"),
]


@pytest.mark.parametrize(("headers", "subject", "envelope", "reason"), NO_ANSWER)
def test_list_mail_and_a_bare_null_sender_get_no_answer_but_are_not_automatic(
        headers, subject, envelope, reason):
    pairs = [("From", CARLA), *headers.items()]
    auto = classify_automatic(pairs, envelope_sender=envelope, sender=CARLA, subject=subject)
    assert not auto.automatic and auto.suppress_reply and auto.no_auto_reply
    assert any(reason in r for r in auto.reasons), auto.reasons


# A null sender together with another automatic signal decides "automatic"; the reasons
# name every signal.
WITH_NULL = [
    ({"Auto-Submitted": "auto-replied"}, "Hi", CARLA, "Auto-Submitted: auto-replied"),
    ({"Content-Type": "multipart/report; report-type=delivery-status"}, "Hi", CARLA,
     "multipart/report"),
    ({}, "Undelivered Mail Returned to Sender", CARLA, "automatic-reply subject"),
    ({}, "Hi", "mailer-daemon@mx.client.example", "robot address"),
]


@pytest.mark.parametrize(("headers", "subject", "sender", "reason"), WITH_NULL)
def test_a_null_sender_with_a_dsn_or_auto_signal_is_automatic(headers, subject, sender,
                                                              reason):
    pairs = [("From", sender), *headers.items()]
    auto = classify_automatic(pairs, envelope_sender="", sender=sender, subject=subject)
    assert auto.automatic
    assert any(reason in r for r in auto.reasons) and "null envelope sender" in auto.reasons


# Which signal decided, as the stored disposition records it (`decided_by`, the first of
# `reasons`): every signal alone, and what is not one. (headers, envelope, sender, subject,
# automatic, suppress_reply, decided_by)
LIST = "<mailto:team@lists.client.example>"
DECIDED = [
    ({"Auto-Submitted": "auto-replied"}, CARLA, CARLA, "Hi", True, False,
     "Auto-Submitted: auto-replied"),
    ({"Precedence": "bulk"}, CARLA, CARLA, "News", True, False, "Precedence: bulk"),
    ({"Precedence": "bulk", "List-Post": "NO"}, CARLA, CARLA, "News", True, True,
     "Precedence: bulk"),                                      # an announce-only list
    ({"Precedence": "list"}, CARLA, CARLA, "Hi", False, True,
     "mailing list (Precedence: list): no automatic answer"),
    ({"List-Id": "<team.lists.client.example>"}, CARLA, CARLA, "Hi", False, True,
     "mailing list (List-Id): no automatic answer"),
    ({"Precedence": "bulk", "List-Id": "<team.lists.client.example>", "List-Post": LIST},
     CARLA, CARLA, "Re: planning", False, True,
     "mailing list (Precedence: bulk with List-Post): no automatic answer"),
    ({"List-Id": "<t.lists.example>", "Auto-Submitted": "auto-replied"}, CARLA, CARLA, "Hi",
     True, True, "Auto-Submitted: auto-replied"),              # a robot on a list
    ({}, "", CARLA, "Cheap watches", False, True, "null envelope sender"),
    ({"Return-Path": "<>"}, None, CARLA, "Cheap watches", False, True,
     "null envelope sender"),
    ({"Auto-Submitted": "auto-generated"}, "", CARLA, "Hi", True, True,
     "Auto-Submitted: auto-generated"),                        # null sender + signal
    ({"Content-Type": "multipart/report; report-type=delivery-status"}, "", CARLA, "Hi",
     True, True, "delivery or disposition report (multipart/report)"),
    ({}, "", "mailer-daemon@mx.client.example", "Hi", True, True,
     "sender mailer-daemon is a robot address"),
    ({}, "", CARLA, "Undelivered Mail Returned to Sender", True, True,
     "automatic-reply subject"),
    ({"Return-Path": "<carla@client.example>"}, None, CARLA, "Hi", False, False, ""),
    ({"Auto-Submitted": "no", "Precedence": "first-class"}, CARLA, CARLA, "Hi", False,
     False, ""),
    ({"X-Auto-Response-Suppress": "OOF, AutoReply"}, CARLA, CARLA, "Hi", False, True,
     "X-Auto-Response-Suppress: OOF, AutoReply"),
]


@pytest.mark.parametrize(("headers", "envelope", "sender", "subject", "automatic", "quiet",
                          "decided_by"), DECIDED)
def test_the_signal_that_decided_is_recorded(headers, envelope, sender, subject, automatic,
                                             quiet, decided_by):
    pairs = [("From", sender), *headers.items()]
    auto = classify_automatic(pairs, envelope_sender=envelope, sender=sender, subject=subject)
    assert (auto.automatic, auto.no_auto_reply, auto.decided_by) == (
        automatic, automatic or quiet, decided_by), auto.reasons
    assert auto.as_dict()["decided_by"] == decided_by


HUMAN = [({}, "Drucker druckt nicht", CARLA), ({"Auto-Submitted": "no"}, "Hi", CARLA),
         ({}, "Re: office party", CARLA), ({}, "Urlaubsplanung", CARLA)]


@pytest.mark.parametrize(("headers", "subject", "sender"), HUMAN)
def test_human_mail_is_not_automatic(headers, subject, sender):
    pairs = [("From", sender), *headers.items()]
    assert not classify_automatic(pairs, envelope_sender=sender, sender=sender,
                                  subject=subject).automatic


@pytest.mark.parametrize(("headers", "subject", "sender"),
                         [*AUTOMATIC[:7], *((*n[:2], CARLA) for n in NO_ANSWER[:2])])
def test_automatic_mail_is_stored_but_never_acknowledged(mg, headers, subject, sender):
    mg.send(make_mail(sender=sender, subject=subject, headers=headers))
    mg.settle()
    (ticket,) = mg.tickets()
    assert ticket.subject == subject
    assert mg.relay.to(CARLA) == []


def test_null_envelope_sender_gets_no_answer(mg):
    mg.send(make_mail(sender=CARLA, subject="Ohne Absender"), mail_from="")
    mg.settle()
    assert len(mg.tickets()) == 1 and mg.relay.to(CARLA) == []


def test_list_mail_and_a_bare_null_sender_show_the_deciding_signal_in_unassigned_show(mg):
    """A stranger's list mail and spam with a null sender wait unassigned as human mail;
    `unassigned show` and the stored disposition say which signal decided."""
    mg.send(make_mail(sender="x@lists.example", subject="Re: planning",
                      headers={"List-Id": "<team.lists.example>", "Precedence": "list"}),
            mail_from="team-bounces@lists.example")
    mg.send(make_mail(sender="spam@cheap.example", subject="Cheap watches"), mail_from="")
    mg.settle()
    first, second = mg.inbound()
    listed = mg.cli("unassigned", "show", str(first.id))
    assert re.search(r"automatic\s+no, but gets no automatic answer \(mailing list "
                     r"\(Precedence: list\)", listed.out), listed.out
    spam = json.loads(mg.cli("unassigned", "show", str(second.id), "--json").out)
    assert spam["automatic"] == {"automatic": False, "suppress_reply": True,
                                 "reasons": ["null envelope sender"],
                                 "decided_by": "null envelope sender"}
    assert mg.relay.to("x@lists.example") == [] and mg.tickets() == []


def test_x_auto_response_suppress_on_human_mail_suppresses_only_the_acknowledgement(mg):
    mg.send(make_mail(sender=CARLA, subject="Bitte keine Autoantwort",
                      headers={"X-Auto-Response-Suppress": "OOF, AutoReply"}))
    mg.settle()
    (ticket,) = mg.tickets()
    assert mg.relay.to(CARLA) == []
    (row,) = mg.inbound()
    shown = json.loads(mg.cli("ticket", "show", str(ticket.id), "--json").out)
    assert shown["messages"][0]["direction"] == "in"
    mg.relay.wait_for(ANNA)                                  # agents still hear of it
    assert row.state == "done"


def dsn(to: str, failed: str, status: str, *, exchange: bool = False) -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = "Mail Delivery System <MAILER-DAEMON@mx.client.example>"
    msg["To"] = to
    msg["Message-ID"] = "<dsn-1@mx.client.example>"
    if exchange:      # what Exchange sends without a multipart/report
        msg["Subject"] = "Undeliverable: [#1] Drucker"
        msg.set_content(f"Delivery has failed to these recipients: {failed}\n"
                        f"Remote Server returned '{status} RESOLVER.ADR.RecipNotFound'")
        return msg.as_bytes()
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.client.example>\r\n"
        f"To: {to}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn-2@mx.client.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered."
        "\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.client.example\r\n\r\n"
        f"Final-Recipient: rfc822; {failed}\r\nAction: failed\r\nStatus: {status}\r\n"
        "\r\n--B--\r\n").encode()


@pytest.mark.parametrize("exchange", [False, True], ids=["rfc3464", "exchange"])
def test_a_hard_bounce_is_tied_to_its_mail_and_stops_automatic_mail(mg, exchange):
    mg.send(make_mail(sender=CARLA, subject="Drucker"))
    mg.settle()
    (ack,) = mg.relay.wait_for(CARLA)
    ticket = mg.tickets()[0]
    mg.send(dsn(ack.mail_from, CARLA, "5.1.1", exchange=exchange), rcpt=ack.mail_from,
            mail_from="")
    mg.settle()
    bounce = mg.inbound()[-1]
    assert bounce.state == "bounce" and "hard bounce 5.1.1" in bounce.reason
    assert len(mg.tickets()) == 1                          # never a ticket
    shown = json.loads(mg.cli("ticket", "show", str(ticket.id), "--json").out)
    assert len(shown["messages"]) == 1                     # nor a message on one
    assert shown["status"] == "new"
    assert any(e["kind"] == "bounce" and "5.1.1" in e["detail"] for e in shown["events"])
    # the next acknowledgement to the dead address is not sent
    mg.send(make_mail(sender=CARLA, subject="Noch ein Drucker"))
    mg.settle()
    assert len(mg.relay.to(CARLA)) == 1
    second = json.loads(mg.cli("ticket", "show", str(mg.tickets()[-1].id), "--json").out)
    assert any(e["kind"] == "mail-suppressed" for e in second["events"])
    outbox = json.loads(mg.cli("outbox", "list", "--json").out)
    assert any("bounced: 5.1.1" in (r.get("last_error") or "") for r in outbox)


def test_a_soft_bounce_does_not_suppress(mg):
    mg.send(make_mail(sender=CARLA, subject="Drucker"))
    mg.settle()
    (ack,) = mg.relay.wait_for(CARLA)
    mg.send(dsn(ack.mail_from, CARLA, "4.2.2"), rcpt=ack.mail_from, mail_from="")
    mg.send(make_mail(sender=CARLA, subject="Zweiter"))
    mg.settle()
    assert mg.inbound()[1].state == "bounce"
    assert len(mg.relay.wait_for(CARLA, 2)) == 2


def test_our_own_mail_coming_back_is_dropped(mg):
    mg.send(make_mail(sender=CARLA, subject="Drucker"))
    mg.settle()
    (ack,) = mg.relay.wait_for(CARLA)
    mg.send(ack.raw, mail_from="")                         # e.g. a forwarding loop
    mg.settle()
    row = mg.inbound()[-1]
    assert row.state == "dropped" and "loop header" in row.reason
    # the same mail with the loop header stripped is still known by its Message-ID
    stripped = b"\r\n".join(line for line in ack.raw.split(b"\r\n")
                            if not line.startswith(b"X-Mailgate-Loop"))
    mg.send(stripped)
    mg.settle()
    row = mg.inbound()[-1]
    assert row.state == "dropped" and "Message-ID" in row.reason
    assert len(mg.tickets()) == 1 and len(mg.relay.to(CARLA)) == 1


def test_a_forged_loop_header_does_not_drop_human_mail(mg):
    mg.send(make_mail(sender=CARLA, subject="Echt", headers={"X-Mailgate-Loop": "guess"}))
    mg.settle()
    assert mg.inbound()[-1].state == "done"


def test_automatic_mail_to_one_address_is_capped(harness_factory, sqlite_url):
    h = harness_factory(sqlite_url, mail={"auto_reply_limit": 5}).start()
    assert h.cli("project", "add", "acme", "--name", "ACME", "--customer", CARLA).code == 0
    for n in range(8):
        h.send(make_mail(sender=CARLA, subject=f"Ticket {n}"))
    h.settle()
    assert len(h.tickets()) == 8
    assert len(h.relay.to(CARLA)) == 5


def test_two_autoresponders_talking_through_mailgate_stop_at_the_cap(harness_factory,
                                                                     sqlite_url):
    """A customer's and an agent's badly behaved autoresponders (no Auto-Submitted) answer
    everything: the agent's notifications about that one ticket hit the per-ticket cap and
    the exchange dies out."""
    h = harness_factory(sqlite_url, mail={"auto_reply_limit": 4,
                                          "agent_ticket_limit": 4}).start()
    assert h.cli("project", "add", "acme", "--name", "ACME", "--customer", CARLA).code == 0
    assert h.cli("agent", "add", ANNA, "--name", "Anna").code == 0
    h.send(make_mail(sender=CARLA, subject="Hallo"))
    h.settle()
    rounds = 0
    for _ in range(12):
        to_anna, to_carla = h.relay.to(ANNA), h.relay.to(CARLA)
        before = len(to_anna) + len(to_carla)
        last_anna = to_anna[-1]
        h.send(reply_to(last_anna.message, sender=ANNA, body="Ich bin nicht im Büro."),
               rcpt=last_anna.message["Reply-To"].addresses[0].addr_spec, mail_from=ANNA)
        h.settle()
        last_carla = h.relay.to(CARLA)[-1]
        h.send(reply_to(last_carla.message, sender=CARLA, body="Bin im Urlaub."),
               rcpt=last_carla.message["Reply-To"].addresses[0].addr_spec, mail_from=CARLA)
        h.settle()
        if len(h.relay.to(ANNA)) + len(h.relay.to(CARLA)) == before + 1:
            break                       # only the forwarded human reply went out
        rounds += 1
    automatic = [m for m in h.relay.to(ANNA) if m.header("Auto-Submitted")]
    assert len(automatic) <= 4 + 1
    assert rounds < 12


def test_nothing_is_sent_to_the_support_address_itself(mg):
    mg.send(make_mail(sender=SUPPORT, subject="Von uns selbst"))
    mg.settle()
    assert mg.inbound()[-1].state == "dropped"
    assert mg.relay.messages == []


def test_the_cap_is_shared_by_two_instances_on_one_database(harness_factory, sqlite_url):
    first = harness_factory(sqlite_url, mail={"auto_reply_limit": 3}).start()
    second = harness_factory(sqlite_url, mail={"auto_reply_limit": 3}).start()
    assert first.cli("project", "add", "acme", "--name", "A", "--customer", CARLA).code == 0
    for n in range(4):
        first.send(make_mail(sender=CARLA, subject=f"eins {n}"))
        second.send(make_mail(sender=CARLA, subject=f"zwei {n}"))
    first.settle()
    second.settle()
    assert len(first.tickets()) == 8
    assert len(first.relay.to(CARLA)) == 3                  # one relay, one shared cap
