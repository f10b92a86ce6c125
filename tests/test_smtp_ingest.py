"""The SMTP edge: the right reply code for each situation, and 250 only after a commit."""

from __future__ import annotations

import smtplib
import sqlite3

import pytest
from sqlalchemy import func
from sqlmodel import select

from mailgate import faults
from store.models import Inbound
from tests.support.harness import SUPPORT, make_mail


@pytest.fixture
def h(harness_factory, sqlite_url):
    return harness_factory(sqlite_url, smtp={"max_message_bytes": 200_000},
                           database={"busy_timeout_seconds": 0.3}).start()


def session(h) -> smtplib.SMTP:
    s = smtplib.SMTP("127.0.0.1", h.port, timeout=30)
    s.ehlo("client.example")
    return s


def count(h) -> int:
    with h.app.db.unit(write=False) as s:
        return s.exec(select(func.count()).select_from(Inbound)).one()


@pytest.mark.parametrize(("rcpt", "reply"), [
    ("someone@other.example", b"5.1.1"),
    ("sales@example.com", b"5.1.1"),
    ("bad address", b"5.1.3"),
], ids=["foreign-domain", "unknown-mailbox", "malformed"])
def test_unknown_recipients_are_refused_at_rcpt(h, rcpt, reply):
    with session(h) as s:
        s.mail("a@client.example")
        code, text = s.rcpt(rcpt)
    assert code in (550, 553) and reply in text


def test_mixed_recipients_keep_only_the_accepted_ones(h):
    with session(h) as s:
        refused = s.sendmail("a@client.example", [SUPPORT, "nobody@example.com"],
                             make_mail(sender="a@client.example"))
    assert set(refused) == {"nobody@example.com"}
    (row,) = h.inbound()
    assert row.rcpt_tos == [SUPPORT]


def test_announced_size_over_the_limit_is_refused_at_mail(h):
    with session(h) as s:
        code, _text = s.mail("a@client.example", ["SIZE=300000"])
    assert code == 552


def test_data_over_the_limit_is_refused_with_552_and_nothing_stored(h):
    """A client that announces no SIZE still gets 552 once the data passes the limit."""
    big = make_mail(sender="a@client.example", body="x" * 250_000)
    with session(h) as s:
        s.mail("a@client.example")
        s.rcpt(SUPPORT)
        code, _ = s.data(big)
    assert code == 552
    assert count(h) == 0


def test_outlook_length_lines_are_accepted_byte_for_byte(h):
    line = b"A" * 11_677
    raw = make_mail(sender="a@client.example").replace(b"Hi.", line)
    with session(h) as s:
        s.sendmail("a@client.example", [SUPPORT], raw)
    (row,) = h.inbound()
    with h.app.db.unit(write=False) as s:
        assert line in s.get(Inbound, row.id).raw


def test_a_line_beyond_max_line_bytes_is_refused(harness_factory, sqlite_url):
    h = harness_factory(sqlite_url, smtp={"max_line_bytes": 50_000}).start()
    raw = make_mail(sender="a@client.example").replace(b"Hi.", b"B" * 60_000)
    with session(h) as s:
        s.mail("a@client.example")
        s.rcpt(SUPPORT)
        code, _ = s.data(raw)
    assert code == 500
    assert count(h) == 0


def test_250_means_the_row_is_already_committed(h):
    raw = make_mail(sender="a@client.example", subject="committed?")
    with session(h) as s:
        s.mail("a@client.example")
        s.rcpt(SUPPORT)
        code, text = s.data(raw)
        assert code == 250
        row_id = int(text.split()[-1])
        # Read with a separate connection: only committed data is visible there.
        with sqlite3.connect(h.config.database.url.removeprefix("sqlite:///")) as db:
            stored = db.execute("SELECT raw FROM inbound WHERE id = ?", (row_id,)).fetchone()
        assert stored is not None and b"committed?" in stored[0]


def test_locked_store_answers_451_and_the_retry_is_stored_once(h):
    path = h.config.database.url.removeprefix("sqlite:///")
    blocker = sqlite3.connect(path, timeout=10, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    raw = make_mail(sender="a@client.example", subject="retry me")
    try:
        with session(h) as s, pytest.raises(smtplib.SMTPDataError) as err:
            s.sendmail("a@client.example", [SUPPORT], raw)
        assert err.value.smtp_code == 451
        assert err.value.smtp_error.startswith(b"4.3.0")
        assert b"locked" not in err.value.smtp_error        # no internals leak
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    with session(h) as s:                                    # the sender's retry
        s.sendmail("a@client.example", [SUPPORT], raw)
    assert count(h) == 1


def test_an_exception_in_the_data_path_is_451_without_a_row(h):
    faults.arm("spool.before_commit=raise-once")
    try:
        with session(h) as s, pytest.raises(smtplib.SMTPDataError) as err:
            s.sendmail("a@client.example", [SUPPORT], make_mail(sender="a@client.example"))
    finally:
        faults.arm("")
    assert err.value.smtp_code == 451
    assert b"fault" not in err.value.smtp_error.lower()
    assert count(h) == 0


def test_null_sender_is_accepted(h):
    with session(h) as s:
        s.sendmail("<>", [SUPPORT], make_mail(sender="MAILER-DAEMON@mx.example"))
    assert h.inbound()[0].mail_from == "<>"


def test_a_mail_that_looped_through_100_hops_is_refused_554(h):
    hops = "".join(f"Received: from hop{i}.example by hop{i + 1}.example; "
                   f"Mon, 23 Nov 2026 10:00:00 +0000\r\n" for i in range(100))
    raw = hops.encode() + make_mail(sender="a@client.example")
    with session(h) as s, pytest.raises(smtplib.SMTPDataError) as err:
        s.sendmail("a@client.example", [SUPPORT], raw)
    assert err.value.smtp_code == 554 and b"5.4.6" in err.value.smtp_error
    assert count(h) == 0
