"""Header text decoding (RFC 2047 encoded words, raw 8-bit headers) as a table, checked
against the standard library's two decoders where they are right, and end to end: the
subject stored on a ticket and the one on the agent's notification, over real SMTP."""

from __future__ import annotations

import base64
import email.header
import email.policy
import re

import pytest

from mailgate.mail.parsing import parse_mail
from mailgate.mail.text import decode_header_value
from tests.support.harness import SUPPORT


def b64(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


UE = "ü".encode()     # two bytes: a B-encoded word can end between them

# (header value, what it reads as, which references agree: "make" is
# email.header.make_header(decode_header(...)), "default" is email.policy.default)
CASES = [
    ("=?utf-8?q?Gr=C3=BC=C3=9Fe?= aus Berlin", "Grüße aus Berlin", {"make", "default"}),
    ("Re: =?utf-8?b?" + b64("überhi") + "?= =?utf-8?b?" + b64("tzt – Grüße") + "?=",
     "Re: überhitzt – Grüße", {"make", "default"}),
    # split inside the two bytes of one character: the words join as bytes first
    ("Re: =?utf-8?b?" + b64(UE[:1]) + "?=\r\n =?utf-8?b?" + b64(UE[1:] + b"ber") + "?=",
     "Re: über", {"make"}),
    ("=?iso-8859-1?q?caf=E9?=\r\n =?utf-8?q?cr=C3=A8me?=", "cafécrème", {"make", "default"}),
    ("=?iso-8859-1?q?caf=E9?= =?utf-8?q?_cr=C3=A8me?=", "café crème", {"make", "default"}),
    ("a =?utf-8?q?b?= c", "a b c", {"make", "default"}),
    ("=?utf-8?q?=C3=BCberhitzt_=E2=80=93?= =?utf-8?q?_Gr=C3=BC=C3=9Fe?=",
     "überhitzt – Grüße", {"make", "default"}),
    # the space between two encoded words is not text (RFC 2047 6.2), even folded
    ("=?utf-8?q?=C3=BCberhitzt_=E2=80=93?=\r\n =?utf-8?q?Gr=C3=BC=C3=9Fe?=",
     "überhitzt –Grüße", {"make", "default"}),
    ("=?utf-8?q?a?=\r\n\t=?utf-8?q?b?=", "ab", {"make", "default"}),
    ("=?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n aus Berlin", "Grüße aus Berlin", {"make", "default"}),
    ("[#1] =?utf-8?q?=C3=BCberhitzt?= – Grüße", "[#1] überhitzt – Grüße", {"default"}),
    ("=?utf-8?q?hello_world?=", "hello world", {"make", "default"}),
    ("=?utf-8?b?" + b64("hello_world") + "?=", "hello_world", {"make", "default"}),
    ("=?UTF-8?Q?Gr=c3=bc=C3=9Fe?=", "Grüße", {"make", "default"}),
    ("=?utf-8*de?q?Gr=C3=BC=C3=9Fe?=", "Grüße", {"default"}),
    ("=?utf-8?b?" + b64("Grüße")[:-2] + "?=", "Grüße", {"default"}),   # padding left off
    # malformed words stay as they are
    # (the default policy shows the encoded text of both undecoded; make_header raises)
    ("=?x-klingon?q?Qapla?= x", "=?x-klingon?q?Qapla?= x", set()),
    ("=?utf-8?x?abc?= x", "=?utf-8?x?abc?= x", {"make", "default"}),
    ("=?utf-8?q?open ended", "=?utf-8?q?open ended", {"make", "default"}),
    ("=?utf-8?b?QUJDR?= x", "=?utf-8?b?QUJDR?= x", set()),
    # glued to ordinary text: decoded, nothing inserted (as the default policy does)
    ("foo=?utf-8?q?bar?=", "foobar", {"default"}),
    # encoded words in From display names: in a quoted string and in a comment
    ('"=?utf-8?q?J=C3=BCrgen?=" <j@client.example>', '"Jürgen" <j@client.example>',
     {"default"}),
    ("j@client.example (=?utf-8?q?J=C3=BCrgen_M=C3=BCller?=)",
     "j@client.example (Jürgen Müller)", {"make", "default"}),
    # raw UTF-8 (RFC 6532) next to encoded words
    ("Grüße =?utf-8?q?caf=C3=A9?= x", "Grüße café x", {"default"}),
    ("=?utf-8?q?caf=C3=A9?= – Grüße", "café – Grüße", {"default"}),
    ("plain ascii, no words", "plain ascii, no words", {"make", "default"}),
]


def _squash(text: str) -> str:
    """The displayed form: one line, runs of blanks as one space (what we store)."""
    return " ".join(text.split())


def _make(value: str) -> str:
    return str(email.header.make_header(email.header.decode_header(value)))


def _default(value: str) -> str:
    text = "Subject: " + value + "\r\n\r\n"
    return str(email.message_from_string(text, policy=email.policy.default)["Subject"])


@pytest.mark.parametrize(("value", "expected", "agree"), CASES,
                         ids=[re.sub(r"\W+", "-", c[1])[:40] for c in CASES])
def test_encoded_words_decode_with_rfc_2047_spacing(value, expected, agree):
    assert decode_header_value(value) == expected
    refs = {"make": _make, "default": _default}
    for name in agree:
        assert _squash(refs[name](value)) == expected, name


@pytest.mark.parametrize(("raw_subject", "expected"), [
    ("Grüße aus Köln".encode(), "Grüße aus Köln"),                       # UTF-8
    ("Grüße aus Köln".encode("cp1252"), "Grüße aus Köln"),               # legacy 8-bit
    ("überhitzt – =?utf-8?q?Gr=C3=BC=C3=9Fe?=".encode(), "überhitzt – Grüße"),
    (b"=?utf-8?q?a?=\r =?utf-8?q?b?= c", "ab c"),                        # CR-only fold
    (b"=?utf-8?q?a?=\n =?utf-8?q?b?= c", "ab c"),                        # LF-only fold
], ids=["utf8", "cp1252", "mixed", "cr-fold", "lf-fold"])
def test_raw_8bit_subjects_are_read_as_text(raw_subject, expected):
    """compat32 wraps 8-bit header values in a Header whose str() is U+FFFD; the raw
    value is read instead."""
    raw = b"From: J\xc3\xbcrgen <j@client.example>\r\nSubject: " + raw_subject + \
        b"\r\n\r\nbody\r\n"
    mail = parse_mail(raw)
    assert mail.subject == expected
    assert mail.sender.name == "Jürgen" and mail.sender.address == "j@client.example"


SUBJECTS = {
    b"=?utf-8?q?Gr=C3=BC=C3=9Fe?= aus Berlin": "Grüße aus Berlin",
    b"Server =?utf-8?q?=C3=BCberhitzt?= =?utf-8?q?_=E2=80=93_Gr=C3=BC=C3=9Fe?=":
        "Server überhitzt – Grüße",
    b"=?iso-8859-1?q?caf=E9?=\r\n =?utf-8?q?cr=C3=A8me?= a =?utf-8?q?b?= c": "cafécrème a b c",
    "Grüße =?utf-8?q?caf=C3=A9?= x".encode(): "Grüße café x",
}


def test_subjects_stored_on_tickets_and_sent_to_agents_read_right(mg):
    """Over SMTP: each mail opens a ticket whose subject reads as the sender meant, and
    the agent's notification carries the same words."""
    for n, subject in enumerate(SUBJECTS):
        raw = (b"From: Carla <carla@client.example>\r\nTo: " + SUPPORT.encode() +
               b"\r\nSubject: " + subject + b"\r\nMessage-ID: <subj" + str(n).encode() +
               b"@client.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHi.\r\n")
        mg.send(raw, mail_from="carla@client.example")
    mg.settle()
    assert sorted(t.subject for t in mg.tickets()) == sorted(SUBJECTS.values())
    notices = mg.relay.wait_for("anna@agency.example", count=len(SUBJECTS))
    for expected in SUBJECTS.values():
        assert any(expected in n.subject for n in notices), (expected,
                                                             [n.subject for n in notices])
