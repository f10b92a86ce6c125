"""The stories of issues 9 and 10 over the other ways in: IMAP (a private Dovecot) and the
pipe (`mailgate ingest` as a subprocess), on SQLite and PostgreSQL.

Loop detection and agent trust are one module applied to every channel: a forged agent
From stays internal and unverified, an out-of-office reply (the agent's or the
customer's) is stored and answered by nobody, our own mail and a hop loop are dropped, and
a MIME bomb is quarantined on its first attempt, whichever way the mail came in.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.harness import SUPPORT, make_mail, reply_to, wait_until

CARLA = "carla@client.example"
ANNA = "anna@agency.example"
EVE = "eve@evil.example"
ID = "mx.agency.example"


# --- a running mailgate reached by IMAP or by the pipe ----------------------------------------

class Channel:
    """One way into a running mailgate other than SMTP."""

    def __init__(self, name: str, h, dovecot=None) -> None:
        self.name, self.h, self.dovecot = name, h, dovecot

    @property
    def source(self) -> str:
        return "imap:inbox" if self.name == "imap" else "pipe"

    def deliver(self, raw: bytes, *, rcpt: str = SUPPORT, sender: str = CARLA) -> None:
        """Hand one mail in as an MTA would (IMAP: Delivered-To names the recipient, the
        envelope sender is not kept; pipe: --recipient and --sender), then wait until it
        and everything it queued is final."""
        before = len(self.h.inbound())
        if self.name == "imap":
            self.dovecot.append("support", f"Delivered-To: {rcpt}\r\n".encode() + raw)
            wait_until(lambda: len(self.h.inbound()) > before, what="the IMAP fetch")
        else:
            proc = subprocess.run(
                [sys.executable, "-m", "mailgate", "--config", str(self.h.config_path),
                 "ingest", "--recipient", rcpt, "--sender", sender, "-"],
                input=raw, capture_output=True, timeout=60)
            assert proc.returncode == 0, proc.stderr
        self.h.settle()
        assert len(self.h.inbound()) == before + 1


@pytest.fixture(params=["imap", "pipe"])
def channel_factory(request, harness_factory, db_url):
    server = request.getfixturevalue("dovecot") if request.param == "imap" else None

    def make(**overrides) -> Channel:
        if server is not None:
            overrides["imap"] = [{"name": "inbox", "host": server.host, "port": server.port,
                                  "tls": "none", "user": "support", "password": "secret-pw",
                                  "poll_seconds": 0.3, "idle": True}]
        h = harness_factory(db_url, **overrides).start()
        request.addfinalizer(h.stop)          # before Dovecot goes away
        assert h.cli("project", "add", "acme", "--name", "ACME", "--customer", CARLA).code == 0
        assert h.cli("agent", "add", ANNA, "--name", "Anna Agent").code == 0
        return Channel(request.param, h, server)
    return make


@pytest.fixture
def channel(channel_factory) -> Channel:
    return channel_factory()


def shown(h, number: int) -> dict:
    return json.loads(h.cli("ticket", "show", str(number), "--json").out)


def first_ticket(h) -> int:
    """Carla writes in over SMTP: ticket, acknowledgement, Anna's notification."""
    h.send(make_mail(sender=CARLA, subject="Drucker", body="Er druckt nicht."), mail_from=CARLA)
    h.settle()
    h.relay.wait_for(CARLA)
    h.relay.wait_for(ANNA)
    return h.tickets()[0].id


# --- [trust] agents: a forged agent From by IMAP or pipe --------------------------------------

def test_a_forged_agent_from_by_subject_tag_stays_internal_and_unverified(channel):
    h = channel.h
    number = first_ticket(h)
    channel.deliver(make_mail(sender=f"Anna Agent <{ANNA}>", subject=f"Re: [#{number}] Drucker",
                              body="/cc add eve@evil.example\nBitte zahlen Sie an IBAN XY."),
                    sender=EVE)
    assert h.inbound()[-1].source == channel.source
    data = shown(h, number)
    assert len(h.relay.to(CARLA)) == 1                           # only the acknowledgement
    assert h.relay.to(EVE) == []
    assert EVE not in [p["email"] for p in data["participants"]]
    last = data["messages"][-1]
    assert (last["direction"], "IBAN XY" in last["text"]) == ("internal", True)
    assert "unverified" in [e["kind"] for e in data["events"]]
    told = h.relay.wait_for(ANNA, 2)[-1]                          # the real Anna is told
    assert "not sent to the customer" in str(told.message["Subject"])


def test_verified_mode_a_leaked_token_needs_a_verified_from_on_every_channel(channel_factory):
    """[trust] agents = "verified": the agent's own reply address with a forged From runs
    nothing; the same with our MTA's DKIM pass is forwarded. The Authentication-Results
    header travels through IMAP and the pipe as through SMTP."""
    channel = channel_factory(mail={"trusted_authserv_id": ID}, trust={"agents": "verified"})
    h = channel.h
    number = first_ticket(h)
    note = h.relay.to(ANNA)[0]
    token = note.message["Reply-To"].addresses[0].addr_spec
    forged = reply_to(note.message, sender=ANNA, body="/cc add eve@evil.example\nHallo.")
    channel.deliver(forged, rcpt=token, sender=EVE)
    assert h.inbound()[-1].rcpt_tos == [token]
    data = shown(h, number)
    assert EVE not in [p["email"] for p in data["participants"]]
    assert len(h.relay.to(CARLA)) == 1 and h.relay.to(EVE) == []
    assert data["messages"][-1]["direction"] == "internal"
    real = reply_to(note.message, sender=ANNA, body="Hallo Carla, erledigt.")
    real = f"Authentication-Results: {ID}; dkim=pass header.d=agency.example\r\n".encode() + real
    channel.deliver(real, rcpt=token, sender=ANNA)
    assert "erledigt" in h.relay.wait_for(CARLA, 2)[1].text


# --- loop detection on every channel ------------------------------------------------------------

def test_an_agents_out_of_office_reply_reaches_no_customer(channel):
    h = channel.h
    number = first_ticket(h)
    note = h.relay.to(ANNA)[0]
    token = note.message["Reply-To"].addresses[0].addr_spec
    reply = reply_to(note.message, sender=ANNA, body="Ich bin bis Montag nicht im Büro.")
    reply = reply.replace(b"\nSubject:", b"\nAuto-Submitted: auto-replied\nSubject:", 1)
    channel.deliver(reply, rcpt=token, sender=ANNA)
    row = h.inbound()[-1]
    assert (row.source, row.rcpt_tos, row.state) == (channel.source, [token], "done")
    data = shown(h, number)
    assert [m["direction"] for m in data["messages"]] == ["in", "internal"]
    kinds = [e["kind"] for e in data["events"]]
    assert "unverified" not in kinds                 # it came by Anna's token: hers, automatic
    assert any("automatic mail from an agent" in (e.get("detail") or "")
               for e in data["events"]), data["events"]
    assert len(h.relay.to(CARLA)) == 1                           # the acknowledgement only
    assert not any("nicht im Büro" in m.text for m in h.relay.to(CARLA))


def test_a_customers_out_of_office_is_stored_and_answered_by_nobody(channel):
    h = channel.h
    # only the header says so (a subject such as "Abwesenheitsnotiz:" would too)
    channel.deliver(make_mail(sender=CARLA, subject="Ich bin nicht da",
                              body="Ich bin im Urlaub.",
                              headers={"Auto-Submitted": "auto-replied"}), sender=CARLA)
    (ticket,) = h.tickets()
    assert ticket.subject == "Ich bin nicht da"
    assert h.inbound()[-1].source == channel.source
    h.settle()
    assert h.relay.to(CARLA) == []


def test_our_own_mail_and_a_hop_loop_are_dropped(channel):
    h = channel.h
    first_ticket(h)
    (ack,) = h.relay.to(CARLA)
    channel.deliver(ack.raw, sender="")                          # e.g. a forwarding loop
    row = h.inbound()[-1]
    assert row.state == "dropped" and "loop" in row.reason, (row.state, row.reason)
    hops = "".join(f"Received: from hop{i}.example by hop{i + 1}.example; "
                   f"Mon, 23 Nov 2026 10:00:00 +0000\r\n" for i in range(100))
    channel.deliver(hops.encode() + make_mail(sender="neu@else.example", subject="Kreisel"),
                    sender="neu@else.example")
    row = h.inbound()[-1]
    assert row.state == "dropped" and "100 Received headers" in row.reason, row.reason
    assert len(h.tickets()) == 1
    assert len(h.relay.to(CARLA)) == 1 and h.relay.to("neu@else.example") == []


# --- MIME limits on every channel ---------------------------------------------------------------

def continued_boundary_bomb(parts: int) -> bytes:
    """A multipart whose boundary is an RFC 2231 continuation (what walked around the old
    pre-check)."""
    b = "mgbomb-0123456789"
    head = ("From: a@client.example\r\nTo: support@example.com\r\nSubject: Bombe\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; "
            f'boundary*0="{b[:7]}"; boundary*1={b[7:]}\r\n\r\n')
    return (head + f"--{b}\r\nContent-Type: text/plain\r\n\r\np\r\n" * parts
            + f"--{b}--\r\n").encode()


def test_a_mime_bomb_is_quarantined_on_its_first_attempt(channel_factory):
    channel = channel_factory(processing={"max_mime_parts": 50})
    h = channel.h
    channel.deliver(continued_boundary_bomb(500), sender="a@client.example")
    bomb = h.inbound()[-1]
    channel.deliver(make_mail(sender=CARLA, subject="hinter der Bombe"), sender=CARLA)
    (row,) = json.loads(h.cli("quarantine", "list", "--json").out)
    assert row["id"] == bomb.id and row["attempts"] == 1, row
    assert "max_mime_parts" in row["reason"], row["reason"]
    assert [t.subject for t in h.tickets()] == ["hinter der Bombe"]


# --- a mail the cap stops is not silent ---------------------------------------------------------

def test_an_acknowledgement_stopped_by_the_cap_shows_on_its_ticket_and_in_status(
        harness_factory, db_url):
    """tests/test_agent_mail.py shows a bounce-suppressed mail; this is the per-recipient
    cap, the other guard an outside address meets ("a dropped mail of any kind")."""
    h = harness_factory(db_url, mail={"auto_reply_limit": 2}).start()
    assert h.cli("project", "add", "acme", "--name", "ACME", "--customer", CARLA).code == 0
    for n in range(3):
        h.send(make_mail(sender=CARLA, subject=f"Anfrage {n}"), mail_from=CARLA)
        h.settle()
    assert len(h.tickets()) == 3
    assert len(h.relay.wait_for(CARLA, 2)) == 2
    third = shown(h, h.tickets()[-1].id)
    stopped = [e for e in third["events"] if e["kind"] == "mail-suppressed"]
    assert stopped and "24 hours" in stopped[0]["detail"], third["events"]
    status = h.cli("status", "--json")
    assert status.code == 1
    assert any(a.startswith("1 outgoing mail(s) stopped")
               for a in json.loads(status.out)["attention"]), status.out
    (row,) = json.loads(h.cli("outbox", "list", "--state", "dropped", "--json").out)
    assert row["rcpt"] == CARLA and row["kind"] == "ack"
    assert len(h.relay.to(CARLA)) == 2
