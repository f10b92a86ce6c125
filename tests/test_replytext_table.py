"""Reply trimming as one table: what stays in the body, what becomes the signature and
what is cut, for the attribution lines, separators, header blocks and mobile footers of
thirteen languages, and for the real reply bodies in the shared corpus. The cases are
written for this project; each one names the behaviour it proves."""

from __future__ import annotations

import pytest

from routing.replytext import split_reply
from tests.conftest import corpus_dir

NEW = "Danke, das hilft.\nDer Drucker geht wieder."
OLD = "Der Drucker druckt nicht.\nBitte um Hilfe."

# Attribution lines as the mail clients of each language write them. Each is tried with
# the history quoted by `>` and unquoted (as Gmail's text part and Outlook send it).
ATTRIBUTIONS = {
    "en-gmail": "On Mon, 3 Nov 2025 at 10:02, Carla Client <carla@client.example> wrote:",
    "en-apple": "On 3 Nov 2025, at 10:02, Carla Client <carla@client.example> wrote:",
    "en-tbird": "On 11/3/25 10:02 AM, Carla Client wrote:",
    "en-name-first": "Carla Client <carla@client.example> wrote:",
    "en-dashes": "---- On Mon, 03 Nov 2025 10:02:11 +0100 Carla Client wrote ----",
    "en-stars": "*On Mon, 3 Nov 2025 at 10:02, Carla Client wrote:*",
    "de-gmail": "Am Mo., 3. Nov. 2025 um 10:02 Uhr schrieb Carla Client <carla@client.example>:",
    "de-apple": "Am 03.11.2025 um 10:02 schrieb Carla Client <carla@client.example>:",
    "de-tbird": "Carla Client schrieb am 03.11.2025 um 10:02:",
    "da-gmail": "Den man. 3. nov. 2025 kl. 10.02 skrev Carla Client <carla@client.example>:",
    "da-apple": "Den 3. nov. 2025 kl. 10.02 skrev Carla Client <carla@client.example>:",
    "no-gmail": "man. 3. nov. 2025 kl. 10:02 skrev Kari Nordmann <kari@client.example>:",
    "sv-gmail": "Den mån 3 nov. 2025 kl 10:02 skrev Karin Kund <karin@client.example>:",
    "sv-apple": "3 nov. 2025 kl. 10:02 skrev Karin Kund <karin@client.example>:",
    "fr-gmail": "Le lun. 3 nov. 2025 à 10:02, Claire Cliente <claire@client.example> a écrit :",
    "fr-tbird": "Le 03/11/2025 à 10:02, Claire Cliente a écrit :",
    "es-gmail": "El lun, 3 nov 2025 a las 10:02, Carla Cliente (<carla@client.example>) "
                "escribió:",
    "es-apple": "El 3 nov 2025, a las 10:02, Carla Cliente <carla@client.example> escribió:",
    "it-gmail": "Il giorno lun 3 nov 2025 alle ore 10:02 Carla Cliente "
                "<carla@client.example> ha scritto:",
    "it-tbird": "Il 03/11/2025 10:02, Carla Cliente ha scritto:",
    "nl-gmail": "Op ma 3 nov. 2025 om 10:02 schreef Karel Klant <karel@client.example>:",
    "nl-apple": "Op 3 nov. 2025 om 10:02 heeft Karel Klant <karel@client.example> het "
                "volgende geschreven:",
    "pt-gmail": "Em seg., 3 de nov. de 2025 às 10:02, Carla Cliente <carla@client.example> "
                "escreveu:",
    "pt-short": "Em 03/11/2025 10:02, Carla Cliente escreveu:",
    "pl-gmail": "pon., 3 lis 2025 o 10:02 Jan Klient <jan@client.example> napisał(a):",
    "pl-tbird": "W dniu 3.11.2025 o 10:02, Jan Klient pisze:",
    "ru-gmail": "пн, 3 нояб. 2025 г. в 10:02, Иван Клиент <ivan@client.example>:",
    "ru-wrote": "3 ноября 2025 г., в 10:02, Иван Клиент <ivan@client.example> написал(а):",
    "ru-tbird": "03.11.2025 10:02, Иван Клиент пишет:",
    "uk-gmail": "пн, 3 лист. 2025 о 10:02 Олена Клієнт <olena@client.example> пише:",
    "uk-wrote": "3 листопада 2025 р. о 10:02 Олена Клієнт написав(ла):",
    "date-first": "2016-03-03 17:21 GMT+01:00 Carla Client <carla@client.example>:",
    "date-first-dots": "03.11.2025 10:02 GMT+01:00, Carla Client <carla@client.example>:",
    "fi-gmail": "ma 3. marrask. 2025 klo 10.02 Kalle Asiakas <kalle@client.example> "
                "kirjoitti:",
}
# Wrapped over two lines, as plain-text clients wrap at 72 or 78 columns.
WRAPPED = {
    "en": "On Mon, 3 Nov 2025 at 10:02, Carla Client <carla@client.example>\nwrote:",
    "de": "Am Mo., 3. Nov. 2025 um 10:02 Uhr schrieb Carla Client <\ncarla@client.example>:",
    "da": "Den man. 3. nov. 2025 kl. 10.02 skrev Carla Client <\ncarla@client.example>:",
    "fr": "Le lun. 3 nov. 2025 à 10:02, Claire Cliente <claire@client.example> a\nécrit :",
    "pt": "Em seg., 3 de nov. de 2025 às 10:02, Carla Cliente <carla@client.example>\n"
          "escreveu:",
    "ru": "3 ноября 2025 г., в 10:02, Иван Клиент <ivan@client.example>\nнаписал:",
    "pl": "pon., 3 lis 2025 o 10:02 Jan Klient <jan@client.example>\nnapisał(a):",
    "date-first": "2016-03-03 17:21 GMT+01:00 Carla Client\n<carla@client.example>:",
}
# Separators before the original or forwarded mail.
SEPARATORS = [
    "-----Original Message-----", "*-------- Original Message --------*",
    "-------- Original message --------", "-----Ursprüngliche Nachricht-----",
    "-------- Weitergeleitete Nachricht --------", "-----Oprindelig meddelelse-----",
    "-----Opprinnelig melding-----", "-----Ursprungligt meddelande-----",
    "-----Message d'origine-----", "-------- Message transféré --------",
    "-----Mensaje original-----", "---------- Mensaje reenviado ---------",
    "-----Messaggio originale-----", "---------- Messaggio inoltrato ---------",
    "-----Oorspronkelijk bericht-----", "-----Mensagem original-----",
    "-----Wiadomość oryginalna-----", "-------- Исходное сообщение --------",
    "-------- Пересланное сообщение --------", "---------- Forwarded message ---------",
    "Begin forwarded message:", "Anfang der weitergeleiteten Nachricht:",
    "________________________________",
]
# Outlook header blocks per language: From, Sent, To, Subject.
HEADER_BLOCKS = {
    "en": ("From", "Sent", "To", "Subject"),
    "en-date": ("From", "Date", "To", "Subject"),
    "de": ("Von", "Gesendet", "An", "Betreff"),
    "da": ("Fra", "Sendt", "Til", "Emne"),
    "no": ("Fra", "Sendt", "Til", "Emne"),
    "sv": ("Från", "Skickat", "Till", "Ämne"),
    "fr": ("De ", "Envoyé ", "À ", "Objet "),
    "es": ("De", "Enviado el", "Para", "Asunto"),
    "it": ("Da", "Inviato", "A", "Oggetto"),
    "it-data": ("Da", "Data", "A", "Oggetto"),
    "nl": ("Van", "Verzonden", "Aan", "Onderwerp"),
    "pt": ("De", "Enviada", "Para", "Assunto"),
    "pl": ("Od", "Wysłano", "Do", "Temat"),
    "ru": ("От", "Отправлено", "Кому", "Тема"),
    "bold": ("*From:*", "*Sent:*", "*To:*", "*Subject:*"),
}
# Mobile footers: they go to the signature, the text above them stays.
MOBILE = [
    "Sent from my iPhone", "Sent from my iPad", "Sent from my Galaxy",
    "Get Outlook for iOS<https://aka.ms/o0ukef>", "Get Outlook for Android",
    "Get Outlook for iOS <https://aka.ms/o0ukef>",
    "Sent from Outlook Mobile<https://aka.ms/blhgte>", "Sent from Mail for Windows",
    "Von meinem iPhone gesendet", "Von meinem Mobilgerät gesendet",
    "Gesendet von meinem iPad", "Sendt fra min iPhone", "Sendt fra min Samsung Galaxy",
    "Skickat från min iPhone", "Envoyé depuis mon iPhone", "Envoyé de mon iPad",
    "Enviado desde mi iPhone", "Enviado do meu iPhone", "Inviato da iPhone",
    "Inviato dal mio smartphone Samsung", "Verzonden vanaf mijn iPhone",
    "Verstuurd vanaf mijn iPad", "Wysłane z mojego iPhone'a", "Отправлено с iPhone",
    "Надіслано з iPhone",
]


def _case(text: str, body: str, signature: str = "", quoted: str = ""):
    return text, body, signature, quoted


CASES: dict[str, tuple[str, str, str, str]] = {}
QUOTE = "\n".join("> " + line for line in OLD.split("\n"))
for key, attribution in ATTRIBUTIONS.items():
    CASES[f"attribution-quoted-{key}"] = _case(f"{NEW}\n\n{attribution}\n{QUOTE}\n", NEW)
    CASES[f"attribution-unquoted-{key}"] = _case(
        f"{NEW}\n\n{attribution}\n\n{OLD}\n", NEW, quoted=attribution.split("\n")[0])
for key, attribution in WRAPPED.items():
    CASES[f"wrapped-{key}"] = _case(f"{NEW}\n\n{attribution}\n\n{QUOTE}\n", NEW)
    CASES[f"wrapped-unquoted-{key}"] = _case(f"{NEW}\n\n{attribution}\n\n{OLD}\n", NEW)
for separator in SEPARATORS:
    CASES[f"separator {separator}"] = _case(
        f"{NEW}\n\n{separator}\nFrom: Carla <carla@client.example>\n\n{OLD}", NEW,
        quoted=separator)
for key, (frm, sent, to, subject) in HEADER_BLOCKS.items():
    block = "\n".join(f"{name}{'' if name.endswith(':*') else ':'} {value}" for name, value in
                      ((frm, "Carla Client <carla@client.example>"),
                       (sent, "3.11.2025 10:02"), (to, "support@example.com"),
                       (subject, "Drucker")))
    CASES[f"header-block-{key}"] = _case(f"{NEW}\n\n{block}\n\n{OLD}", NEW,
                                         quoted=block.split("\n")[0])
for footer in MOBILE:
    CASES[f"mobile {footer}"] = _case(f"{NEW}\n\n{footer}\n", NEW, signature=footer)
    CASES[f"mobile-then-quote {footer}"] = _case(
        f"{NEW}\n\n{footer}\n\n{ATTRIBUTIONS['da-apple']}\n\n{QUOTE}\n", NEW,
        signature=footer)

CASES.update({
    "blank-line runs inside the new text are kept as written": _case(
        "Erster Absatz.\n\n\n\nZweiter Absatz.\n\n> alt", "Erster Absatz.\n\n\n\nZweiter Absatz."),
    "the Gmail tracking marker goes": _case("Thanks!\n\u1427\n", "Thanks!"),
    "the Gmail tracking marker inside a line goes": _case("Thanks!\u1427", "Thanks!"),
    "a mail that is only a quote keeps its content": _case(
        "> Der Drucker druckt nicht.\n> Bitte um Hilfe.", "> Der Drucker druckt nicht.\n"
        "> Bitte um Hilfe."),
    "a mail that is only an attributed quote keeps its content": _case(
        f"{ATTRIBUTIONS['en-gmail']}\n{QUOTE}", f"{ATTRIBUTIONS['en-gmail']}\n{QUOTE}"),
    "a mail that is only a forward keeps its content": _case(
        "---------- Forwarded message ---------\nFrom: Carla <carla@client.example>\n"
        "Subject: Drucker\n\nDer Drucker druckt nicht.",
        "---------- Forwarded message ---------\nFrom: Carla <carla@client.example>\n"
        "Subject: Drucker\n\nDer Drucker druckt nicht."),
    "a German forward-only mail keeps its content": _case(
        "-------- Weitergeleitete Nachricht --------\nBetreff: Drucker\nVon: Carla\n\nalt",
        "-------- Weitergeleitete Nachricht --------\nBetreff: Drucker\nVon: Carla\n\nalt"),
    "text written below a quote is kept": _case(
        f"{ATTRIBUTIONS['en-tbird']}\n> Does it print?\n\nYes, it prints again.",
        "Yes, it prints again."),
    "interleaved answers are kept": _case(
        f"{ATTRIBUTIONS['de-apple']}\n> Frage eins?\nAntwort eins.\n\n> Frage zwei?\n"
        "Antwort zwei.", "Antwort eins.\n\nAntwort zwei."),
    "a -- signature before the quote goes to the signature": _case(
        f"{NEW}\n-- \nCarla Client\nACME\n\n{ATTRIBUTIONS['en-gmail']}\n{QUOTE}", NEW,
        signature="--\nCarla Client\nACME"),
    "a mobile footer in the middle of the text is not a signature": _case(
        "Sent from my iPhone, so short.\nMore tomorrow.",
        "Sent from my iPhone, so short.\nMore tomorrow."),
    "prose with a colon and an address is not an attribution": _case(
        "Please write to me at carla@client.example:\nthanks.",
        "Please write to me at carla@client.example:\nthanks."),
    "a greeting above a name-first attribution stays": _case(
        "Hi,\nok.\n\nCarla wrote:\n> old", "Hi,\nok."),
    "a From line without a header block is text": _case(
        "From: the office\nwe moved.", "From: the office\nwe moved."),
    "an Italian block with Data instead of Inviato": _case(
        f"{NEW}\n\nDa: Carla <carla@client.example>\nData: 3 nov 2025\nA: support\n"
        "Oggetto: R: Stampante\n\nvecchio", NEW),
    "a French block with spaces before the colons": _case(
        f"{NEW}\n\nDe : Claire <claire@client.example>\nEnvoyé : lundi 3 novembre\n"
        "À : support\nObjet : RE: Imprimante\n\nancien", NEW),
    "a forwarded header block that starts with the subject (Thunderbird)": _case(
        f"{NEW}\n\nObjet: Imprimante\nDate: 2025-11-03 10:02\nDe: Claire "
        "<claire@client.example>\nÀ: support@example.com\n\nBonjour", NEW),
    "two header-like lines without a From are text": _case(
        "Date: Montag\nTo: alle\nbitte kommen.", "Date: Montag\nTo: alle\nbitte kommen."),
    "underscores before a German block": _case(
        f"{NEW}\n\n________________________________\nVon: Carla\nGesendet: Montag\n\nalt",
        NEW),
})


@pytest.mark.parametrize(("text", "body", "signature", "quoted"), list(CASES.values()),
                         ids=list(CASES))
def test_split_reply_table(text, body, signature, quoted):
    parts = split_reply(text)
    assert parts.body == body
    if signature:
        assert parts.signature == signature
    if quoted:
        assert parts.quoted.startswith(quoted), parts.quoted
    # nothing the author sent is lost: every line is in exactly one of the three parts
    for line in text.replace("\u1427", "").split("\n"):
        if line.strip():
            assert line.rstrip() in "\n".join((parts.body, parts.signature, parts.quoted)), line


# Real reply bodies from the shared corpus: (file, first body line, end of the body,
# last signature line, start of the cut part).
CORPUS = [
    ("github/correct_sig.txt", "this is an email with a correct -- signa", "signature.",
     "rick", ""),
    ("github/email_1_1.txt", "Hi folks", "-Abhishek Kona", "", "_____"),
    ("github/email_1_2.txt", "Hi,", "delete them all individually.\"", "",
     "On Tue, 2011-03-01 at 18:02 +0530, Abhishek Kona wrote:"),
    ("github/email_1_3.txt", "Oh thanks.", "-Abhishek Kona", "", "On 01/03/11"),
    ("github/email_1_4.txt", "Awesome! I haven't", "another problem with it.", "", ""),
    ("github/email_1_5.txt", "One: Here's what I've got.", "for a while.", "", ""),
    ("github/email_1_7.txt", ":+1:", ":+1:", "", ""),
    ("github/email_1_8.txt", "I will reply under this one", "and under this.",
     "Hey there, this is my signature", ""),
    ("github/email_2_1.txt", "Outlook with a reply", "Outlook with a reply", "",
     "*From:* Google Apps Sync Team"),
    ("github/email_2_2.txt", "Outlook with a reply directly above line", "above line", "",
     "_____"),
    ("github/email_2_3.txt", "Outlook with a reply directly above line", "above line", "",
     "From: CRM Comments"),
    ("github/email_BlackBerry.txt", "Here is another email", "Here is another email",
     "Sent from my BlackBerry", ""),
    ("github/email_bullets.txt", "test 2 this should list second", "   - and another",
     "*Joe Smith | Director, Product Management*", ""),
    ("github/email_iPhone.txt", "Here is another email", "Here is another email",
     "Sent from my iPhone", ""),
    ("github/email_long_quote.txt", "Hi folks", "-Abhishek Kona", "", ""),
    ("github/email_multi_word_sent_from_my_mobile_device.txt", "Here is another email",
     "Here is another email", "Sent from my Verizon Wireless BlackBerry", ""),
    ("github/email_one_is_not_on.txt", "Thank, this is really helpful.",
     "when I run...", "", ""),
    ("github/email_sent_from_my_not_signature.txt", "Here is another email",
     "easier then my mobile phone.", "", ""),
    ("github/email_sig_delimiter_in_middle_of_line.txt", "Hi there!", "kthxbai", "", ""),
    ("github/greedy_on.txt", "On your remote host you can run:",
     "the tunnel is not working.", "", ""),
    ("github/pathological.txt", "I think you're onto something.", "back to a computer.",
     "", ""),
    ("zapier/email_2_3.txt", "Outlook with a reply above headers using unusual format",
     "unusual format", "", "*From:* Kim via Site"),
    ("zapier/email_gmail.txt", "This is a test for inbox replying to a github message.",
     "github message.", "", "On Wed, May 18, 2016 at 11:10 PM"),
    ("zapier/email_headers_no_delimiter.txt", "And another reply!", "And another reply!",
     "", "From: Dan Watson"),
    ("zapier/email_partial_quote_header.txt", "On your remote host you can run:",
     "the tunnel is not working.", "", ""),
]


@pytest.mark.parametrize(("name", "first", "last", "signature", "quoted"), CORPUS,
                         ids=[c[0] for c in CORPUS])
def test_corpus_reply_bodies(name, first, last, signature, quoted):
    text = (corpus_dir() / "reply-bodies" / name).read_bytes().decode("utf-8", "replace")
    parts = split_reply(text)
    assert parts.body.startswith(first) and parts.body.endswith(last), parts.body
    if signature:
        assert parts.signature.endswith(signature), parts.signature
    if quoted:
        assert parts.quoted.startswith(quoted), parts.quoted


def test_the_table_is_large_enough():
    assert len(CASES) + len(CORPUS) >= 150
