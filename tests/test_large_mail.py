"""A large mail over SMTP: spilled to a file while it arrives, stored a piece per row,
handed to the parser a piece at a time, and still exactly the bytes that were sent."""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from email.message import EmailMessage
from email.policy import SMTP

from sqlalchemy import func
from sqlmodel import select

from store import desk, inbox, retention
from store.models import Attachment, InboundPiece, Message
from tests.support.harness import SUPPORT


def large_mail() -> tuple[bytes, bytes]:
    """~9 MB: a binary file, and a text file whose lines start with dots (so SMTP
    stuffs them, and stuffed dots fall on the reader's piece boundaries)."""
    msg = EmailMessage(policy=SMTP)
    msg["From"], msg["To"], msg["Subject"] = "carla@client.example", SUPPORT, "Große Dateien"
    msg["Message-ID"] = "<large-1@client.example>"
    msg.set_content("Anbei.\n")
    data = random.Random(3).randbytes(5_000_000)    # over store.db.PG_PIECES too
    msg.add_attachment(data, maintype="application", subtype="octet-stream",
                       filename="daten.bin")
    dots = "".join(f".{n:07d} .. a line that starts with a dot\n" for n in range(20_000))
    msg.add_attachment(dots.encode(), maintype="text", subtype="plain", filename="dots.txt",
                       cte="7bit")
    return msg.as_bytes(), data


def test_a_large_mail_is_stored_in_pieces_and_read_back_exactly(harness_factory, db_url,
                                                               tmp_path):
    h = harness_factory(db_url).start()
    assert h.cli("project", "add", "acme", "--name", "A", "--customer",
                 "carla@client.example").code == 0      # her mail opens a ticket
    raw, data = large_mail()
    assert len(raw) > 2 * 1024 * 1024
    h.send(raw, mail_from="carla@client.example")
    h.settle(timeout=60)
    (row,) = h.inbound()
    assert row.state == "done" and row.size == len(raw)
    assert row.raw == b"" and row.sha256 == hashlib.sha256(raw).hexdigest()
    with h.app.db.unit(write=False) as s:
        pieces = s.exec(select(func.count()).select_from(InboundPiece)
                        .where(InboundPiece.inbound_id == row.id)).one()
        assert pieces == -(-len(raw) // (1 << 20))
        assert inbox.raw_of(session=s, inbound_id=row.id) == raw
        message = s.exec(select(Message).where(Message.inbound_id == row.id)).one()
        assert desk.raw_of_message(session=s, message=message) == raw
        files = {a.filename: a for a in s.exec(select(Attachment).where(
            Attachment.message_row_id == message.id))}
    assert files["daten.bin"].data == data
    assert files["dots.txt"].data.startswith(b".0000000 .. a line")
    assert files["dots.txt"].data.count(b"\n.") == 19_999
    # exported and imported again (the harness shares the database: a second copy, renumbered)
    assert h.cli("export", "-o", str(tmp_path / "out")).code == 0
    got = h.cli("import", str(tmp_path / "out"))
    assert got.code == 0, got.err
    with h.app.db.unit(write=False) as s:
        original, moved = s.exec(select(Message).where(
            Message.message_id.contains("large-1@client.example")).order_by(Message.id)).all()
        assert moved.inbound_id != original.inbound_id
        assert inbox.raw_of(session=s, inbound_id=moved.inbound_id) == raw
        assert s.exec(select(func.count()).select_from(InboundPiece)
                      .where(InboundPiece.inbound_id == moved.inbound_id)).one() == pieces


def test_letting_go_of_a_large_mail_drops_its_pieces(harness_factory, sqlite_url):
    h = harness_factory(sqlite_url).start()
    raw, _ = large_mail()
    for _ in range(2):                  # the second is a duplicate: processed for good
        h.send(raw, mail_from="carla@client.example")
        h.settle(timeout=60)
    first, again = h.inbound()
    assert again.state == "duplicate"
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    with h.app.db.unit() as s:
        assert retention.prune_raw(session=s, before=later) == 1
    with h.app.db.unit(write=False) as s:
        assert inbox.raw_of(session=s, inbound_id=again.id) == b""
        assert inbox.raw_of(session=s, inbound_id=first.id) == raw
