"""The agent's desk over the real CLI and real SMTP, on SQLite and PostgreSQL: the
project log with done/undone marks and their count in `status` and `project list`;
`ticket show` as a conversation; `attachment save` and `message raw` give the exact
bytes that were sent; `ticket list` filters."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import update
from sqlmodel import select

from mailgate.cli.conversation import quoted_lines, wrap
from store.desk import status_at
from store.models import Agent, Attachment, Message, Ticket
from tests.support.harness import make_mail
from tests.test_search import CARLA, mail_with_file, run_cli

T = [dt.datetime(2026, 11, d, 9, tzinfo=dt.UTC) for d in range(1, 6)]


@pytest.mark.parametrize(("changes", "at", "expected"), [
    ([], T[2], "open"),                                     # no change: as it is now
    ([(T[1], "new", "open")], T[0], "new"),                 # before the first change
    ([(T[1], "new", "open")], T[1], "open"),                # at the change: the new one
    ([(T[1], "new", "open"), (T[3], "open", "waiting")], T[2], "open"),
    ([(T[1], "new", "open"), (T[3], "open", "waiting")], T[4], "waiting"),
])
def test_the_status_at_a_time_is_read_from_the_status_changes(changes, at, expected):
    assert status_at(changes, at, "open") == expected


def test_long_lines_wrap_between_words_and_quotes_are_counted():
    text = "a " * 30 + "unbreakable-" * 5
    lines = wrap(text, 20).splitlines()
    assert all(len(line) <= 20 for line in lines[:-1])
    assert lines[-1] == "unbreakable-" * 5                  # a long word stays whole
    assert wrap("  indented text here ok", 20).splitlines()[1].startswith("  ")
    assert wrap(text, None) == text
    assert quoted_lines("New.", "New.\n\nOn Monday:\n> old\n> older\n") == 3


def mail(h, subject: str, body: str = "Hello.") -> None:
    h.send(make_mail(sender=CARLA, subject=subject, body=body), mail_from=CARLA)


def message_ids(h) -> dict[str, int]:
    with h.app.db.unit(write=False) as s:
        return {m.subject: m.id for m in s.exec(select(Message).order_by(Message.id))}


def test_done_marks_filter_the_log_and_count_in_status(mg):
    mail(mg, "First", "The printer is out of paper.\nSecond line.")
    mail(mg, "Second", "The website is slow.")
    mg.settle()
    ids = message_ids(mg)
    first, second = ids["First"], ids["Second"]

    def log(*args: str) -> list[dict]:
        out = mg.cli("log", "acme", *args, "--json")
        assert out.code == 0, out.err
        return out and json.loads(out.out)

    mails = [r for r in log() if r["kind"] == "mail"]
    assert [(r["message"], r["text"], r["direction"], r["author"], r["done"])
            for r in mails] == [(first, "The printer is out of paper.", "in", CARLA, False),
                                (second, "The website is slow.", "in", CARLA, False)]
    assert all(r["status"] for r in mails)
    assert json.loads(mg.cli("status", "--json").out)["undone"] == {"acme": 2}

    done = run_cli(mg, "message", "done", str(first), "--as", "anna@agency.example")
    assert done.returncode == 0, done.stderr
    assert [r["message"] for r in log("--undone")] == [second]
    (marked,) = log("--done")
    assert (marked["message"], marked["done_by"]) == (first, "anna@agency.example")
    assert json.loads(mg.cli("status", "--json").out)["undone"] == {"acme": 1}
    status = run_cli(mg, "status")
    assert b"undone:       acme 1\n" in status.stdout
    (project,) = json.loads(mg.cli("project", "list", "--json").out)
    assert project["undone"] == 1
    text = run_cli(mg, "log", "acme")
    assert text.returncode == 0
    lines = text.stdout.decode().splitlines()
    assert any(line.startswith("*") and f"msg {second}" in line for line in lines)
    assert any(line.startswith(" ") and f"msg {first}" in line for line in lines)
    assert log("--kind", "note") == []

    refused = run_cli(mg, "message", "done", str(second), "999999")
    assert refused.returncode == 1 and refused.stderr.count(b"\n") == 1
    assert json.loads(mg.cli("status", "--json").out)["undone"] == {"acme": 1}
    assert mg.cli("message", "undone", str(first)).code == 0
    assert json.loads(mg.cli("status", "--json").out)["undone"] == {"acme": 2}
    assert run_cli(mg, "log", "nope").returncode == 2


def test_attachment_save_and_message_raw_give_the_sent_bytes(mg, tmp_path):
    data = bytes(range(256)) * 40 + b"\r\n.\r\n\x00end"
    raw = mail_with_file("Logs", "Here are the logs.", "server logs.bin", data)
    mg.send(raw, mail_from=CARLA)
    mg.settle()
    with mg.app.db.unit(write=False) as s:
        attachment_id = s.exec(select(Attachment.id)).one()
    msg = message_ids(mg)["Logs"]

    shown = run_cli(mg, "message", "raw", str(msg))
    assert shown.returncode == 0 and shown.stdout == raw

    work = tmp_path / "work"
    work.mkdir()
    saved = run_cli(mg, "attachment", "save", str(attachment_id), cwd=work)
    assert saved.returncode == 0, saved.stderr
    assert (work / "server logs.bin").read_bytes() == data
    again = run_cli(mg, "attachment", "save", str(attachment_id), cwd=work)
    assert again.returncode == 1 and b"--force" in again.stderr
    (work / "other.bin").write_bytes(b"keep")
    assert mg.cli("attachment", "save", str(attachment_id), "-o",
                  str(work / "other.bin")).code == 1
    assert (work / "other.bin").read_bytes() == b"keep"
    assert mg.cli("attachment", "save", str(attachment_id), "-o", str(work / "other.bin"),
                  "--force").code == 0
    assert (work / "other.bin").read_bytes() == data
    assert mg.cli("attachment", "save", "99999").code == 1
    assert mg.cli("message", "raw", "0").code == 2


def test_ticket_show_reads_as_a_conversation(mg):
    long_line = "This sentence is deliberately long so that it has to wrap " * 3
    mail(mg, "Printer", f"{long_line}\n\nOn Monday, Support wrote:\n> one\n> two\n> three\n")
    mg.settle()
    (ticket,) = mg.tickets()
    shown = run_cli(mg, "ticket", "show", str(ticket.id), COLUMNS="50")
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout.decode()
    assert "<- in · carla@client.example · " in text
    assert "[… 4 quoted lines; --full shows them]" in text
    assert "> one" not in text
    body = [line for line in text.splitlines() if "deliberately" in line or "wrap" in line]
    assert len(body) > 3 and all(len(line) <= 50 for line in body)
    assert all(not line.rstrip().endswith(("deliber", "senten")) for line in body)

    full = run_cli(mg, "ticket", "show", str(ticket.id), "--full", "--wide").stdout.decode()
    assert "> one" in full and long_line.strip() in full

    data = json.loads(mg.cli("ticket", "show", str(ticket.id), "--json").out)
    (m,) = data["messages"]
    assert {"direction", "from", "to", "subject", "text", "created_at", "attachments",
            "id", "status_at", "full_text", "done_at"} <= set(m)
    assert m["status_at"] == data["status"]


def test_ticket_list_filters_by_assignee_requester_priority_and_due(mg, monkeypatch):
    mail(mg, "One")
    mg.send(make_mail(sender="dave@client.example", subject="Two"),
            mail_from="dave@client.example")
    mg.settle()                     # a stranger's mail: the unassigned queue, no ticket
    assert mg.cli("contact", "add", "dave@client.example", "--project", "acme").code == 0
    mg.send(make_mail(sender="dave@client.example", subject="Three"),
            mail_from="dave@client.example")
    mg.settle()
    with mg.app.db.unit() as s:
        anna = s.exec(select(Agent.id).where(Agent.email == "anna@agency.example")).one()
        by_subject = {t.subject: t.id for t in s.exec(select(Ticket))}
        s.execute(update(Ticket).where(Ticket.id == by_subject["One"]).values(
            assignee_id=anna, priority=3, due_date=dt.date(2026, 12, 1)))
        s.execute(update(Ticket).where(Ticket.id == by_subject["Three"]).values(
            due_date=dt.date(2026, 11, 1)))

    def listed(*args: str) -> list[str]:
        out = mg.cli("ticket", "list", *args, "--json")
        assert out.code == 0, out.err
        return [t["subject"] for t in json.loads(out.out)]

    monkeypatch.setenv("MAILGATE_AGENT", "anna@agency.example")
    assert listed("--assignee", "me") == ["One"]
    assert listed("--assignee", "ANNA@agency.example") == ["One"]
    assert listed("--requester", "dave@client.example") == ["Three"]
    assert listed("--priority", "high") == ["One"]
    assert listed("--due-before", "2026-11-15") == ["Three"]
    assert listed("--sort", "due")[:2] == ["Three", "One"]
    assert listed("--sort", "priority")[0] == "One"
    assert mg.cli("ticket", "list", "--assignee", "nobody@x.example").code == 2
    assert mg.cli("ticket", "list", "--priority", "urgent").code == 2
