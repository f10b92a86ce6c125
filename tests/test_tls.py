"""Inbound STARTTLS: mail over TLS, required TLS, and no STARTTLS command injection."""

from __future__ import annotations

import smtplib
import socket
import ssl
import subprocess

import pytest

from tests.support.harness import SUPPORT, make_mail

CARLA = "carla@client.example"


@pytest.fixture
def cert(tmp_path):
    key, crt = tmp_path / "key.pem", tmp_path / "cert.pem"
    done = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                           "-keyout", str(key), "-out", str(crt), "-days", "2",
                           "-subj", "/CN=localhost"], capture_output=True, text=True)
    if done.returncode != 0:
        from tests.conftest import require_service

        require_service(f"openssl cannot make a test certificate: {done.stderr[-200:]}")
    return str(crt), str(key)


@pytest.fixture
def tls_site(harness_factory, sqlite_url, cert):
    h = harness_factory(sqlite_url, smtp={"tls_cert_file": cert[0], "tls_key_file": cert[1],
                                          "require_tls": True}).start()
    assert h.cli("project", "add", "acme", "--name", "A", "--customer", CARLA).code == 0
    return h


def client_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def test_mail_over_starttls_is_accepted(tls_site):
    with smtplib.SMTP("127.0.0.1", tls_site.port, timeout=10) as smtp:
        smtp.starttls(context=client_context())
        smtp.sendmail(CARLA, [SUPPORT], make_mail(sender=CARLA, subject="verschlüsselt"))
    tls_site.settle()
    assert [t.subject for t in tls_site.tickets()] == ["verschlüsselt"]


def test_required_tls_refuses_plain_mail(tls_site):
    with smtplib.SMTP("127.0.0.1", tls_site.port, timeout=10) as smtp:
        smtp.ehlo()
        code, _ = smtp.mail(CARLA)
    assert code == 530
    assert tls_site.inbound() == []


def _read_reply(stream) -> bytes:
    lines = b""
    while True:
        line = stream.readline()
        lines += line
        if not line or line[3:4] == b" ":
            return lines


def test_commands_injected_before_the_tls_handshake_are_not_run(tls_site):
    """CVE-2011-0411 family: plaintext sent after STARTTLS must not run inside TLS."""
    raw = socket.create_connection(("127.0.0.1", tls_site.port), timeout=10)
    plain = raw.makefile("rb")
    _read_reply(plain)                                   # 220
    raw.sendall(b"EHLO x\r\n")
    _read_reply(plain)
    raw.sendall(b"STARTTLS\r\nMAIL FROM:<evil@evil.example>\r\n")
    assert _read_reply(plain).startswith(b"220")
    try:
        tls = client_context().wrap_socket(raw, server_hostname="localhost")
        stream = tls.makefile("rb")
        tls.sendall(b"EHLO x\r\n")
        first = _read_reply(stream)
        tls.sendall(b"MAIL FROM:<carla@client.example>\r\n")
        second = _read_reply(stream)
    except (OSError, ssl.SSLError):
        return                                         # the server hung up: also safe
    assert first.startswith(b"250-")                    # the answer to our EHLO, not MAIL
    assert second.startswith(b"250"), second            # not 503 "nested MAIL command"
    tls.close()
