"""Attached mails and Outlook's winmail.dat, read exactly: a `message/rfc822` part is
stored as `<its subject>.eml` with the very bytes the sender attached (line endings,
folding and padding included), falling back to the parsed mail only when its bytes cannot
be cut out unambiguously; a winmail.dat whose only text is its compressed RTF body gives
the mail its text (decompressed with compressed_rtf, stripped with striprtf)."""

from __future__ import annotations

import base64
import struct

import pytest
from compressed_rtf import compress

from mailgate.mail.parsing import parse_mail
from mailgate.mail.tnef import read_tnef
from tests.test_parsing_recovery import PNG, tnef

INNER = (b"From: Bob <bob@x.example>\r\nTo: a@b.example\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?="
         b" from a subject line that\r\n folds here\r\nMessage-ID: <1@x.example>\r\n"
         b"MIME-Version: 1.0\r\nContent-Type: multipart/alternative;\r\n\tboundary=\"in\"\r\n"
         b"\r\npreamble\r\n--in\r\nContent-Type: text/plain; charset=utf-8\r\n"
         b"Content-Transfer-Encoding: 8bit\r\n\r\nHall\xc3\xb6\r\nFrom here on\r\n--in\r\n"
         b"Content-Type: text/html\r\n\r\n<p>x</p>\r\n--in--  \r\nepilogue\r\n")


def _forward(inner: bytes, nl: bytes, boundary: bytes = b"out") -> bytes:
    return (b"From: c@d.example\r\nSubject: fw\r\nMIME-Version: 1.0\r\nContent-Type: "
            b"multipart/mixed; boundary=\"" + boundary + b"\"\r\n\r\n--" + boundary +
            b"\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--" + boundary +
            b"\r\nContent-Type: message/rfc822; name=ATT00001.eml\r\n\r\n"
            + inner + b"\r\n--" + boundary + b"--\r\n").replace(b"\r\n", nl)


@pytest.mark.parametrize("nl", [b"\r\n", b"\n"], ids=["crlf", "lf"])
def test_an_attached_mail_is_stored_with_its_exact_bytes_as_subject_eml(nl):
    inner = INNER.replace(b"\r\n", nl)
    parsed = parse_mail(_forward(inner, nl))
    (eml,) = (a for a in parsed.attachments if a.content_type == "message/rfc822")
    assert eml.filename == "Grüße from a subject line that folds here.eml"
    assert eml.data == inner and parsed.text.strip() == "see attached"


def test_an_attached_mail_that_reuses_the_outer_boundary_falls_back_to_the_parsed_mail():
    inner = INNER.replace(b'"in"', b'"out"').replace(b"--in", b"--out")
    parsed = parse_mail(_forward(inner, b"\r\n"))
    emls = [a for a in parsed.attachments if a.content_type == "message/rfc822"]
    assert emls and all(a.filename.endswith(".eml") and a.data for a in emls)


def _tnef_with_rtf(rtf: bytes, files=()) -> bytes:
    """A TNEF container whose message has only a compressed RTF body (PR_RTF_COMPRESSED)."""
    blob = compress(rtf)
    padded = blob + b"\x00" * (-len(blob) % 4)
    props = struct.pack("<IHHII", 1, 0x0102, 0x1009, 1, len(blob)) + padded
    obj = (struct.pack("<BHHI", 1, 0x9003, 6, len(props)) + props
           + struct.pack("<H", sum(props) & 0xFFFF))
    return tnef(list(files))[:6] + obj + tnef(list(files))[6:]


RTF = (rb"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0\fswiss Calibri;}}\f0\fs22 "
       rb"Hallo Anna,\par der Drucker \'fcberhitzt wieder.\par\par Gr\'fc\'dfe, Carla\par}")


def test_a_winmail_dat_with_only_an_rtf_body_gives_the_mail_its_text():
    dat = _tnef_with_rtf(RTF, [("chart.png", PNG)])
    assert "überhitzt" in read_tnef(dat).text
    body = (b"--b\r\nContent-Type: text/plain\r\n\r\n\r\n--b\r\n"
            b"Content-Type: application/ms-tnef; name=winmail.dat\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(dat) + b"--b--\r\n")
    parsed = parse_mail(b"From: carla@client.example\r\nSubject: Drucker\r\nMIME-Version: 1.0"
                        b"\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n" + body)
    assert parsed.text.split("\n")[:2] == ["Hallo Anna,", "der Drucker überhitzt wieder."]
    assert "Grüße, Carla" in parsed.text
    assert "the text was read from winmail.dat" in parsed.defects
    assert {a.filename for a in parsed.attachments} == {"winmail.dat", "chart.png"}


def test_a_mail_with_its_own_text_keeps_it_beside_a_winmail_dat_with_rtf():
    dat = _tnef_with_rtf(RTF)
    body = (b"--b\r\nContent-Type: text/plain\r\n\r\nMein eigener Text.\r\n--b\r\n"
            b"Content-Type: application/ms-tnef; name=winmail.dat\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(dat) + b"--b--\r\n")
    parsed = parse_mail(b"From: carla@client.example\r\nSubject: Drucker\r\nMIME-Version: 1.0"
                        b"\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n" + body)
    assert parsed.text.strip() == "Mein eigener Text."
