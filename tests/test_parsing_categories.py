"""The issue's seven kinds of misread mail, measured with more mails of our own: each
row is a mail as some client or broken gateway writes it and what a careful reader gets
from it. These rows extend tests/test_parsing_recovery.py and
tests/test_replytext_table.py where those did not reach (mails without any charset hint,
mislabelled encoded words and file names, more broken From forms, localised mobile
footers). All mails here are written for these tests."""

from __future__ import annotations

import base64
import binascii

import pytest

from mailgate.mail.charsets import decode_header_bytes
from mailgate.mail.parsing import parse_mail
from routing.replytext import split_reply


def mail(head: str | bytes, body: str | bytes = "Hallo\n") -> bytes:
    head = head.encode() if isinstance(head, str) else head
    body = body.encode() if isinstance(body, str) else body
    return head.replace(b"\n", b"\r\n") + b"\r\n\r\n" + body


def defects_have(parsed, words: str) -> bool:
    return any(words in d for d in parsed.defects)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- 1. charsets without a hint, and mislabelled encoded words ----------------------------

# (raw 8-bit subject bytes of a mail that declares no charset anywhere, expected subject)
UNHINTED = [
    ("打印机坏了请帮忙".encode("gbk"), "打印机坏了请帮忙"),
    ("李小龙".encode("gbk"), "李小龙"),
    ("繁體字測試".encode("gbk"), "繁體字測試"),
    ("繁體字測試".encode("big5"), "繁體字測試"),
    ("臺灣".encode("big5"), "臺灣"),
    ("日本語の件名".encode("cp932"), "日本語の件名"),
    ("会議の資料".encode("cp932"), "会議の資料"),
    ("東京都".encode("cp932"), "東京都"),
    ("Grüße aus Köln".encode("cp1252"), "Grüße aus Köln"),
    ("Ærøskøbing".encode("cp1252"), "Ærøskøbing"),
    ("Привет мир".encode("cp1251"), "Привет мир"),
    ("Счёт за услуги".encode("cp1251"), "Счёт за услуги"),
    ("Привет мир, как дела".encode("koi8_r"), "Привет мир, как дела"),
    ("Rémi Lefèvre".encode(), "Rémi Lefèvre"),
]


@pytest.mark.parametrize(("subject", "expected"), UNHINTED, ids=[u[1] for u in UNHINTED])
def test_raw_8bit_headers_without_any_charset_hint_are_read_by_their_bytes(subject,
                                                                           expected):
    parsed = parse_mail(mail(b"From: li@client.example\nSubject: " + subject, "x"))
    assert parsed.subject == expected


# (encoded-word subject, expected)
ENCODED_WORDS = [
    ("=?utf-8?Q?Gr=FC=DFe?=", "Grüße"),                               # Latin-1 bytes
    (f"=?gb2312?B?{b64('繁體字測試'.encode('gbk'))}?=", "繁體字測試"),
    (f"=?ISO-2022-JP?B?{b64('日本語の件名'.encode('cp932'))}?=", "日本語の件名"),
    (f"=?ISO-2022-JP?B?{b64('日本語の件名'.encode('iso2022_jp'))}?=", "日本語の件名"),
    (f"=?ks_c_5601-1987?B?{b64('안녕하세요'.encode('cp949'))}?=", "안녕하세요"),
    (f"=?windows-1251?B?{b64('Счёт'.encode('cp1251'))}?= 42", "Счёт 42"),
]


@pytest.mark.parametrize(("subject", "expected"), ENCODED_WORDS)
def test_a_mislabelled_encoded_word_is_read_by_its_bytes(subject, expected):
    assert parse_mail(mail(f"From: li@client.example\nSubject: {subject}")).subject \
        == expected


def test_short_cjk_headers_are_read_in_the_script_their_bytes_make_sense_in():
    """The statistical guesser reads a few GBK words as Korean; by script purity they
    are Chinese, Shift_JIS kana are Japanese, and Western letters stay Western."""
    assert decode_header_bytes("服务器问题".encode("gbk")) == ("服务器问题", "gb18030")
    assert decode_header_bytes("こんにちは".encode("cp932")) == ("こんにちは", "cp932")
    assert decode_header_bytes("élève".encode("cp1252")) == ("élève", "cp1252")


MULTI = 'From: a@client.example\nSubject: x\nMIME-Version: 1.0\nContent-Type: ' \
        'multipart/mixed; boundary="b"'


def with_part(part_head: bytes, part_body: bytes = b"PDF", *,
              text_head: bytes = b"Content-Type: text/plain") -> bytes:
    return mail(MULTI, b"--b\r\n" + text_head + b"\r\n\r\nx\r\n--b\r\n" + part_head
                + b"\r\n\r\n" + part_body + b"\r\n--b--\r\n")


# (attachment part headers, the text part's headers, expected file name)
FILENAMES = [
    (b'Content-Type: application/zip; name="' + "ФНС_РФ558.zip".encode() + b'"\r\n'
     b'Content-Disposition: attachment; filename="' + "ФНС_РФ558.zip".encode() + b'"',
     b"Content-Type: text/plain", "ФНС_РФ558.zip"),
    (b'Content-Type: application/pdf\r\nContent-Disposition: attachment; filename="'
     + "Счёт.pdf".encode("cp1251") + b'"', b"Content-Type: text/plain; charset=windows-1251",
     "Счёт.pdf"),
    (b"Content-Type: application/pdf\r\nContent-Disposition: attachment; filename*=gb2312''"
     + "".join(f"%{c:02X}" for c in "测试文件.pdf".encode("gbk")).encode(),
     b"Content-Type: text/plain", "测试文件.pdf"),
    (b'Content-Type: application/pdf; name="=?utf-8?B?' + base64.b64encode("Größe.pdf".encode())
     + b'?="', b"Content-Type: text/plain", "Größe.pdf"),
    (b'Content-Type: application/pdf; name="' + "報告書.pdf".encode("cp932") + b'"',
     b"Content-Type: text/plain; charset=shift_jis", "報告書.pdf"),
]


@pytest.mark.parametrize(("part_head", "text_head", "name"), FILENAMES,
                         ids=[f[2] for f in FILENAMES])
def test_8bit_and_encoded_attachment_names_are_never_replacement_characters(
        part_head, text_head, name):
    (att,) = parse_mail(with_part(part_head, text_head=text_head)).attachments
    assert att.filename == name and att.data == b"PDF"


def test_an_iso_2022_jp_part_without_charset_in_a_multipart_is_decoded():
    body = "会議は明日です。".encode("iso2022_jp")
    parsed = parse_mail(mail(MULTI, b"--b\r\nContent-Type: text/plain\r\n\r\n" + body
                             + b"\r\n--b--\r\n"))
    assert parsed.text.strip() == "会議は明日です。"
    assert defects_have(parsed, "ISO-2022-JP")


# --- 2. broken From forms -------------------------------------------------------------------

# (From line, expected address, expected name, defect words or "" for none)
FROMS = [
    ("From: Carla <mailto:carla@client.example>", "carla@client.example", "Carla",
     "mailto"),
    ("From: Carla <carla@client.example", "carla@client.example", "Carla", "unclosed"),
    ("From: Carla <<carla@client.example>>", "carla@client.example", "Carla", "doubled"),
    ("From: Müller, Jörg <joerg@client.example>", "joerg@client.example", "Müller, Jörg",
     "comma in an unquoted name"),
    ("From: =?utf-8?q?Carla_=22CC=22_Client?= <carla@client.example>",
     "carla@client.example", 'Carla "CC" Client', ""),
    ('From: "=?utf-8?Q?M=C3=BCller?=" <m@client.example>', "m@client.example", "Müller", ""),
    ("From: Carla<carla@client.example>", "carla@client.example", "Carla", ""),
    ("From: <carla@client.example> (Carla Client)", "carla@client.example",
     "Carla Client", ""),
    ("From:carla@client.example", "carla@client.example", "", ""),
    ("From: Carla\n\t<carla@client.example>", "carla@client.example", "Carla", ""),
    ("From: Carla Client <carla@client.example>;", "carla@client.example",
     "Carla Client", "first is the sender"),
    ("From: Carla <CARLA@Client.Example.>", "carla@client.example", "Carla", "dot"),
]


@pytest.mark.parametrize(("line", "address", "name", "defect"), FROMS)
def test_more_broken_from_forms_still_give_the_sender(line, address, name, defect):
    parsed = parse_mail(mail(f"{line}\nSubject: x"))
    assert (parsed.sender.address, parsed.sender.name) == (address, name)
    assert defects_have(parsed, defect) if defect else not parsed.defects


@pytest.mark.parametrize("line", [
    "From: =?utf-8?B?Q2FybGEgPGNhcmxhQGNsaWVudC5leGFtcGxlPg==?=",   # "Carla <carla@…>"
    'From: "anna@agency.example" <<mallory@evil.example>>',
    "From: Anna, anna@agency.example <mallory@evil.example>",
])
def test_an_address_hidden_in_a_name_or_encoded_word_is_never_the_sender(line):
    parsed = parse_mail(mail(f"{line}\nSubject: x"))
    assert parsed.sender.address in (None, "mallory@evil.example") or not parsed.sender
    assert parsed.sender.address != "anna@agency.example"
    assert parsed.sender.address != "carla@client.example"


# --- 3. broken folding ----------------------------------------------------------------------

# (header block, expected subject, To, body)
FOLDING = [
    ("From: a@client.example\nSubject: =?utf-8?Q?Gr=C3=BC=C3=9Fe?=\n=?utf-8?Q?_aus_K=C3=B6ln?="
     "\nTo: s@example.com", "Grüße aus Köln", ("s@example.com",), "Hallo"),
    ("From: a@client.example\nTo: s@example.com,\nt@example.com,\nu@example.com\nSubject: s",
     "s", ("s@example.com", "t@example.com", "u@example.com"), "Hallo"),
    ("From: a@client.example\nSubject: one\n\ttwo\nTo: s@example.com", "one two",
     ("s@example.com",), "Hallo"),
    ("Subject: Rechnung\nNr. 4711 vom Mai\nFrom: a@client.example\nTo: s@example.com",
     "Rechnung Nr. 4711 vom Mai", ("s@example.com",), "Hallo"),
]


@pytest.mark.parametrize(("head", "subject", "to", "body"), FOLDING)
def test_headers_below_a_broken_fold_are_not_lost(head, subject, to, body):
    parsed = parse_mail(mail(head))
    assert (parsed.subject, parsed.to, parsed.text.strip()) == (subject, to, body)
    assert parsed.sender.address == "a@client.example"


# --- 4. attachment bytes --------------------------------------------------------------------

UU = b"begin 644 a.txt\r\n" + binascii.b2a_uu(b"hello\n").replace(b"\n", b"\r\n") \
    + b"`\r\nend\r\n"
# (part headers, part body, expected bytes)
BYTES = [
    (b"Content-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: "
     b"quoted-printable", b"%PDF=0D=0A=00bin=FF\r\nnext", b"%PDF\r\n\x00bin\xff\nnext"),
    (b"Content-Type: text/csv; name=a.csv\r\nContent-Transfer-Encoding: 8bit",
     b"a;b\r\n1;2", b"a;b\n1;2"),
    (b"Content-Type: image/png; name=a.png\r\nContent-Transfer-Encoding: Base64 ",
     b"aGVs bG8g d29y bGQ=", b"hello world"),
    (b"Content-Type: application/octet-stream; name=a.txt\r\n"
     b"Content-Transfer-Encoding: x-uuencode", UU, b"hello\n"),
    (b"Content-Type: text/plain; name=a.txt\r\nContent-Disposition: attachment\r\n"
     b"Content-Transfer-Encoding: base64", base64.encodebytes(b"one\r\ntwo\r\n"),
     b"one\r\ntwo\r\n"),                       # CRLF the sender encoded stays CRLF
    (b"Content-Type: image/png; name=a.png\r\nContent-Transfer-Encoding: base64\r\n"
     b"Content-Transfer-Encoding: base64", base64.encodebytes(b"\x89PNG" * 30),
     b"\x89PNG" * 30),
]


@pytest.mark.parametrize(("head", "body", "data"), BYTES, ids=[
    "qp pdf keeps its CR LF", "8bit csv gets LF", "base64 with spaces", "x-uuencode",
    "base64 text keeps CRLF", "two base64 headers"])
def test_attachment_bytes_are_what_the_sender_attached(head, body, data):
    (att,) = parse_mail(with_part(head, body)).attachments
    assert att.data == data


# --- 5. every part kept, sensibly named -----------------------------------------------------

# (multipart subtype, parts after the text, expected attachment names)
PARTS = [
    ("alternative", b"--b\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--b\r\n"
     b"Content-Type: text/calendar; method=REQUEST\r\n\r\nBEGIN:VCALENDAR\r\n", ["file-1.ics"]),
    ("mixed", "--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: c@d.example\r\nSubject: "
     "=?utf-8?Q?Gr=C3=BC=C3=9Fe?= aus Köln\r\n\r\ninner\r\n".encode(), ["Grüße aus Köln.eml"]),
    ("signed", b"--b\r\nContent-Type: application/pgp-signature\r\n\r\n"
     b"-----BEGIN PGP SIGNATURE-----\r\n", ["file-1.asc"]),
    ("mixed", b"--b\r\nContent-Type: image/jpeg\r\nContent-Disposition: inline\r\n"
     b"Content-Transfer-Encoding: base64\r\n\r\n/9j/\r\n--b\r\nContent-Type: image/gif\r\n\r\n"
     b"GIF89a\r\n", ["file-1.jpg", "file-2.gif"]),
    ("alternative", b"--b\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--b\r\n"
     b"Content-Type: text/html\r\n\r\n<p>Druckversion</p>\r\n", ["file-1.html"]),
    ("mixed", b"--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: c@d.example\r\n\r\nno subject"
     b"\r\n", ["file-1.eml"]),
]


@pytest.mark.parametrize(("subtype", "parts", "names"), PARTS)
def test_every_part_is_kept_with_a_sensible_name(subtype, parts, names):
    raw = mail("From: a@client.example\nSubject: x\nMIME-Version: 1.0\nContent-Type: "
               f'multipart/{subtype}; boundary="b"',
               b"--b\r\nContent-Type: text/plain\r\n\r\nText\r\n" + parts + b"--b--\r\n")
    parsed = parse_mail(raw)
    assert [a.filename for a in parsed.attachments] == names
    assert parsed.text.strip() == "Text"


# --- 6. body choice -------------------------------------------------------------------------

@pytest.mark.parametrize(("structure", "expected"), [
    (b"--b\r\nContent-Type: text/html\r\n\r\n<p>Hallo <b>Welt</b></p>\r\n--b--\r\n",
     "Hallo Welt"),
    (b"--b\r\nContent-Type: text/plain\r\n\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n"
     b"<html><body><p>Wichtig</p></body></html>\r\n--b--\r\n", "Wichtig"),
    (b"--b\r\nContent-Type: text/plain\r\n\r\nTeil eins\r\n--b\r\nContent-Type: text/plain"
     b"\r\nContent-Disposition: inline\r\n\r\nTeil zwei\r\n--b--\r\n", "Teil eins\nTeil zwei"),
])
def test_the_body_is_the_text_the_author_wrote(structure, expected):
    raw = mail("From: a@client.example\nSubject: x\nMIME-Version: 1.0\nContent-Type: "
               'multipart/mixed; boundary="b"', structure)
    assert parse_mail(raw).text.strip() == expected


# --- 7. trimming ----------------------------------------------------------------------------

NEW = "Danke, das hilft.\nDer Drucker geht wieder."
OLD = "Der Drucker druckt nicht.\nBitte um Hilfe."
QUOTE = "\n".join("> " + line for line in OLD.split("\n"))


def block(*lines: str) -> str:
    return f"{NEW}\n\n" + "\n".join(lines) + f"\n\n{OLD}"


TRIMMING = {
    "uk header block": block("Від: Олена <olena@client.example>",
                             "Надіслано: 3 листопада 2025 р. 10:02",
                             "Кому: support@example.com", "Тема: Принтер"),
    "de Apple Mail block with Datum": block("Von: Carla <carla@client.example>",
                                            "Datum: 3. November 2025 um 10:02:11 MEZ",
                                            "An: support@example.com", "Betreff: Drucker"),
    "da block with Dato": block("Fra: Carla <carla@client.example>",
                                "Dato: 3. november 2025 kl. 10.02.11 CET",
                                "Til: support@example.com", "Emne: Printer"),
    "es block with Enviado": block("De: Carla <carla@client.example>",
                                   "Enviado: lunes, 3 de noviembre de 2025 10:02",
                                   "Para: support@example.com", "Asunto: Impresora"),
    "pt-BR block": block("De: Carla <carla@client.example>",
                         "Enviado: segunda-feira, 3 de novembro de 2025 10:02",
                         "Para: support@example.com", "Assunto: Impressora"),
    "sv block with Datum": block("Från: Karin <karin@client.example>",
                                 "Datum: 3 november 2025 10:02", "Till: support@example.com",
                                 "Ämne: Skrivare"),
    "nl block with Datum": block("Van: Karel <karel@client.example>",
                                 "Datum: maandag 3 november 2025 10:02",
                                 "Aan: support@example.com", "Onderwerp: Printer"),
    "ru separator": f"{NEW}\n\n----- Исходное сообщение -----\nОт: Иван\n\n{OLD}",
    "pl Dnia attribution": f"{NEW}\n\nDnia 3 listopada 2025 o 10:02 Jan Klient "
                           f"<jan@client.example> napisał(a):\n{QUOTE}",
    "uk attribution with р.": f"{NEW}\n\nпн, 3 лист. 2025 р. о 10:02 Олена "
                              f"<olena@client.example> пише:\n{QUOTE}",
    "it wrapped ha scritto": f"{NEW}\n\nIl giorno lun 3 nov 2025 alle ore 10:02 Carla "
                             f"Cliente <carla@client.example>\nha scritto:\n\n{QUOTE}",
    "es wrapped escribió": f"{NEW}\n\nEl lun, 3 nov 2025 a las 10:02, Carla Cliente "
                           f"(<carla@client.example>)\nescribió:\n\n{QUOTE}",
    "nl wrapped before >:": f"{NEW}\n\nOp ma 3 nov. 2025 om 10:02 schreef Karel Klant "
                            f"<karel@client.example\n>:\n\n{QUOTE}",
    "no wrapped address": f"{NEW}\n\nman. 3. nov. 2025 kl. 10:02 skrev Kari Nordmann <\n"
                          f"kari@client.example>:\n\n{QUOTE}",
    "uk wrapped пише": f"{NEW}\n\nпн, 3 лист. 2025 о 10:02 Олена Клієнт "
                       f"<olena@client.example>\nпише:\n\n{QUOTE}",
}
FOOTERS = [
    "Outlook für iOS beziehen<https://aka.ms/o0ukef>", "Hent Outlook til iOS<https://aka.ms/o0ukef>",
    "Obtenir Outlook pour iOS<https://aka.ms/o0ukef>",
    "Outlook voor iOS downloaden<https://aka.ms/o0ukef>",
    "Hämta Outlook för iOS<https://aka.ms/o0ukef>", "Få Outlook for Android",
    "Получить Outlook для iOS<https://aka.ms/o0ukef>",
    "Отримати Outlook для Android<https://aka.ms/ghei36>",
    "Pobierz aplikację Outlook dla systemu iOS<https://aka.ms/o0ukef>",
    "Scarica Outlook per iOS<https://aka.ms/o0ukef>",
    "Obtener Outlook para iOS<https://aka.ms/o0ukef>",
    "Obter o Outlook para Android<https://aka.ms/ghei36>",
    "Enviado desde mi Samsung Galaxy", "Enviado do meu Android",
    "Gesendet von meinem Samsung Galaxy Smartphone.",
]


@pytest.mark.parametrize("text", list(TRIMMING.values()), ids=list(TRIMMING))
def test_only_the_new_text_is_kept(text):
    parts = split_reply(text)
    assert parts.body == NEW
    assert "Drucker druckt nicht" in parts.quoted


@pytest.mark.parametrize("footer", FOOTERS)
def test_a_localised_mobile_footer_is_the_signature(footer):
    parts = split_reply(f"{NEW}\n\n{footer}\n")
    assert (parts.body, parts.signature) == (NEW, footer)


def test_a_prose_line_about_outlook_is_not_a_footer():
    text = f"{NEW}\n\nOutlook on iOS crashes when I open the attachment, by the way."
    assert split_reply(text).body == text
