"""Internationalised addresses and the real envelope as the last stand-in sender.

`jürgen@exämple.de` is an address like any other: raw UTF-8 (RFC 6532), its local part
as an RFC 2047 encoded word, or its domain as punycode all read to one compared form
(the domain as IDNA A-label), and none is ever dropped from To/Cc. Over SMTP with
SMTPUTF8 such a sender is kept and answered. A mail that names no usable sender is
credited to its envelope sender (MAIL FROM, `ingest --sender`), with the salvage
recorded as a defect. All mails here are written for these tests."""

from __future__ import annotations

import smtplib

import pytest
from sqlmodel import select

from mailgate.mail.parsing import parse_mail, with_envelope
from routing.addresses import (
    Recipient,
    RecipientKind,
    RecipientRules,
    Rejection,
    classify_recipient,
    is_valid_address,
    normalize_address,
)
from store.models import Message
from tests.support.harness import SUPPORT

JUERGEN = "jürgen@xn--exmple-cua.de"     # jürgen@exämple.de in its compared form


def parsed(head: str):
    return parse_mail((head.replace("\n", "\r\n") + "\r\n\r\nHallo\r\n").encode("utf-8"))


# (header lines, expected sender, expected To, expected Cc)
INTL = [
    ("From: Jürgen <jürgen@exämple.de>\nTo: jürgen@exämple.de", JUERGEN, (JUERGEN,), ()),
    ("From: jürgen@exämple.de\nTo: Ana <anä@example.com>, bob@example.com", JUERGEN,
     ("anä@example.com", "bob@example.com"), ()),
    ("From: JÜRGEN@EXÄMPLE.DE\nTo: s@example.com\nCc: jürgen@xn--exmple-cua.de", JUERGEN,
     ("s@example.com",), (JUERGEN,)),
    ("From: =?utf-8?Q?j=C3=BCrgen?=@exämple.de\nTo: s@example.com", JUERGEN,
     ("s@example.com",), ()),
    ("From: =?utf-8?Q?J=C3=BCrgen?= <=?utf-8?B?asO8cmdlbg==?=@xn--exmple-cua.de>\n"
     "To: =?utf-8?Q?Ana?= <=?utf-8?Q?an=C3=A4?=@example.com>", JUERGEN,
     ("anä@example.com",), ()),
    ("From: carla@client.example\nTo: 用户@例子.广告\nCc: Пётр <пётр@пример.рф>",
     "carla@client.example", ("用户@xn--fsqu00a.xn--4rr70v",),
     ("пётр@xn--e1afmkfd.xn--p1ai",)),
    ("From: carla@client.example\nTo: s@example.com,\n =?utf-8?Q?j=C3=BCrgen?=@exämple.de",
     "carla@client.example", ("s@example.com", JUERGEN), ()),
    ("From: carla@bücher.example\nTo: s@example.com", "carla@xn--bcher-kva.example",
     ("s@example.com",), ()),
]


@pytest.mark.parametrize(("head", "sender", "to", "cc"), INTL)
def test_non_ascii_addresses_are_read_in_one_form_and_never_dropped(head, sender, to, cc):
    mail = parsed(head + "\nSubject: x")
    assert (mail.sender.address, mail.to, mail.cc) == (sender, to, cc)


@pytest.mark.parametrize(("address", "valid"), [
    ("jürgen@exämple.de", True), ("用户@例子.广告", True), ("josé.garcía@example.es", True),
    ("jür gen@example.de", False), ("jür\u202egen@example.de", False),
    ("j\ufffdrgen@example.de", False), ("j\u0085rgen@example.de", False),
    ("ü" * 33 + "@example.de", False), ("jürgen@exä mple.de", False),
    ("jürgen@exämple..de", False),
])
def test_a_utf8_local_part_is_valid_but_spaces_controls_and_replacements_are_not(
        address, valid):
    assert is_valid_address(normalize_address(address)) is valid


RULES = RecipientRules("support", frozenset({"example.com", "exämple.de"}))


@pytest.mark.parametrize(("rcpt", "accepted"), [
    ("support@exämple.de", True), ("support@xn--exmple-cua.de", True),
    ("Support@EXÄMPLE.de", True), ("support+acme@exämple.de", True),
    ("süpport@exämple.de", False), ("support@exaemple.de", False),
])
def test_an_idn_domain_is_served_in_unicode_and_punycode_alike(rcpt, accepted):
    verdict = classify_recipient(rcpt, RULES)
    assert isinstance(verdict, Recipient) is accepted, verdict
    if accepted:
        assert verdict.address.endswith("@xn--exmple-cua.de")
        assert verdict.kind in (RecipientKind.SUPPORT, RecipientKind.PROJECT)
    else:
        assert isinstance(verdict, Rejection)


# (header lines, envelope sender, expected sender, defect words or "" for none)
ENVELOPE = [
    ("Subject: x", "carla@client.example", "carla@client.example",
     "no From header; sender taken from the envelope"),
    ("From: undisclosed recipients\nSubject: x", "carla@client.example",
     "carla@client.example", "no address in From; sender taken from the envelope"),
    ("Subject: x", "jürgen@exämple.de", JUERGEN, "taken from the envelope"),
    ("Return-Path: <old@relay.example>\nSubject: x", "carla@client.example",
     "carla@client.example", "taken from the envelope"),
    ("Sender: bob@other.example\nSubject: x", "carla@client.example", "bob@other.example",
     "taken from Sender"),
    ("From: Carla <carla@client.example>\nSubject: x", "bounce@relay.example",
     "carla@client.example", ""),
    ("Subject: x", "", None, "no sender"),             # the null sender names nobody
    ("Subject: x", None, None, "no sender"),
    ("From: a@client.example\nFrom: b@client.example\nSubject: x", "mallory@evil.example",
     None, "not trusted"),                            # an ambiguous From stays unmatched
]


@pytest.mark.parametrize(("head", "envelope", "sender", "defect"), ENVELOPE)
def test_the_envelope_stands_in_only_for_a_mail_that_names_no_sender(head, envelope,
                                                                      sender, defect):
    mail = with_envelope(parsed(head), envelope)
    assert mail.sender.address == sender
    if defect:
        assert any(defect in d for d in mail.defects), mail.defects
    assert not any("taken from Return-Path" in d for d in mail.defects) or envelope is None


def from_less(subject: str, body: str = "Der Drucker druckt nicht.") -> bytes:
    return (f"To: {SUPPORT}\r\nSubject: {subject}\r\nMessage-ID: <{abs(hash(subject))}"
            f"@client.example>\r\n\r\n{body}\r\n").encode()


@pytest.fixture
def h(harness_factory, db_url):
    h = harness_factory(db_url, mail={"domains": ["example.com", "exämple.de"]}).start()
    assert h.cli("project", "add", "acme", "--name", "ACME", "--customer",
                 "carla@client.example", "--customer", "jürgen@exämple.de").code == 0
    return h


def test_mail_without_from_over_smtp_and_the_pipe_is_credited_to_the_envelope(h, tmp_path):
    """Over SMTP (MAIL FROM) and the pipe (--sender) alike: the ticket is the envelope
    sender's, who is acknowledged, and the message says how its sender was found."""
    h.send(from_less("Ohne Absender"), mail_from="carla@client.example")
    piped = tmp_path / "piped.eml"
    piped.write_bytes(from_less("Auch ohne Absender"))
    assert h.cli("ingest", "--sender", "<jürgen@exämple.de>", str(piped)).code == 0
    h.settle()
    with h.app.db.unit(write=False) as s:
        smtp, pipe = s.exec(select(Message).where(Message.direction == "in")
                            .order_by(Message.id)).all()
    assert smtp.from_addr == "carla@client.example" and smtp.ticket_id is not None
    assert pipe.from_addr == JUERGEN and pipe.ticket_id not in (None, smtp.ticket_id)
    for msg in (smtp, pipe):
        assert "no From header; sender taken from the envelope (MAIL FROM)" in msg.defects
    (ack,) = h.relay.wait_for("carla@client.example")
    assert "Ohne Absender" in ack.subject
    (ack,) = h.relay.wait_for(JUERGEN)
    assert "Auch ohne Absender" in ack.subject


def test_an_smtputf8_sender_is_kept_routed_and_answered(h):
    """SMTPUTF8 over the wire: `MAIL FROM:<jürgen@exämple.de> SMTPUTF8` to the IDN
    support domain is accepted, the ticket is Jürgen's, his Cc'd colleague stays in Cc,
    and the acknowledgement goes back to him through a relay that offers SMTPUTF8."""
    raw = ("From: Jürgen Müller <jürgen@exämple.de>\r\nTo: support@exämple.de\r\n"
           "Cc: Ana <anä@exämple.de>\r\nSubject: Größe des Druckers\r\n"
           "Message-ID: <j1@exämple.de>\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=utf-8\r\n\r\nDer Drucker ist zu groß.\r\n"
           ).encode()
    with smtplib.SMTP("127.0.0.1", h.port, timeout=30) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("smtputf8")
        refused = smtp.sendmail("jürgen@exämple.de", ["support@xn--exmple-cua.de"], raw,
                                mail_options=["SMTPUTF8"])
    assert refused == {}
    h.settle()
    (row,) = h.inbound()
    assert row.mail_from == "jürgen@exämple.de" and row.state == "done", row.reason
    with h.app.db.unit(write=False) as s:
        (msg,) = s.exec(select(Message).where(Message.direction == "in")).all()
    assert (msg.from_addr, msg.from_name) == (JUERGEN, "Jürgen Müller")
    assert msg.cc_addrs == ["anä@xn--exmple-cua.de"]
    (ack,) = h.relay.wait_for(JUERGEN)
    assert ack.rcpt_tos == [JUERGEN] and "Größe des Druckers" in ack.subject
    to = next(line for line in ack.raw.split(b"\r\n") if line.startswith(b"To: "))
    assert to.decode("utf-8").endswith((f"<{JUERGEN}>", f" {JUERGEN}"))   # raw UTF-8


def test_a_relay_without_smtputf8_fails_only_the_mail_that_needs_it():
    """An ASCII address goes through; `jürgen@…` is refused for good (5xx, not a retry
    and not a 'login failed'), as the relay could never take it."""
    from aiosmtpd.controller import Controller

    from mailgate.config_sections import OutboundConfig
    from mailgate.edges.relay import Relay, classify_smtp_error
    from tests.support.relay import free_port

    class Sink:
        async def handle_DATA(self, server, session, envelope):
            return "250 OK"

    port = free_port()
    plain = Controller(Sink(), hostname="127.0.0.1", port=port, enable_SMTPUTF8=False)
    plain.start()
    relay = Relay(OutboundConfig(host="127.0.0.1", port=port, timeout_seconds=5.0))
    try:
        relay.send("support@example.com", "carla@client.example", b"Subject: x\r\n\r\nx\r\n")
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            relay.send("support@example.com", JUERGEN, b"Subject: x\r\n\r\nx\r\n")
        state, detail = classify_smtp_error(refused.value)
        assert state == "failed" and "SMTPUTF8" in detail
    finally:
        relay.close()
        plain.stop()
