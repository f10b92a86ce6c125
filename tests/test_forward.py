"""Forward on behalf: an agent forwards a customer's mail to the support address.

Tables of the pure parts (the forwarded sender, subject, text and the agent's note in
many mail clients' forward styles and languages; whose forward counts), then end to end
over real SMTP on SQLite and PostgreSQL: inline, attached and `/from` forwards open the
customer's ticket with the agent's text as an internal note and the acknowledgement to
the customer; a stranger's forward and an unverified agent's stay ordinary mail."""

from __future__ import annotations

import json
from email.message import EmailMessage
from email.policy import SMTP

import pytest
from sqlmodel import select

from routing.actors import AgentInfo, Person, Staff
from routing.forwards import AttachedMail, Forwarded, find_forward, forward_claim
from routing.trust import Verdict
from store.models import Contact, ContactProject, Message
from tests.support.harness import SUPPORT, make_mail

ID = "mx.agency.example"
ANNA = "anna@agency.example"
DORA = "dora@newclient.example"
AUTH = f"{ID}; dkim=pass header.d=agency.example"

# (name, mail text, expected (address, name, subject, text, note) or None)
CASES = [
    ("gmail en", "Please take care of this.\n\nAnna\n\n"
     "---------- Forwarded message ---------\nFrom: Dora Doe <dora@newclient.example>\n"
     "Date: Mon, 23 Nov 2026 at 10:00\nSubject: Printer broken\nTo: Anna <anna@a.example>\n"
     "\n\nThe printer does not print.\n\nDora\n",
     ("dora@newclient.example", "Dora Doe", "Printer broken",
      "The printer does not print.\n\nDora", "Please take care of this.\n\nAnna")),
    ("gmail de", "Bitte übernehmen.\n\n---------- Weitergeleitete Nachricht ---------\n"
     "Von: Dora Doe <dora@newclient.example>\nDate: Mo., 23. Nov. 2026 um 10:00 Uhr\n"
     "Subject: Drucker\nTo: <anna@a.example>\n\n\nDer Drucker druckt nicht.\n",
     ("dora@newclient.example", "Dora Doe", "Drucker", "Der Drucker druckt nicht.",
      "Bitte übernehmen.")),
    ("gmail da", "Kan I kigge på det?\n\n---------- Videresendt meddelelse ---------\n"
     "Fra: Dora Doe <dora@newclient.example>\nDate: man. 23. nov. 2026 kl. 10.00\n"
     "Subject: Printer\nTo: <anna@a.example>\n\nPrinteren virker ikke.\n",
     ("dora@newclient.example", "Dora Doe", "Printer", "Printeren virker ikke.",
      "Kan I kigge på det?")),
    ("gmail fr", "Merci de traiter.\n\n---------- Forwarded message ---------\n"
     "De : Dora Doe <dora@newclient.example>\nDate : lun. 23 nov. 2026 à 10:00\n"
     "Subject : Imprimante\nTo : <anna@a.example>\n\nL'imprimante ne marche pas.\n",
     ("dora@newclient.example", "Dora Doe", "Imprimante", "L'imprimante ne marche pas.",
      "Merci de traiter.")),
    ("gmail es", "Por favor.\n\n---------- Mensaje reenviado ---------\n"
     "De: Dora Doe <dora@newclient.example>\nDate: lun, 23 nov 2026 a las 10:00\n"
     "Subject: Impresora\nTo: <anna@a.example>\n\nLa impresora no funciona.\n",
     ("dora@newclient.example", "Dora Doe", "Impresora", "La impresora no funciona.",
      "Por favor.")),
    ("gmail html-to-text", "FYI\n\n---------- Forwarded message ---------\n"
     "From: *Dora Doe* <dora@newclient.example>\nDate: Mon, 23 Nov 2026\n"
     "Subject: Printer\nTo: <anna@a.example>\n\nBroken.\n",
     ("dora@newclient.example", "Dora Doe", "Printer", "Broken.", "FYI")),
    ("outlook en", "See below.\n\n________________________________\n"
     "From: Dora Doe <dora@newclient.example>\nSent: Monday, November 23, 2026 10:00 AM\n"
     "To: Anna Agent <anna@a.example>\nSubject: Printer\n\nIt is broken.\n",
     ("dora@newclient.example", "Dora Doe", "Printer", "It is broken.", "See below.")),
    ("outlook de mailto", "Bitte übernehmen.\n\nVon: Dora Doe <dora@newclient.example"
     "<mailto:dora@newclient.example>>\nGesendet: Montag, 23. November 2026 10:00\n"
     "An: Anna Agent <anna@a.example>\nBetreff: Drucker\n\nGeht nicht.\n",
     ("dora@newclient.example", "Dora Doe", "Drucker", "Geht nicht.", "Bitte übernehmen.")),
    ("outlook da", "Se nedenfor.\n\nFra: Dora Doe <dora@newclient.example>\n"
     "Sendt: 23. november 2026 10:00\nTil: Anna Agent <anna@a.example>\nEmne: Printer\n\n"
     "Den virker ikke.\n",
     ("dora@newclient.example", "Dora Doe", "Printer", "Den virker ikke.", "Se nedenfor.")),
    ("outlook fr", "Pour toi.\n\nDe : Dora Doe <dora@newclient.example>\n"
     "Envoyé : lundi 23 novembre 2026 10:00\nÀ : Anna <anna@a.example>\nObjet : Imprimante\n"
     "\nElle est cassée.\n",
     ("dora@newclient.example", "Dora Doe", "Imprimante", "Elle est cassée.", "Pour toi.")),
    ("outlook es", "Mira.\n\nDe: Dora Doe <dora@newclient.example>\n"
     "Enviado el: lunes, 23 de noviembre de 2026 10:00\nPara: Anna <anna@a.example>\n"
     "Asunto: Impresora\n\nNo imprime.\n",
     ("dora@newclient.example", "Dora Doe", "Impresora", "No imprime.", "Mira.")),
    ("outlook nl", "Graag oppakken.\n\nVan: Dora Doe <dora@newclient.example>\n"
     "Verzonden: maandag 23 november 2026 10:00\nAan: Anna <anna@a.example>\n"
     "Onderwerp: Printer\n\nHij doet het niet.\n",
     ("dora@newclient.example", "Dora Doe", "Printer", "Hij doet het niet.",
      "Graag oppakken.")),
    ("outlook old mailto", "FYI\n\n-----Original Message-----\n"
     "From: Dora Doe [mailto:dora@newclient.example]\nSent: Monday, November 23, 2026\n"
     "To: Anna\nSubject: Printer\n\nBroken.\n",
     ("dora@newclient.example", "Dora Doe", "Printer", "Broken.", "FYI")),
    ("outlook bold", "FYI\n\n*From:* Dora Doe <dora@newclient.example>\n"
     "*Sent:* Monday, November 23, 2026\n*To:* Anna\n*Subject:* Printer\n\nBroken.\n",
     ("dora@newclient.example", "Dora Doe", "Printer", "Broken.", "FYI")),
    ("apple mail en", "Can you help?\n\nBegin forwarded message:\n\n"
     "From: Dora Doe <dora@newclient.example>\nSubject: Printer\n"
     "Date: 23 November 2026 at 10:00:00 CET\nTo: anna@a.example\n\nBroken.\n\n",
     ("dora@newclient.example", "Dora Doe", "Printer", "Broken.", "Can you help?")),
    ("apple mail de", "Bitte.\n\nAnfang der weitergeleiteten Nachricht:\n\n"
     "Von: Dora Doe <dora@newclient.example>\nBetreff: Drucker\n"
     "Datum: 23. November 2026 um 10:00:00 MEZ\nAn: anna@a.example\n\nKaputt.\n",
     ("dora@newclient.example", "Dora Doe", "Drucker", "Kaputt.", "Bitte.")),
    ("apple mail da", "Vil I se på det?\n\nStart på videresendt besked:\n\n"
     "Fra: Dora Doe <dora@newclient.example>\nEmne: Printer\nDato: 23. nov. 2026 10.00.00 CET"
     "\nTil: anna@a.example\n\nI stykker.\n",
     ("dora@newclient.example", "Dora Doe", "Printer", "I stykker.", "Vil I se på det?")),
    ("apple mail fr", "Merci.\n\nDébut du message réexpédié :\n\n"
     "De: Dora Doe <dora@newclient.example>\nObjet: Imprimante\nDate: 23 novembre 2026\n"
     "À: anna@a.example\n\nCassée.\n",
     ("dora@newclient.example", "Dora Doe", "Imprimante", "Cassée.", "Merci.")),
    ("thunderbird en", "FYI\n\n-------- Forwarded Message --------\nSubject: \tPrinter\n"
     "Date: \tMon, 23 Nov 2026 10:00:00 +0100\nFrom: \tDora Doe <dora@newclient.example>\n"
     "To: \tanna@a.example\n\n\n\nBroken.\n",
     ("dora@newclient.example", "Dora Doe", "Printer", "Broken.", "FYI")),
    ("thunderbird de", "Zur Info\n\n-------- Weitergeleitete Nachricht --------\n"
     "Betreff: \tDrucker\nDatum: \tMon, 23 Nov 2026 10:00:00 +0100\n"
     "Von: \tDora Doe <dora@newclient.example>\nAn: \tanna@a.example\n\nKaputt.\n",
     ("dora@newclient.example", "Dora Doe", "Drucker", "Kaputt.", "Zur Info")),
    ("thunderbird da", "Til info\n\n-------- Videresendt meddelelse --------\n"
     "Emne: \tPrinter\nDato: \tMon, 23 Nov 2026 10:00:00 +0100\n"
     "Fra: \tDora Doe <dora@newclient.example>\nTil: \tanna@a.example\n\nI stykker.\n",
     ("dora@newclient.example", "Dora Doe", "Printer", "I stykker.", "Til info")),
    ("thunderbird original message", "FYI\n\n-------- Original Message --------\n"
     "Subject: Printer\nDate: Mon, 23 Nov 2026 10:00:00 +0100\n"
     "From: dora@newclient.example\nTo: anna@a.example\n\nBroken.\n",
     ("dora@newclient.example", "", "Printer", "Broken.", "FYI")),
    ("thunderbird nl", "Ter info\n\n-------- Doorgestuurd bericht --------\n"
     "Onderwerp: \tPrinter\nDatum: \tma 23 nov 2026\nVan: \tDora Doe <dora@newclient.example>\n"
     "Aan: \tanna@a.example\n\nKapot.\n",
     ("dora@newclient.example", "Dora Doe", "Printer", "Kapot.", "Ter info")),
    ("mutt", "FYI\n\n----- Forwarded message from Dora Doe <dora@newclient.example> -----\n\n"
     "Date: Mon, 23 Nov 2026 10:00:00 +0100\nFrom: Dora Doe <dora@newclient.example>\n"
     "To: anna@a.example\nSubject: Printer\n\nBroken.\n\n----- End forwarded message -----\n",
     ("dora@newclient.example", "Dora Doe", "Printer", "Broken.", "FYI")),
    ("forward quoted with >", "FYI\n\n-------- Original Message --------\n"
     "> From: Dora Doe <dora@newclient.example>\n> Subject: Printer\n> Date: Mon\n"
     "> To: anna@a.example\n>\n> Broken.\n> Really.\n",
     ("dora@newclient.example", "Dora Doe", "Printer", "Broken.\nReally.", "FYI")),
    ("nothing above the forward", "---------- Forwarded message ---------\n"
     "From: Dora Doe <dora@newclient.example>\nDate: Mon\nSubject: Printer\nTo: x@y.example\n"
     "\nBroken.\n",
     ("dora@newclient.example", "Dora Doe", "Printer", "Broken.", "")),
    ("/from with name", "/from Dora Doe <DORA@newclient.example>\nThe printer is broken.\n"
     "Dora said so on the phone.\n",
     ("dora@newclient.example", "Dora Doe", "", "The printer is broken.\n"
      "Dora said so on the phone.", "")),
    ("/from bare, blank lines first", "\n\n/from dora@newclient.example\n\nBroken.\n",
     ("dora@newclient.example", "", "", "Broken.", "")),
    ("/from not first", "Hello\n/from dora@newclient.example\nBroken.\n", None),
    ("/from no address", "/from Dora\nBroken.\n", None),
    ("plain mail", "Hello, the printer is broken.\n\nDora\n", None),
    ("forward marker without headers", "FYI\n\n---------- Forwarded message ---------\n"
     "The printer is broken.\n", None),
    ("header block without an address", "FYI\n\nFrom: Dora Doe\nSent: Monday\nTo: Anna\n"
     "Subject: Printer\n\nBroken.\n", None),
    ("a reply attribution is no forward", "Thanks!\n\nOn Mon, 23 Nov 2026 at 10:00, Dora "
     "<dora@newclient.example> wrote:\n> Broken.\n", None),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_the_forwarded_sender_text_and_note_are_found(text, expected):
    found = find_forward(text)
    if expected is None:
        assert found is None
        return
    address, name, subject, body, note = expected
    assert found is not None
    assert (found.customer, found.subject, found.text, found.note) == (
        Person(address, name), subject, body, note)


def test_an_attached_mail_gives_the_sender_and_the_whole_outer_text_is_the_note():
    """With no inline forward, the first attached mail is the customer's."""
    found = find_forward("Please look at the attached mail.\n\nAnna", (
        AttachedMail("dora@newclient.example", "Dora Doe", "Printer", "Broken.\n"),
        AttachedMail("eve@other.example", "Eve", "Other", "x")))
    assert found == Forwarded(Person("dora@newclient.example", "Dora Doe"), "Printer",
                              "Broken.", "Please look at the attached mail.\n\nAnna",
                              "attached")
    assert find_forward("hi", (AttachedMail(None, "", "", "x"),)) is None


STAFF = Staff({ANNA: AgentInfo(ANNA, "Anna"), "bob@agency.example": AgentInfo(
    "bob@agency.example", "Bob")})
OWN = frozenset({SUPPORT})
DORA_FWD = Forwarded(Person(DORA, "Dora"), "Printer", "Broken.", "FYI", "inline")
OK = Verdict(True, "dkim=pass for agency.example")

# (sender, forward found, verdict, honoured, words in why_not)
CLAIMS = [
    (ANNA, DORA_FWD, OK, True, ""),
    ("carla@client.example", DORA_FWD, OK, False, ""),   # a customer's: nothing
    (ANNA, None, OK, False, ""),
    (ANNA, DORA_FWD, Verdict.unchecked(), False, "trusted_authserv_id"),
    (ANNA, DORA_FWD, Verdict(False, "dkim=fail"), False, "dkim=fail"),
    (ANNA, Forwarded(Person("bob@agency.example"), "", "x", "", "inline"), OK, False,
     "not a customer"),
    (ANNA, Forwarded(Person("support+r1.x.y@example.com"), "", "x", "", "inline"), OK,
     False, "not a customer"),
]


@pytest.mark.parametrize(("sender", "found", "verdict", "honoured", "words"), CLAIMS)
def test_only_a_verified_agents_forward_of_a_customers_mail_counts(sender, found, verdict,
                                                                    honoured, words):
    claim = forward_claim(found, sender=sender, staff=STAFF, own=OWN, verdict=verdict)
    assert (claim.forward is not None) is honoured
    assert words in claim.why_not if words else claim.why_not == ""


# --- end to end ---------------------------------------------------------------------------


@pytest.fixture
def fw(harness_factory, db_url):
    """A running mailgate with the acme project (Danish) whose From checks trust our MTA."""
    h = harness_factory(db_url, mail={"trusted_authserv_id": ID}).start()
    assert h.cli("project", "add", "acme", "--name", "ACME", "--language", "da").code == 0
    assert h.cli("agent", "add", ANNA, "--name", "Anna Agent").code == 0
    return h


def _send_as_anna(h, raw: bytes, *, auth: str | None = AUTH, to: str = "support+acme@example.com"):
    if auth is not None:
        raw = f"Authentication-Results: {auth}\r\n".encode() + raw
    h.send(raw, rcpt=to, mail_from=ANNA)
    h.settle()


def _attached(subject: str) -> bytes:
    inner = EmailMessage(policy=SMTP)
    inner["From"] = f"Dora Doe <{DORA}>"
    inner["To"] = ANNA
    inner["Subject"] = "Printeren"
    inner["Message-ID"] = "<orig@newclient.example>"
    inner.set_content("Printeren virker ikke.\n")
    outer = EmailMessage(policy=SMTP)
    outer["From"] = f"Anna Agent <{ANNA}>"
    outer["To"] = "support+acme@example.com"
    outer["Subject"] = subject
    outer["Message-ID"] = "<fwd-attached@agency.example>"
    outer.set_content("Kunden skriver, se vedhæftet.\n")
    outer.add_attachment(inner)
    return outer.as_bytes()


def _messages(h, number: int) -> list[Message]:
    with h.app.db.unit(write=False) as s:
        return list(s.exec(select(Message).where(Message.ticket_id == number)
                           .order_by(Message.id)))


def test_forwards_inline_attached_and_by_from_are_the_customers_tickets(fw):
    """Each way of forwarding opens a ticket whose requester is Dora: her text is the first
    customer message, Anna's text an internal note, Dora gets the (Danish) acknowledgement
    and becomes a contact of the project; Anna never does."""
    inline = ("Hej, kan I tage den?\n\nAnna\n\n---------- Forwarded message ---------\n"
              f"From: Dora Doe <{DORA}>\nDate: Mon, 23 Nov 2026 at 10:00\n"
              "Subject: Printeren\nTo: Anna Agent <anna@agency.example>\n\n"
              "Printeren virker ikke.\n")
    _send_as_anna(fw, make_mail(sender=f"Anna Agent <{ANNA}>", to="support+acme@example.com",
                                subject="Fwd: Printeren", body=inline))
    _send_as_anna(fw, _attached("Fwd: Printeren"))
    _send_as_anna(fw, make_mail(sender=f"Anna Agent <{ANNA}>", to="support+acme@example.com",
                                subject="Ringede", body=f"/from Dora Doe <{DORA}>\n"
                                "Printeren virker ikke, sagde hun i telefonen.\n"))
    tickets = fw.tickets()
    assert [t.subject for t in tickets] == ["Printeren", "Printeren", "Ringede"]
    for t, note in zip(tickets, ("Hej, kan I tage den?\n\nAnna",
                                 "Kunden skriver, se vedhæftet.", None), strict=True):
        data = json.loads(fw.cli("ticket", "show", str(t.id), "--json").out)
        assert data["requester"] == DORA
        rows = _messages(fw, t.id)
        assert (rows[0].direction, rows[0].author, rows[0].from_addr) == ("in", "customer",
                                                                            DORA)
        assert rows[0].text.startswith("Printeren virker ikke")
        if note is None:
            assert len(rows) == 1
        else:
            assert [(r.direction, r.from_addr, r.text) for r in rows[1:]] == [
                ("internal", ANNA, note)]
        assert "forwarded" in [e["kind"] for e in data["events"]]
    acks = fw.relay.wait_for(DORA, 3)
    assert all("Hej Dora Doe" in a.text and "tak for din henvendelse" in a.text
               for a in acks), acks[0].text
    with fw.app.db.unit(write=False) as s:
        linked = set(s.exec(select(Contact.email).join(
            ContactProject, ContactProject.contact_id == Contact.id)))
    assert DORA in linked and ANNA not in linked
    assert fw.relay.to(ANNA) == []        # not told of the tickets she opened herself


def test_unverified_agent_and_stranger_forwards_are_ordinary_mail(fw):
    """Without the From check passing, an agent's forward is her own mail (the ack goes to
    her, she is not made a contact); a customer's forward is simply the customer's mail."""
    body = ("FYI\n\n---------- Forwarded message ---------\n"
            f"From: Dora Doe <{DORA}>\nDate: Mon\nSubject: Printeren\nTo: x@y.example\n\n"
            "Printeren virker ikke.\n")
    _send_as_anna(fw, make_mail(sender=ANNA, to="support+acme@example.com",
                                subject="Fwd: Printeren", body=body), auth=None)
    fw.send(make_mail(sender="carla@client.example", to="support+acme@example.com",
                      subject="Fwd: Printeren", body=body), rcpt="support+acme@example.com",
            mail_from="carla@client.example")
    fw.settle()
    first, second = fw.tickets()
    assert [json.loads(fw.cli("ticket", "show", str(t.id), "--json").out)["requester"]
            for t in (first, second)] == [ANNA, "carla@client.example"]
    assert fw.relay.to(DORA) == []
    row = _messages(fw, first.id)[0]
    assert any("forward not taken" in h["detail"] and "could not be verified" in h["detail"]
               for h in row.decision["hits"])
    with fw.app.db.unit(write=False) as s:
        linked = set(s.exec(select(Contact.email).join(
            ContactProject, ContactProject.contact_id == Contact.id)))
    assert ANNA not in linked and "carla@client.example" in linked
