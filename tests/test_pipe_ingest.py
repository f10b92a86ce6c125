"""`mailgate ingest` from an MTA pipe: the envelope sender is --sender, else the mail's
topmost Return-Path, else unknown (never the null sender by default); input that cannot
be read exits 66 (EX_NOINPUT). Run as a subprocess against a running daemon."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlmodel import select

from store.inbox import UNKNOWN_SENDER
from store.models import Inbound, Message, Outbox
from tests.support.harness import make_mail

CARLA = "carla@client.example"


@pytest.fixture
def h(harness_factory, db_url):
    h = harness_factory(db_url).start()
    assert h.cli("project", "add", "acme", "--name", "ACME", "--customer", CARLA).code == 0
    return h


def ingest(h, *args: str, mail: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mailgate", "--config", str(h.config_path),
                           "ingest", *args], input=mail, capture_output=True, timeout=60)


def piped(h, mail: bytes, *args: str) -> tuple[str, dict, list[str]]:
    """Pipe one mail in; once processed: the stored envelope sender, how the mail was
    classed (automatic or not, why), and the kinds of mail queued to Carla."""
    proc = ingest(h, *args, "-", mail=mail)
    assert proc.returncode == 0, proc.stderr
    h.settle()
    with h.app.db.unit(write=False) as s:
        mail_from = s.exec(select(Inbound.mail_from)).one()
        auto = s.exec(select(Message.decision)).one()["auto"]
        kinds = list(s.exec(select(Outbox.kind).where(Outbox.rcpt == CARLA)))
    return mail_from, auto, kinds


def carla(subject: str, return_paths: tuple[str, ...] = ()) -> bytes:
    mail = make_mail(sender=f"Carla <{CARLA}>", subject=subject)
    return b"".join(f"Return-Path: {rp}\r\n".encode() for rp in return_paths) + mail


def test_the_return_path_is_the_envelope_sender(h):
    mail_from, auto, kinds = piped(h, carla("mit Return-Path", ("<bounces+c@client.example>",
                                                                "<older@relay.example>")))
    assert mail_from == "bounces+c@client.example"           # the topmost one
    assert not auto["automatic"] and kinds == ["ack"]


def test_sender_wins_over_the_return_path(h):
    mail_from, auto, kinds = piped(h, carla("mit beidem", ("<>",)),
                                   "--sender", f"<{CARLA}>")
    assert mail_from == CARLA
    assert not auto["automatic"] and kinds == ["ack"]


def test_without_either_the_sender_is_unknown_and_a_customer_gets_an_acknowledgement(h):
    mail_from, auto, kinds = piped(h, carla("ohne Umschlag"))
    assert mail_from == UNKNOWN_SENDER                        # stored as unknown, not ""
    assert not auto["automatic"], auto["reasons"]
    assert kinds == ["ack"]
    (ack,) = h.relay.wait_for(CARLA)
    assert "ohne Umschlag" in ack.subject


@pytest.mark.parametrize("args, return_paths", [
    ((), ("<>",)),                       # a bounce as the MTA wrote it
    (("--sender", ""), ()),              # Postfix pipe(8) passes ${sender} empty
    (("--sender", "<>"), ("<x@client.example>",)),
], ids=["return-path", "empty-sender", "angle-sender"])
def test_the_null_sender_makes_the_mail_automatic(h, args, return_paths):
    mail_from, auto, kinds = piped(h, carla("Unzustellbar?", return_paths), *args)
    assert mail_from == ""
    assert auto["automatic"] and "null envelope sender" in auto["reasons"]
    assert kinds == []                                       # never answered


def test_a_missing_or_unreadable_file_exits_66(h, tmp_path):
    missing = ingest(h, str(tmp_path / "nowhere.eml"))
    assert missing.returncode == 66, missing.stderr
    assert missing.stderr.decode().count("\n") == 1
    assert "cannot read" in missing.stderr.decode() and "nowhere.eml" in missing.stderr.decode()
    folder = ingest(h, str(tmp_path))                         # a folder cannot be read
    assert folder.returncode == 66 and folder.stderr.decode().count("\n") == 1
    if os.geteuid() != 0:                                     # root reads any file
        locked = tmp_path / "locked.eml"
        locked.write_bytes(carla("gesperrt"))
        locked.chmod(0)
        assert ingest(h, str(locked)).returncode == 66
    assert h.inbound() == []
