"""`mailgate export` and `mailgate import`: tickets as standard mbox files plus JSON, and
an import into a fresh database that reproduces tickets, messages and attachments byte
for byte (checked by sha256 and against the raw mails); an import is done once."""

from __future__ import annotations

import hashlib
import json
import mailbox
import os
from email.message import EmailMessage
from email.policy import SMTP

import pytest
from sqlmodel import select

from mailgate.mail.mbox import for_mbox, restore
from store import desk, tickets, transfer
from store.models import Message, Ticket

CARLA = "carla@client.example"
FILE = bytes(range(256)) * 40 + os.urandom(512)


@pytest.mark.parametrize("raw", [
    b"Subject: a\r\n\r\nFrom here\r\n>From there\r\nend\r\n",
    b"From the very first line\nSubject: b\n\nno newline at the end",
    b"Subject: c\n\n\n\nFrom x\n\n",
    b"",
])
def test_a_mail_goes_through_an_mbox_and_comes_back_byte_for_byte(tmp_path, raw):
    entry = for_mbox(raw)
    box = mailbox.mbox(str(tmp_path / "t.mbox"))
    key = box.add(b"From someone Thu Dec  3 17:00:00 2026\n" + entry.text)
    box.add(b"From other Thu Dec  3 17:00:00 2026\nSubject: next\n\nx\n")
    box.close()
    box = mailbox.mbox(str(tmp_path / "t.mbox"))
    text = box.get_bytes(key)
    box.close()
    assert restore(text, entry.from_lines, entry.ends_with_newline) == raw
    assert b"\nFrom " not in b"\n" + entry.text         # every From_ look-alike quoted


def _mail(subject: str, body: str, *, attach: bytes | None = None, msgid: str) -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"], msg["To"], msg["Subject"] = CARLA, "support@example.com", subject
    msg["Message-ID"] = msgid
    msg.set_content(body)
    if attach is not None:
        msg.add_attachment(attach, maintype="application", subtype="octet-stream",
                           filename="dump.bin")
    return msg.as_bytes()


def _stored(h) -> dict[int, dict]:
    """Per ticket: subject, status, and per message its raw mail and files' bytes."""
    out = {}
    with h.app.db.unit(write=False) as s:
        for t in s.exec(select(Ticket).order_by(Ticket.id)):
            msgs = tickets.ticket_messages(session=s, ticket_id=t.id)
            files = tickets.attachments_of(session=s, message_ids=[m.id for m in msgs],
                                           with_data=True)
            out[t.id] = {"subject": t.subject, "status": t.status, "messages": [
                (m.message_id, m.text, desk.raw_of_message(session=s, message=m),
                 [(a.filename, a.sha256, bytes(a.data)) for a in files[m.id]])
                for m in msgs],
                "events": [(e.kind, e.new, e.at) for e in tickets.ticket_events(
                    session=s, ticket_id=t.id)]}
    return out


def test_export_then_import_into_a_fresh_database_is_byte_for_byte(harness_factory, tmp_path,
                                                                    db_url):
    src = harness_factory(f"sqlite:///{tmp_path}/source.db").start()
    assert src.cli("project", "add", "acme", "--name", "A", "--customer", CARLA).code == 0
    src.send(_mail("Crash dump", "See the file.\nFrom here on it fails.\n>From quoted.",
                   attach=FILE, msgid="<dump-1@client.example>"), mail_from=CARLA)
    src.settle()
    src.send(_mail("[#1] Crash dump", "One more thing.", msgid="<dump-2@client.example>"),
             mail_from=CARLA)
    src.send(_mail("Other matter", "Second ticket.", msgid="<other@client.example>"),
             mail_from=CARLA)
    src.settle()
    before = _stored(src)
    assert len(before[1]["messages"]) == 2 and before[1]["messages"][0][3]

    out = tmp_path / "export"
    got = src.cli("export", "-o", str(out), "--json")
    assert got.code == 0, got.err
    assert json.loads(got.out)["tickets"] == [1, 2]
    box = mailbox.mbox(str(out / "ticket-1.mbox"))
    assert [m.get_from().split()[0] for m in box] == [CARLA, CARLA]   # From_ lines
    box.close()
    assert b"\n>From here on it fails." in (out / "ticket-1.mbox").read_bytes()
    sha = hashlib.sha256(FILE).hexdigest()
    assert (out / "attachments" / sha).read_bytes() == FILE
    data = json.loads((out / "ticket-1.json").read_text())
    assert data["messages"][0]["attachments"][0]["sha256"] == sha
    assert data["events"][0]["kind"] == "created"

    # ticket 2 on its own first: importing all after it keeps #1 and renumbers #2
    assert src.cli("export", "--ticket", "2", "-o", str(tmp_path / "two")).code == 0
    fresh = harness_factory(db_url)
    assert fresh.cli("import", str(tmp_path / "two")).code == 0
    got = fresh.cli("import", str(out))
    assert got.code == 0, got.err
    assert "imported 2 ticket(s), 3 mail(s) and 1 file(s)" in got.out
    assert "ticket #2 is now #3 (#2 was taken)" in got.out
    assert _stored(fresh) == {1: before[1], 2: before[2], 3: before[2]}
    # the same Message-ID still finds its ticket (replies thread) and its path
    assert json.loads(fresh.cli("trace", "<dump-2@client.example>", "--json").out
                      )["ticket"]["number"] == 1

    with fresh.app.db.unit() as s:     # numbers taken over: the next ticket comes after
        assert transfer.insert_ticket(session=s, number=None, values={
            "project_id": 1, "subject": "next"}) == 4
    again = fresh.cli("import", str(out))
    assert again.code == 1 and "imported already" in again.err
    assert len(_stored(fresh)) == 4

    # exported again from the new database: the same tickets, mails and files
    out2 = tmp_path / "again"
    assert fresh.cli("export", "--ticket", "1", "-o", str(out2)).code == 0
    first, second = (json.loads((d / "ticket-1.json").read_text()) for d in (out, out2))
    for doc in (first, second):
        for m in doc["messages"]:
            m["inbound"].pop("id")
        for e in doc["events"]:
            e.pop("inbound_id")
    assert second == first


def test_numbers_that_are_taken_are_renumbered_and_reported(harness_factory, tmp_path):
    h = harness_factory(f"sqlite:///{tmp_path}/one.db").start()
    assert h.cli("project", "add", "acme", "--name", "A", "--customer", CARLA).code == 0
    h.send(_mail("First", "x", msgid="<first@client.example>"), mail_from=CARLA)
    h.settle()
    assert h.cli("export", "--project", "acme", "-o", str(tmp_path / "e")).code == 0
    got = h.cli("import", str(tmp_path / "e"), "--json")     # into the same database
    assert got.code == 0, got.err
    assert json.loads(got.out)["renumbered"] == [{"exported": 1, "number": 2}]
    with h.app.db.unit(write=False) as s:
        subjects = [t.subject for t in s.exec(select(Ticket).order_by(Ticket.id))]
        kept = s.exec(select(Message).where(Message.ticket_id == 2)).one()
    assert subjects == ["First", "First"] and kept.message_id == "first@client.example"


@pytest.mark.parametrize(("args", "words"), [
    (["export", "--project", "nope", "-o", "{tmp}/x"], "unknown project 'nope'"),
    (["export", "--ticket", "7", "-o", "{tmp}/x"], "no ticket #7"),
    (["import", "{tmp}"], "no export.json"),
])
def test_a_refused_export_or_import_is_one_line_and_exit_1(harness_factory, sqlite_url,
                                                            tmp_path, args, words):
    h = harness_factory(sqlite_url)
    got = h.cli(*[a.format(tmp=tmp_path) for a in args])
    assert got.code == 1 and words in got.err and len(got.err.strip().splitlines()) == 1
