"""Our own DKIM check (dkimpy) for sites without a trusted MTA: real signatures made with a
key generated here; the key's DNS record is served by a lookup function we pass in."""

from __future__ import annotations

import base64
import json
import subprocess

import dkim
import pytest

from mailgate.mail.dkim import dkim_verified
from tests.support.harness import make_mail, reply_to

CARLA = "carla@client.example"
ANNA = "anna@agency.example"


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dkim")
    private = folder / "key.pem"
    made = subprocess.run(["openssl", "genrsa", "-traditional", "-out", str(private), "2048"],
                          capture_output=True, text=True)
    if made.returncode != 0:
        from tests.conftest import require_service

        require_service(f"openssl cannot make an RSA key: {made.stderr[-200:]}")
    der = subprocess.run(["openssl", "rsa", "-in", str(private), "-pubout", "-outform", "DER"],
                         capture_output=True, check=True).stdout
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)
    return private.read_bytes(), record


def sign(raw: bytes, private: bytes, domain: bytes = b"agency.example") -> bytes:
    header = dkim.sign(raw, b"mg", domain, private,
                       include_headers=[b"from", b"to", b"subject", b"message-id"])
    return header + raw


def dns_for(record: bytes):
    def lookup(name, timeout=5):
        return record if name.startswith(b"mg._domainkey.") else None
    return lookup


def test_a_valid_aligned_signature_passes(key):
    private, record = key
    raw = sign(make_mail(sender=ANNA, subject="signiert"), private)
    verdict = dkim_verified(raw, "agency.example", dnsfunc=dns_for(record))
    assert verdict.ok and "d=agency.example" in verdict.reason


# (how the mail is spoiled, From domain checked, words in the reason)
FAILURES = [
    ("body changed", "agency.example", "fail"),
    ("signed by another domain", "agency.example", "not aligned"),
    ("unsigned", "agency.example", "no DKIM signature"),
    ("no key in DNS", "agency.example", "d=agency.example: fail"),
]


@pytest.mark.parametrize(("case", "domain", "words"), FAILURES)
def test_signatures_that_do_not_vouch_for_the_sender(key, case, domain, words):
    private, record = key
    raw = make_mail(sender=ANNA, subject="signiert", body="Original.")
    dnsfunc = dns_for(record)
    if case == "body changed":
        raw = sign(raw, private).replace(b"Original.", b"Gefaelscht")
    elif case == "signed by another domain":
        raw = sign(raw, private, domain=b"evil.example")
    elif case == "no key in DNS":
        raw = sign(raw, private)
        dnsfunc = dns_for(b"")
    verdict = dkim_verified(raw, domain, dnsfunc=dnsfunc)
    assert not verdict.ok and words in verdict.reason, verdict.reason


def test_commands_need_a_valid_signature_when_verify_dkim_is_on(key, harness_factory,
                                                                 sqlite_url):
    private, record = key
    # the DNS answers are injected into the ingest handler: run it in this process
    h = harness_factory(sqlite_url, mail={"verify_dkim": True},
                        processing={"in_process": True}).start()
    h.daemon.daemon.ingest.dnsfunc = dns_for(record)
    assert h.cli("project", "add", "acme", "--name", "A", "--customer", CARLA).code == 0
    assert h.cli("agent", "add", ANNA, "--name", "Anna").code == 0
    h.send(make_mail(sender=CARLA, subject="Drucker"))
    h.settle()
    note = h.relay.wait_for(ANNA)[0]
    target = note.message["Reply-To"].addresses[0].addr_spec

    h.send(reply_to(note.message, sender=ANNA, body="/priority high\nUnsigniert."),
           rcpt=target, mail_from=ANNA)
    h.settle()
    ticket = json.loads(h.cli("ticket", "show", str(h.tickets()[0].id), "--json").out)
    assert ticket["priority"] == 2 and ticket["messages"][-1]["direction"] == "internal"

    h.send(sign(reply_to(note.message, sender=ANNA, body="/priority high\nSigniert."), private),
           rcpt=target, mail_from=ANNA)
    h.settle()
    ticket = json.loads(h.cli("ticket", "show", str(h.tickets()[0].id), "--json").out)
    assert ticket["priority"] == 3
    assert "Signiert." in h.relay.wait_for(CARLA, 2)[1].text
