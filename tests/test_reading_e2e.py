"""End to end over real SMTP, on SQLite and PostgreSQL: replies from Outlook (German),
an iPhone (Danish) and Gmail (HTML only) store only the new text on the ticket and keep
the whole mail as full_text, shown by `ticket show --full`; a mail with a broken charset
is stored readable with a defect note that `--full` shows; a winmail.dat gives its real
attachments."""

from __future__ import annotations

import base64

from sqlmodel import select

from store.models import Attachment, Message
from tests.support.harness import SUPPORT, make_mail
from tests.test_parsing_recovery import PNG, tnef

CARLA = "carla@client.example"


def raw_mail(subject: str, body: bytes, ctype: str = "text/plain; charset=utf-8",
             extra: str = "") -> bytes:
    head = (f"From: Carla Client <{CARLA}>\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{abs(hash(body))}@client.example>\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: {ctype}\r\n{extra}\r\n")
    return head.encode("utf-8") + body


def messages(h) -> list[Message]:
    with h.app.db.unit(write=False) as s:
        return list(s.exec(select(Message).where(Message.direction == "in")
                           .order_by(Message.id)))


OUTLOOK_DE = ("Hallo Anna,\r\n\r\nder Drucker geht wieder.\r\n\r\n\r\nDanke!\r\n\r\n"
              "Von: Anna Agent <support@example.com>\r\n"
              "Gesendet: Montag, 23. November 2026 10:00\r\nAn: Carla Client <carla@client"
              ".example>\r\nBetreff: AW: [#1] Drucker\r\n\r\nWir schauen es uns an.\r\n")
IPHONE_DA = ("Tak, det virker nu.\r\n\r\nSendt fra min iPhone\r\n\r\n"
             "Den 23. nov. 2026 kl. 10.00 skrev Anna Agent <support@example.com>:\r\n\r\n"
             "> Vi kigger på det.\r\n")
GMAIL_HTML = ('<div dir="ltr">Neue Antwort aus Gmail.<div>Zweite Zeile.</div></div>'
              '<div hspace="streak-pt-mark"><img alt="" src="https://t.example/x.png">'
              '\u1427</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">'
              "Am Mo., 23. Nov. 2026 um 10:00 Uhr schrieb Anna Agent &lt;support@example.com"
              '&gt;:<br></div><blockquote class="gmail_quote">Wir schauen es uns an.'
              "</blockquote></div>")


def test_replies_from_outlook_iphone_and_gmail_store_only_the_new_text(mg):
    mg.send(make_mail(sender=CARLA, subject="Drucker", body="Der Drucker druckt nicht."))
    mg.settle()
    (ticket,) = mg.tickets()
    mg.send(raw_mail(f"AW: [#{ticket.id}] Drucker", OUTLOOK_DE.encode()), mail_from=CARLA)
    mg.send(raw_mail(f"SV: [#{ticket.id}] Drucker", IPHONE_DA.encode()), mail_from=CARLA)
    mg.send(raw_mail(f"Re: [#{ticket.id}] Drucker", GMAIL_HTML.encode(),
                     "text/html; charset=utf-8"), mail_from=CARLA)
    mg.settle()
    assert len(mg.tickets()) == 1
    _, outlook, iphone, gmail = messages(mg)
    assert {m.ticket_id for m in (outlook, iphone, gmail)} == {ticket.id}
    assert outlook.text == "Hallo Anna,\n\nder Drucker geht wieder.\n\n\nDanke!"
    assert "Gesendet: Montag" in outlook.full_text and "Wir schauen" in outlook.full_text
    assert iphone.text == "Tak, det virker nu."
    assert "Sendt fra min iPhone" in iphone.full_text and "Vi kigger" in iphone.full_text
    assert gmail.text == "Neue Antwort aus Gmail.\nZweite Zeile."
    assert "Wir schauen es uns an." in gmail.full_text
    # the agent sees only the new text; the quoted rest is one --full away, never lost
    shown = mg.cli("ticket", "show", str(ticket.id), "--wide")
    full = mg.cli("ticket", "show", str(ticket.id), "--full", "--wide")
    assert shown.code == full.code == 0, shown.err + full.err
    assert "der Drucker geht wieder." in shown.out and "Neue Antwort aus Gmail." in shown.out
    for quoted in ("Wir schauen es uns an.", "Vi kigger på det.", "Gesendet: Montag"):
        assert quoted not in shown.out and quoted in full.out, quoted
    assert "--full shows them" in shown.out


def test_a_broken_charset_is_read_with_a_defect_and_winmail_dat_is_unpacked(mg):
    # GBK bytes (traditional characters: not in GB2312) labelled GB2312, and the same
    # bytes raw in the Subject, as old Chinese mail clients send them
    text = "打印機壞了，請幫忙。"
    head = (f"From: Carla Client <{CARLA}>\r\nTo: {SUPPORT}\r\nSubject: ").encode() + \
        text.encode("gbk") + b"\r\nMessage-ID: <gbk@client.example>\r\nMIME-Version: 1.0" \
        b"\r\nContent-Type: text/plain; charset=gb2312\r\n\r\n"
    mg.send(head + text.encode("gbk") + b"\r\n", mail_from=CARLA)
    dat = tnef([("report.txt", b"hello from outlook\n"), ("chart.png", PNG)])
    multipart = (b"--b\r\nContent-Type: text/plain\r\n\r\nSiehe Anhang.\r\n--b\r\n"
                 b"Content-Type: application/ms-tnef; name=winmail.dat\r\n"
                 b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(dat)
                 + b"--b--\r\n")
    mg.send(raw_mail("Outlook", multipart, 'multipart/mixed; boundary="b"'), mail_from=CARLA)
    mg.settle()
    charset_mail, outlook = messages(mg)
    assert text in charset_mail.text and charset_mail.subject == text
    assert any("read as gb18030" in d for d in charset_mail.defects), charset_mail.defects
    assert text in [t.subject for t in mg.tickets()]
    (gbk_ticket,) = [t for t in mg.tickets() if t.subject == text]
    full = mg.cli("ticket", "show", str(gbk_ticket.id), "--full", "--wide")
    assert text in full.out and "[read with repairs: " in full.out
    assert "read as gb18030" in full.out
    with mg.app.db.unit(write=False) as s:
        rows = s.exec(select(Attachment).where(Attachment.message_row_id == outlook.id)).all()
        got = {a.filename: bytes(a.data) for a in rows}
    assert got == {"winmail.dat": dat, "report.txt": b"hello from outlook\n",
                   "chart.png": PNG}
