"""A backlog is processed in batches whose size follows the database unless configured:
32 mails per transaction on SQLite (its one write lock is shared with the accepting
side), 64 on PostgreSQL. The rows of one batch are finished in one transaction, at one
`processed_at`."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from sqlmodel import select

from mailgate.edges.spool import Arrival, store_arrivals
from store.models import Inbound
from tests.support.harness import SUPPORT, make_mail, reply_to

BACKLOG = 70


def backlog(h) -> None:
    """Mail stored the way the SMTP spool stores it, before the daemon runs."""
    store_arrivals(h.app.db, [
        Arrival(make_mail(sender=f"stranger{i}@elsewhere.example", subject=f"Frage {i}"),
                f"stranger{i}@elsewhere.example", (SUPPORT,)) for i in range(BACKLOG)])


@pytest.mark.parametrize("configured", [None, 20])
def test_a_backlog_is_processed_in_batches_of_the_databases_size(harness_factory, db_url,
                                                                   configured):
    overrides = {} if configured is None else {"processing": {"batch_size": configured}}
    h = harness_factory(db_url, **overrides)
    backlog(h)
    h.start()
    h.settle()
    with h.app.db.unit(write=False) as session:
        rows = session.exec(select(Inbound.state, Inbound.processed_at)).all()
    assert Counter(state for state, _ in rows) == {"unassigned": BACKLOG}
    batches = Counter(at for _, at in rows)
    expected = configured or (32 if db_url.startswith("sqlite") else 64)
    assert max(batches.values()) == expected
    assert sum(batches.values()) == BACKLOG



CARLA = "carla@client.example"
ANNA = "anna@agency.example"


def _first(tag: str) -> bytes:
    return make_mail(sender=CARLA, subject=f"Drucker {tag}", body="Er druckt nicht.",
                     msgid=f"<{tag}-1@client.example>")


def _answer(tag: str, copied: str) -> bytes:
    """The customer writes again in her thread and copies someone in."""
    first = f"<{tag}-1@client.example>"
    return make_mail(sender=CARLA, subject=f"Re: Drucker {tag}", body="Hier ist das Foto.",
                     msgid=f"<{tag}-2@client.example>",
                     headers={"In-Reply-To": first, "References": first, "Cc": copied})


def _follow_ups(h, tag: str, copied: str) -> list[tuple[bytes, str, str]]:
    """(mail, envelope sender, recipient): the agent answers the notification about the
    ticket with commands, then the customer writes again with someone copied in."""
    note = next(m for m in h.relay.to(ANNA) if f"Drucker {tag}" in str(m.message["Subject"]))
    token = note.message["Reply-To"].addresses[0].addr_spec
    command = reply_to(note.message, sender=ANNA,
                       body="/status waiting\n/priority 3\nBitte ein Foto.")
    return [(command, ANNA, token), (_answer(tag, copied), CARLA, SUPPORT)]


def _opened(tag: str, copied: str) -> list[tuple[bytes, str, str]]:
    """A new ticket and, before anything was sent about it, the customer again."""
    return [(_first(tag), CARLA, SUPPORT), (_answer(tag, copied), CARLA, SUPPORT)]


def _outcome(h, tag: str, copied: str) -> list[tuple]:
    """What the mails made of the thread's tickets, the copied address named alike."""
    out = []
    for t in h.tickets():
        if not t.subject.endswith(f" {tag}"):
            continue
        shown = json.loads(h.cli("ticket", "show", str(t.id), "--json").out)
        out.append((shown["status"], shown["priority"], t.closed_at is None,
                    sorted((p["email"].replace(copied, "copied"), p["role"])
                           for p in shown["participants"]),
                    [(e["kind"], e["old"], (e["new"] or "").replace(copied, "copied"))
                     for e in shown["events"]], len(shown["messages"])))
    return out


def test_changes_applied_in_one_batch_mean_what_they_mean_one_by_one(harness_factory,
                                                                     db_url):
    """Mails that change tickets, decided in one batch (a backlog: the changes to each
    ticket are merged and written together at the batch's end, a ticket opened in the
    batch changed again in it), leave the tickets exactly as the same mails sent one at a
    time over SMTP do: the agent's commands, the customer's answer that reopens the
    ticket waiting for her, the person she copies in."""
    h = harness_factory(db_url).start()
    assert h.cli("project", "add", "acme", "--name", "ACME", "--customer", CARLA).code == 0
    assert h.cli("agent", "add", ANNA, "--name", "Anna Agent").code == 0
    for tag in ("A", "B"):
        h.send(_first(tag), mail_from=CARLA)
        h.settle()
    h.relay.wait_for(ANNA, 2)
    # A and C as a backlog stored in one go (as after an outage): one batch
    before = {r.id for r in h.inbound()}
    store_arrivals(h.app.db, [Arrival(raw, sender, (rcpt,)) for raw, sender, rcpt in
                              _follow_ups(h, "A", "eva@client.example")
                              + _opened("C", "ida@client.example")])
    h.settle()
    assert len({r.processed_at for r in h.inbound() if r.id not in before}) == 1
    # B and D one at a time over SMTP
    for raw, sender, rcpt in (_follow_ups(h, "B", "finn@client.example")
                              + _opened("D", "jan@client.example")):
        h.send(raw, rcpt=rcpt, mail_from=sender)
        h.settle()
    changed = _outcome(h, "A", "eva@client.example")
    assert changed == _outcome(h, "B", "finn@client.example")
    assert _outcome(h, "C", "ida@client.example") == _outcome(h, "D", "jan@client.example")
    ((status, priority, _, people, events, _),) = changed
    assert (status, priority) == ("open", 3)
    assert [(o, n) for k, o, n in events if k == "status"] == [("new", "waiting"),
                                                               ("waiting", "open")]
    assert ("copied", "cc") in people
    ((_, _, _, people, _, messages),) = _outcome(h, "C", "ida@client.example")
    assert ("copied", "cc") in people and messages == 2
