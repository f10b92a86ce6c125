"""The realistic mix the pipeline benchmark sends, and the site it is sent to.

- Every third sender of the shared corpus is a registered customer of one of three
  projects: their mail opens tickets (acknowledgement, three agents notified) or threads
  into them; the other senders are strangers and wait in the unassigned queue.
- Before the timed run, 300 tickets are opened by customers of their own (`seed_mails`).
- In the run, beside the corpus: agents answer those tickets with commands in the first
  lines (`/status waiting`, `/priority high`, `/assign …`) to their reply addresses,
  customers answer to theirs, some customers' autoresponders answer (Auto-Submitted),
  and some acknowledgements bounce (a DSN to the mail's VERP address).

Those replies need per-mail envelope recipients, which the shared load generator does
not send, so `SideSender` sends them over a few sessions of their own while it runs.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import shutil
import smtplib
import threading
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid
from pathlib import Path

from routing.tokens import make_token

SUPPORT = "support@example.com"
AGENTS = ("anna@agentur.example", "bob@agentur.example", "chris@agentur.example")
PROJECTS = ("web", "shop", "app")
SECRET = "bench-secret"
_FROM = re.compile(rb"^From:.*?<([^>\s]+@[^>\s]+)>", re.MULTILINE | re.IGNORECASE)


def corpus_senders(folder: Path) -> list[str]:
    found = set()
    for f in sorted(folder.iterdir()):
        m = _FROM.search(f.read_bytes()[:4000])
        if m:
            found.add(m.group(1).decode().lower())
    return sorted(found)


def register(app, corpus: Path) -> list[str]:
    """Projects, agents and customers; returns the seed customers' addresses."""
    from mailgate.handlers.directory import add_agent, add_contact, add_project

    seeds = [f"kunde{i}@seed-kunde.example" for i in range(300)]
    with app.db.unit() as session:
        for slug in PROJECTS:
            add_project(session, slug=slug, name=slug.title())
        for agent in AGENTS:
            add_agent(session, email=agent, name=agent.split("@")[0].title())
        for i, address in enumerate(corpus_senders(corpus)[::3] + seeds):
            add_contact(session, email=address, project_slugs=[PROJECTS[i % 3]])
    return seeds


def plain(sender: str, to: str, subject: str, body: str, headers: dict | None = None) -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg["Message-ID"] = make_msgid(domain="bench.example")
    msg["Date"] = "Thu, 03 Dec 2026 10:00:00 +0100"
    for k, v in (headers or {}).items():
        msg[k] = v
    msg.set_content(body)
    return msg.as_bytes()


def seed_mails(seeds: list[str]) -> list[tuple[str, str, bytes]]:
    return [("", SUPPORT, plain(a, SUPPORT, f"Anfrage {i}: Zertifikat läuft ab",
                                "Guten Tag,\n\ndas SSL-Zertifikat läuft nächste Woche ab.\n"))
            for i, a in enumerate(seeds)]


def token(number: int, who: str, today: dt.date) -> str:
    t = make_token(secret=SECRET.encode(), purpose="reply", ticket=number, recipient=who,
                   issued=today)
    return f"support+{t}@example.com"


COMMANDS = ("/status waiting\nBitte schicken Sie uns einen Screenshot.",
            "/priority high\n/assign bob\nBob übernimmt das.",
            "/status waiting-internal\nWir prüfen das intern.",
            "/due 2027-01-15\nWir melden uns bis Mitte Januar.",
            "Das Zertifikat ist erneuert, bitte prüfen Sie.")


def side_mails(tickets: list[tuple[int, str]], verps: list[str], today: dt.date,
               seed: int = 1) -> list[tuple[str, str, bytes]]:
    """(envelope sender, envelope recipient, raw) of the replies sent beside the corpus."""
    rng = random.Random(seed)
    out = []
    for i in range(400):
        number, customer = rng.choice(tickets)
        agent = AGENTS[i % 3]
        out.append((agent, token(number, agent, today),
                    plain(agent, SUPPORT, f"Re: [#{number}] Anfrage", rng.choice(COMMANDS))))
    for _ in range(100):
        number, customer = rng.choice(tickets)
        out.append((customer, token(number, customer, today),
                    plain(customer, SUPPORT, f"Re: [#{number}] Anfrage",
                          "Hier ist der Screenshot, danke!")))
    for _ in range(50):
        number, customer = rng.choice(tickets)
        out.append((customer, token(number, customer, today),
                    plain(customer, SUPPORT, f"Abwesenheitsnotiz: Re: [#{number}] Anfrage",
                          "Ich bin bis Montag nicht im Büro.",
                          {"Auto-Submitted": "auto-replied"})))
    for verp in verps[:50]:
        out.append(("", verp, dsn(verp)))
    rng.shuffle(out)
    return out


def dsn(verp: str) -> bytes:
    return (f"From: Mail Delivery System <MAILER-DAEMON@mx.bench.example>\r\nTo: {verp}\r\n"
            "Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
            f"Message-ID: {make_msgid(domain='mx.bench.example')}\r\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n'
            "\r\n--b\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
            "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
            "Final-Recipient: rfc822; gone@seed-kunde.example\r\nAction: failed\r\n"
            "Status: 5.1.1\r\n--b--\r\n").encode()


def big_mail(sender: str, megabytes: int = 20) -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"], msg["To"], msg["Subject"] = sender, SUPPORT, "Große Datei"
    msg["Message-ID"] = make_msgid(domain="bench.example")
    msg.set_content("Anbei die Datei.\n")
    msg.add_attachment(random.Random(7).randbytes(megabytes * 1024 * 1024 * 3 // 4),
                       maintype="application", subtype="octet-stream", filename="daten.bin")
    return msg.as_bytes()


def corpus_part(corpus: Path, out: Path, n: int) -> Path:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for f in sorted(corpus.iterdir())[:n]:
        (out / f.name).symlink_to(f)
    return out


class SideSender:
    """Sends (sender, recipient, raw) items over `sessions` SMTP sessions in threads."""

    def __init__(self, port: int, items, sessions: int = 2) -> None:
        self.port, self.items, self.errors = port, list(items), 0
        self.threads = [threading.Thread(target=self._run, args=(self.items[i::sessions],))
                        for i in range(sessions)]

    def start(self) -> SideSender:
        for t in self.threads:
            t.start()
        return self

    def join(self) -> None:
        for t in self.threads:
            t.join()

    def _run(self, items) -> None:
        with smtplib.SMTP("127.0.0.1", self.port, timeout=120) as smtp:
            for sender, rcpt, raw in items:
                try:
                    smtp.sendmail(sender, [rcpt], raw)
                except smtplib.SMTPException:
                    self.errors += 1
