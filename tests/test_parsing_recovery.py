"""Reading mail the way people (and their broken clients) write it: charsets by what the
bytes are, senders from broken From headers, broken header folding, attachment bytes as
sent, every part kept with a sensible name, and the body that carries the content. Each
fallback shows up as a defect. All mails here are written for these tests."""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct

import pytest

from mailgate.mail.charsets import decode_text
from mailgate.mail.htmltext import html_to_text
from mailgate.mail.parsing import parse_mail
from mailgate.mail.tnef import unpack_tnef
from mailgate.mail.transfer import base64_lenient, uudecode


def mail(head: str | bytes, body: str | bytes = "Hallo\n", *, charset: str = "") -> bytes:
    head = head.encode() if isinstance(head, str) else head
    body = body.encode(charset or "utf-8") if isinstance(body, str) else body
    return head.replace(b"\n", b"\r\n") + b"\r\n\r\n" + body


def has_defect(parsed, words: str) -> bool:
    return any(words in d for d in parsed.defects)


# --- 1. charsets ------------------------------------------------------------------------

# (declared label, bytes, expected text, defect words or "" for none)
CHARSETS = [
    ("gb2312", "测试邮件".encode("gbk"), "测试邮件", ""),
    ("gb2312", "𠀀测试".encode("gb18030"), "𠀀测试", "read as gb18030"),
    ("gbk", "繁體字測試".encode("gbk"), "繁體字測試", ""),
    ("iso-2022-jp", "日本語のテキスト".encode("iso2022_jp"), "日本語のテキスト", ""),
    ("iso-2022-jp", "日本語のテキスト".encode("cp932"), "日本語のテキスト", "read as cp932"),
    ("iso-2022-jp", "ｶﾀｶﾅ半角".encode("iso2022_jp_ext"), "ｶﾀｶﾅ半角", "iso2022_jp_ext"),
    ("", "日本語のテキスト".encode("iso2022_jp"), "日本語のテキスト", "ISO-2022-JP"),
    ("us-ascii", "日本語のテキスト".encode("iso2022_jp"), "日本語のテキスト", "ISO-2022-JP"),
    ("shift_jis", "①番目の項目".encode("cp932"), "①番目の項目", "read as cp932"),
    ("ks_c_5601-1987", "안녕하세요".encode("cp949"), "안녕하세요", ""),
    ("euc-kr", "똠방각하".encode("cp949"), "똠방각하", "read as cp949"),
    ("iso-8859-1", "Grüße".encode("latin-1"), "Grüße", ""),
    ("iso-8859-1", "Preis: 5 €".encode("cp1252"), "Preis: 5 €", "read as cp1252"),
    ("iso-8859-1", "Rémi".encode(), "Rémi", "read as UTF-8"),
    ("us-ascii", "Rémi".encode(), "Rémi", "read as UTF-8"),
    ("us-ascii", b"plain", "plain", ""),
    ("utf-8", "Grüße aus Köln".encode(), "Grüße aus Köln", ""),
    ("x-no-such-charset", "Grüße".encode(), "Grüße", "unknown charset"),
    ("", "Grüße".encode(), "Grüße", ""),
    ("big5", "香港增補字符集".encode("big5hkscs"), "香港增補字符集", ""),
    ("windows-1251", "Привет".encode("cp1251"), "Привет", ""),
    ("utf-8", "Grüße aus Köln, schöne Grüße".encode("cp1252"), "Grüße aus Köln", "not valid"),
]


@pytest.mark.parametrize(("label", "data", "text", "defect"), CHARSETS)
def test_text_is_read_by_what_its_bytes_are(label, data, text, defect):
    got, problem = decode_text(data, label)
    assert text in got
    assert (defect in problem) if defect else problem == ""


def test_a_mislabelled_body_is_decoded_and_the_fallback_recorded():
    raw = mail("From: li@client.example\nSubject: x\nContent-Type: text/plain; "
               "charset=iso-2022-jp", "日本語のテキスト".encode("cp932"))
    parsed = parse_mail(raw)
    assert "日本語のテキスト" in parsed.text and has_defect(parsed, "read as cp932")


def test_an_iso_2022_jp_body_is_never_left_as_escape_sequences():
    raw = mail("From: li@client.example\nSubject: x\nContent-Type: text/plain; "
               "charset=iso-2022-jp", "こんにちは".encode("iso2022_jp"))
    assert parse_mail(raw).text.strip() == "こんにちは"


# (raw header bytes, the text/plain charset, expected subject, defect words)
RAW_HEADERS = [
    ("Grüße aus Köln".encode(), "", "Grüße aus Köln", ""),
    ("测试邮件的标题".encode("gbk"), "gb2312", "测试邮件的标题", "read as gb18030"),
    ("Grüße aus Köln".encode("cp1252"), "iso-8859-1", "Grüße aus Köln", "read as cp1252"),
    ("日本語の件名".encode("cp932"), "shift_jis", "日本語の件名", "read as cp932"),
]


@pytest.mark.parametrize(("subject", "charset", "expected", "defect"), RAW_HEADERS)
def test_raw_8bit_headers_are_read_by_the_mails_charset(subject, charset, expected, defect):
    ctype = f"\nContent-Type: text/plain; charset={charset}" if charset else ""
    raw = mail(b"From: li@client.example\nSubject: " + subject + ctype.encode(), b"x")
    parsed = parse_mail(raw)
    assert parsed.subject == expected
    assert has_defect(parsed, defect) if defect else not parsed.defects


def test_raw_utf8_in_a_display_name_is_not_replaced():
    parsed = parse_mail(mail("From: Rémi Lefèvre <remi@client.example>\nSubject: x"))
    assert parsed.sender.name == "Rémi Lefèvre"


# --- 2. senders ---------------------------------------------------------------------------

# (From header lines, expected address, expected name, defect words)
SENDERS = [
    ("From: Carla <carla@client.example.>", "carla@client.example", "Carla", "dot"),
    ("From: carla@client.example.", "carla@client.example", "", "dot"),
    ("From: Carla <carla@client.example>, Bob <bob@other.example>", "carla@client.example",
     "Carla", "first is the sender"),
    ("From: carla@client.example, bob@other.example", "carla@client.example", "",
     "first is the sender"),
    ("From: =?utf-8?Q?Client,_Carla?= <carla@client.example>", "carla@client.example",
     "Client, Carla", "encoded word"),
    ("From: =?iso-8859-1?Q?M=FCller,_J=F6rg?= <joerg@client.example>",
     "joerg@client.example", "Müller, Jörg", "encoded word"),
    ("From: Carla <carla @ client.example>", "carla@client.example", "Carla", "spaces"),
    ("From: Carla < carla@client.example >", "carla@client.example", "Carla", ""),
    ('From: "Carla Client <carla@client.example>', "carla@client.example", "Carla Client",
     "unbalanced quote"),
    ('From: Carla "Client <carla@client.example>', "carla@client.example", "Carla Client",
     "unbalanced quote"),
    ("From: Carla Client carla@client.example", "carla@client.example", "Carla Client",
     "without angle brackets"),
    ("From: carla@client.example Carla Client", "carla@client.example", "Carla Client",
     "without angle brackets"),
    ("From: carla@client.example (Carla Client)", "carla@client.example", "Carla Client", ""),
    ("From: Carla Client <carla@client.example>", "carla@client.example", "Carla Client", ""),
    ("Sender: carla@client.example", "carla@client.example", "", "taken from Sender"),
    ("Reply-To: Carla <carla@client.example>", "carla@client.example", "Carla",
     "taken from Reply-To"),
    ("Return-Path: <carla@client.example>", "carla@client.example", "",
     "taken from Return-Path"),
    ("From: undisclosed\nSender: carla@client.example", "carla@client.example", "",
     "taken from Sender"),
    ("Sender: carla@client.example\nReply-To: bob@other.example", "carla@client.example", "",
     "taken from Sender"),
]


@pytest.mark.parametrize(("lines", "address", "name", "defect"), SENDERS)
def test_a_broken_from_header_still_gives_the_sender(lines, address, name, defect):
    parsed = parse_mail(mail(f"{lines}\nSubject: x"))
    assert parsed.sender.address == address
    assert parsed.sender.name == name
    assert has_defect(parsed, defect) if defect else not parsed.defects


# Ambiguous senders stay unmatched: routing must never credit them to anyone.
AMBIGUOUS = [
    "From: carla@client.example\nFrom: anna@agency.example",
    'From: "anna@agency.example" <mallory@evil.example>',
    "From: anna@agency.example <mallory@evil.example>",
    'From: "Anna <anna@agency.example>" <mallory@evil.example>',
    "From: =?utf-8?Q?anna=40agency=2Eexample?= <mallory@evil.example>",
]


@pytest.mark.parametrize("lines", AMBIGUOUS)
def test_an_ambiguous_sender_is_never_repaired_into_a_matchable_one(lines):
    parsed = parse_mail(mail(f"{lines}\nSubject: x"))
    assert parsed.sender.address is None and parsed.sender.problem
    assert "@" not in parsed.sender.name
    assert has_defect(parsed, "not trusted")


# --- 3. folding ---------------------------------------------------------------------------

FOLDING = [
    ("From: carla@client.example\nSubject: Drucker druckt\nnicht mehr\nTo: s@example.com",
     "Drucker druckt nicht mehr", ("s@example.com",), "Hallo"),
    ("Subject: Drucker druckt\nnicht mehr\nund auch nicht farbig\nFrom: carla@client.example"
     "\nTo: s@example.com", "Drucker druckt nicht mehr und auch nicht farbig",
     ("s@example.com",), "Hallo"),
    ("To: a@example.com,\nb@example.com\nFrom: carla@client.example\nSubject: Liste",
     "Liste", ("a@example.com", "b@example.com"), "Hallo"),
]


@pytest.mark.parametrize(("head", "subject", "to", "body"), FOLDING)
def test_a_continuation_line_without_indent_does_not_end_the_headers(head, subject, to, body):
    parsed = parse_mail(mail(head))
    assert parsed.subject == subject and parsed.to == to
    assert parsed.sender.address == "carla@client.example"
    assert parsed.text.strip() == body and has_defect(parsed, "broken folding")


def test_an_unfinished_address_continued_without_indent_is_joined():
    raw = (b"From: carla@client.example\r\nSubject: x\r\nCc: C <c@client.example>, D <d@\r\n"
           b"client.example>\r\n\r\nHallo\r\n")
    parsed = parse_mail(raw)
    assert parsed.cc == ("c@client.example", "d@client.example")
    assert parsed.text.strip() == "Hallo" and has_defect(parsed, "broken folding")


def test_a_line_without_colon_after_the_last_header_still_starts_the_body():
    raw = b"From: carla@client.example\r\nSubject: x\r\nHallo ohne Leerzeile\r\n\r\nmehr\r\n"
    parsed = parse_mail(raw)
    assert parsed.subject == "x" and "Hallo ohne Leerzeile" in parsed.text
    assert not has_defect(parsed, "broken folding")


# --- 4. attachment bytes ------------------------------------------------------------------

HEAD = 'From: carla@client.example\nSubject: Anhang\nMIME-Version: 1.0\n' \
       'Content-Type: multipart/mixed; boundary="b"'


def with_part(part_head: str, part_body: bytes, *, text: str = "Siehe Anhang.") -> bytes:
    body = (f"--b\r\nContent-Type: text/plain\r\n\r\n{text}\r\n--b\r\n"
            + part_head.replace("\n", "\r\n") + "\r\n\r\n").encode() + part_body \
        + b"\r\n--b--\r\n"
    return mail(HEAD, body)


LF_TEXT = b"line one\nline two\n"
PNG = bytes(range(256)) * 4
ATTACHMENT_BYTES = [
    ("base64 text keeps LF", "Content-Type: text/plain; name=a.txt\n"
     "Content-Transfer-Encoding: base64", base64.encodebytes(LF_TEXT), LF_TEXT, ""),
    ("7bit text in CRLF transport gets LF", "Content-Type: text/plain; name=a.txt\n"
     "Content-Disposition: attachment", b"line one\r\nline two", b"line one\nline two", ""),
    ("quoted-printable text gets LF", "Content-Type: text/plain; name=a.txt\n"
     "Content-Transfer-Encoding: quoted-printable", b"Gr=C3=BC=C3=9Fe\r\nzwei",
     "Grüße\nzwei".encode(), ""),
    ("two CTE headers: base64 over an identity label", "Content-Type: image/png; name=p.png\n"
     "Content-Transfer-Encoding: base64\nContent-Transfer-Encoding: 7bit",
     base64.encodebytes(PNG), PNG, "2 Content-Transfer-Encoding"),
    ("7bit before base64: base64", "Content-Type: image/png; name=p.png\n"
     "Content-Transfer-Encoding: 7bit\nContent-Transfer-Encoding: base64",
     base64.encodebytes(PNG), PNG, "used base64"),
    ("base64 label on a body that is not base64: identity", "Content-Type: text/plain; "
     "name=a.txt\nContent-Transfer-Encoding: 8bit\nContent-Transfer-Encoding: base64",
     "Grüße, kein base64!\r\n".encode(), "Grüße, kein base64!\n".encode(), "used 8bit"),
    ("invalid first CTE, valid second", "Content-Type: image/png; name=p.png\n"
     "Content-Transfer-Encoding: bas64\nContent-Transfer-Encoding: base64",
     base64.encodebytes(PNG), PNG, "used base64"),
    ("truncated base64", "Content-Type: image/png; name=p.png\n"
     "Content-Transfer-Encoding: base64", base64.b64encode(PNG)[:-3], PNG[:-1],
     "cut off"),
    ("x-uuencode", "Content-Type: application/octet-stream; name=p.bin\n"
     "Content-Transfer-Encoding: x-uuencode",
     b"begin 644 p.bin\n" + b"".join(binascii.b2a_uu(PNG[i:i + 45])
                                     for i in range(0, len(PNG), 45)) + b"`\nend\n", PNG, ""),
    ("binary png", "Content-Type: image/png; name=p.png\n"
     "Content-Transfer-Encoding: base64", base64.encodebytes(PNG), PNG, ""),
]


@pytest.mark.parametrize(("why", "head", "body", "data", "defect"), ATTACHMENT_BYTES,
                         ids=[c[0] for c in ATTACHMENT_BYTES])
def test_attachment_bytes_are_exactly_as_sent(why, head, body, data, defect):
    parsed = parse_mail(with_part(head, body))
    (att,) = parsed.attachments
    assert att.data == data and att.sha256 == hashlib.sha256(data).hexdigest()
    assert has_defect(parsed, defect) if defect else True


def test_an_inline_uuencoded_block_becomes_an_attachment():
    block = b"begin 644 notes.txt\n" + binascii.b2a_uu(b"uu content\n") + b"`\nend\n"
    raw = mail("From: carla@client.example\nSubject: uu",
               b"Hier die Datei:\n\n" + block + b"\nGruss\n")
    parsed = parse_mail(raw)
    (att,) = parsed.attachments
    assert att.filename == "notes.txt" and att.data == b"uu content\n"
    assert "begin 644" not in parsed.text and "Gruss" in parsed.text


def test_lenient_base64_and_uudecode_helpers():
    assert base64_lenient(b"aGVsbG8=") == (b"hello", "")
    assert base64_lenient(b"aGVsbG8")[0] == b"hello"
    assert base64_lenient(b"aGVs\r\n*bG8=") == (b"hello", "")
    assert uudecode(b"begin 644 x\n%:&5L;&\\`\n`\nend\n")[0] == b"hello"


# --- 5. every part kept, sensibly named ---------------------------------------------------

def test_an_attached_mail_is_named_after_its_subject():
    inner = "From: bob@other.example\r\nSubject: Rechnung 4711/2025: bitte zahlen\r\n\r\nText"
    parsed = parse_mail(with_part("Content-Type: message/rfc822; name=ATT00001.eml",
                                  inner.encode()))
    (att,) = parsed.attachments
    assert att.filename == "Rechnung 4711_2025_ bitte zahlen.eml"


@pytest.mark.parametrize(("ctype", "name"), [
    ("image/png", "file-1.png"), ("application/pdf", "file-1.pdf"),
    ("application/pgp-signature", "file-1.asc"), ("application/pgp-encrypted", "file-1.pgp"),
    ("text/calendar", "file-1.ics"), ("application/x-unknown-thing", "file-1.bin"),
])
def test_unnamed_parts_are_kept_as_file_n_by_type(ctype, name):
    parsed = parse_mail(with_part(f"Content-Type: {ctype}", b"Version: 1"))
    (att,) = parsed.attachments
    assert att.filename == name and att.data == b"Version: 1"


def test_pgp_mime_control_part_and_signature_are_kept():
    body = (b"--b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n"
            b"--b\r\nContent-Type: application/octet-stream; name=encrypted.asc\r\n\r\n"
            b"-----BEGIN PGP MESSAGE-----\r\nxyz\r\n-----END PGP MESSAGE-----\r\n--b--\r\n")
    raw = mail('From: carla@client.example\nSubject: pgp\nMIME-Version: 1.0\nContent-Type: '
               'multipart/encrypted; protocol="application/pgp-encrypted"; boundary="b"', body)
    names = [a.filename for a in parse_mail(raw).attachments]
    assert names == ["file-1.pgp", "encrypted.asc"]


def test_a_second_html_alternative_is_kept_as_an_attachment():
    body = (b"--b\r\nContent-Type: text/plain\r\n\r\nplain text\r\n"
            b"--b\r\nContent-Type: text/html\r\n\r\n<p>plain text</p>\r\n"
            b"--b\r\nContent-Type: text/html\r\n\r\n<p>other document</p>\r\n--b--\r\n")
    raw = mail('From: carla@client.example\nSubject: alt\nMIME-Version: 1.0\nContent-Type: '
               'multipart/alternative; boundary="b"', body)
    parsed = parse_mail(raw)
    assert parsed.text.strip() == "plain text" and "other document" not in parsed.html
    (att,) = parsed.attachments
    assert att.filename == "file-1.html" and b"other document" in att.data


def tnef(files: list[tuple[str, bytes]]) -> bytes:
    """A minimal TNEF container as Outlook writes one (attachment objects only)."""
    def obj(name: int, kind: int, data: bytes) -> bytes:
        return (struct.pack("<BHHI", 2, name, kind, len(data)) + data
                + struct.pack("<H", sum(data) & 0xFFFF))
    out = struct.pack("<IH", 0x223E9F78, 1)
    for name, data in files:
        out += obj(0x9002, 2, b"\x01\x00" * 7) + obj(0x8010, 1, name.encode() + b"\x00") \
            + obj(0x800F, 6, data)
    return out


def test_winmail_dat_gives_its_real_attachments_and_is_kept():
    dat = tnef([("report.txt", b"hello from outlook\n"), ("chart.png", PNG)])
    parsed = parse_mail(with_part("Content-Type: application/ms-tnef; name=winmail.dat\n"
                                  "Content-Transfer-Encoding: base64",
                                  base64.encodebytes(dat)))
    got = {a.filename: a.data for a in parsed.attachments}
    assert got == {"winmail.dat": dat, "report.txt": b"hello from outlook\n",
                   "chart.png": PNG}


def test_a_broken_winmail_dat_is_kept_with_a_defect():
    dat = b"\x78\x9f\x3e\x22" + b"\xff" * 40
    parsed = parse_mail(with_part("Content-Type: application/ms-tnef; name=winmail.dat\n"
                                  "Content-Transfer-Encoding: base64",
                                  base64.encodebytes(dat)))
    assert parsed.attachments[0].filename == "winmail.dat"
    assert unpack_tnef(b"\x78\x9f\x3e\x22")[1]


def test_inline_cid_images_are_named_in_the_text():
    assert html_to_text('<p>Hier:<img src="cid:img1@x" alt="Logo"></p>',
                        images={"img1@x": "screenshot.png"}) == "Hier:[image: screenshot.png]"
    body = (b"--b\r\nContent-Type: text/html\r\n\r\n<p>Fehler: <img src=\"cid:s1\"></p>\r\n"
            b"--b\r\nContent-Type: image/png; name=fehler.png\r\nContent-ID: <s1>\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(PNG)
            + b"--b--\r\n")
    raw = mail('From: carla@client.example\nSubject: cid\nMIME-Version: 1.0\nContent-Type: '
               'multipart/related; boundary="b"', body)
    parsed = parse_mail(raw)
    assert "[image: fehler.png]" in parsed.text
    assert parsed.attachments[0].content_id == "s1"


# --- 6. body choice -----------------------------------------------------------------------

LONG_HTML = "<p>" + " ".join(f"Wort{n}" for n in range(80)) + "</p>"
BODIES = [
    ("", "<p>Nur HTML</p>", "Nur HTML", ""),
    ("   \r\n  ", "<p>Nur HTML</p>", "Nur HTML", ""),
    ("This is an HTML message.", "<p>Der Drucker druckt nicht.</p>",
     "Der Drucker druckt nicht.", "stub"),
    ("Your email client does not support HTML.", "<p>Inhalt hier</p>", "Inhalt hier", "stub"),
    ("Hallo", LONG_HTML, "Wort79", "stub"),
    ("Der Drucker druckt nicht.", "<p>Der Drucker <b>druckt</b> nicht.</p>",
     "Der Drucker druckt nicht.", ""),
]


@pytest.mark.parametrize(("plain", "html", "expected", "defect"), BODIES)
def test_the_body_is_the_part_that_carries_the_content(plain, html, expected, defect):
    body = (f"--b\r\nContent-Type: text/plain\r\n\r\n{plain}\r\n--b\r\n"
            f"Content-Type: text/html\r\n\r\n{html}\r\n--b--\r\n").encode()
    raw = mail('From: carla@client.example\nSubject: x\nMIME-Version: 1.0\nContent-Type: '
               'multipart/alternative; boundary="b"', body)
    parsed = parse_mail(raw)
    assert expected in parsed.text
    assert has_defect(parsed, defect) if defect else not parsed.defects


def test_large_attachments_read_the_same_as_small_ones():
    """Parts over mail.large's threshold are decoded outside the parser: the same LF
    text, the first valid encoding, and a part left to the parser shifts nothing."""
    text = b"eine Zeile Text\n" * 20_000
    png = PNG * 300
    uu = b"begin 644 big.bin\n" + b"".join(binascii.b2a_uu(png[i:i + 45])
                                         for i in range(0, len(png), 45)) + b"`\nend\n"
    body = (b"--b\r\nContent-Type: text/plain\r\n\r\nDrei Dateien.\r\n"
            b"--b\r\nContent-Type: application/octet-stream; name=big.bin\r\n"
            b"Content-Transfer-Encoding: x-uuencode\r\n\r\n" + uu.replace(b"\n", b"\r\n")
            + b"\r\n--b\r\nContent-Type: text/plain; name=big.txt\r\n"
            b"Content-Disposition: attachment\r\n\r\n" + text.replace(b"\n", b"\r\n")
            + b"\r\n--b\r\nContent-Type: image/png; name=big.png\r\n"
            b"Content-Transfer-Encoding: 7bit\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + base64.encodebytes(png).replace(b"\n", b"\r\n") + b"--b--\r\n")
    parsed = parse_mail(mail(HEAD, body))
    got = {a.filename: a.data for a in parsed.attachments}
    assert got["big.bin"] == png and got["big.png"] == png
    assert got["big.txt"] == text
