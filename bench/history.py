"""History for the benchmark: a database that has already handled `n` mails.

Bulk-loads, in one project of its own, `n` stored mails with their messages, tickets
(three mails each), thread references, log entries and one sent automatic mail each,
spread over the last 90 days: what a desk has after some months. Nothing in it shares a
Message-ID or a sender with the benchmark's mix, so it only adds weight.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random

from sqlalchemy import insert, text

from store.models import (
    Contact,
    ContactProject,
    Event,
    Inbound,
    Message,
    Outbox,
    Project,
    ThreadRef,
    Ticket,
)

CHUNK = 5000


def load_history(app, n: int, seed: int = 3) -> None:
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    with app.db.unit() as s:
        project = s.execute(insert(Project).values(slug="archive", name="Archive", key="archive",
                                                   workflow="support", created_at=now)
                            .returning(Project.id)).scalar_one()
        people = [f"alt{i}@history.example" for i in range(2000)]
        s.execute(insert(Contact), [{"email": p, "name": "", "created_at": now} for p in people])
        ids = dict(s.execute(Contact.__table__.select().with_only_columns(
            Contact.email, Contact.id).where(Contact.email.in_(people))).all())
        s.execute(insert(ContactProject), [{"contact_id": i, "project_id": project}
                                           for i in ids.values()])
        tickets = []
        for t in range(n // 3):
            at = now - dt.timedelta(days=rng.uniform(1, 90))
            tickets.append({"project_id": project, "subject": f"Altfall {t}", "status": "closed",
                            "priority": 2, "requester_id": ids[people[t % len(people)]],
                            "created_at": at, "updated_at": at, "closed_at": at,
                            "status_changed_at": at})
        numbers = _insert(s, Ticket, tickets, returning=Ticket.id)
    for start in range(0, n, CHUNK):
        with app.db.unit() as s:
            _mails(s, rng, now, range(start, min(n, start + CHUNK)), numbers, people)
    if app.db.dialect == "postgresql":
        # a database that grew to this size over weeks has been analysed by autovacuum;
        # measured right after a bulk load without statistics, the planner scans
        # thread_ref (100,000 rows) once per batch instead of using its index
        with app.db.unit() as s:
            for table in ("contact", "contact_project", "ticket", "inbound", "message",
                          "thread_ref", "outbox", "event", "message_search"):
                s.execute(text(f"ANALYZE {table}"))


def _mails(s, rng, now, span, numbers, people) -> None:
    inbound, messages, refs, outbox, events = [], [], [], [], []
    for i in span:
        at = now - dt.timedelta(days=rng.uniform(1, 90))
        number = numbers[i // 3 % len(numbers)]
        who = people[i % len(people)]
        raw = (f"From: {who}\r\nTo: support@example.com\r\nSubject: Altfall {i}\r\n"
               f"Message-ID: <h{i}@history.example>\r\n\r\n" + "Text der alten Mail. " * 40
               ).encode()
        inbound.append({"received_at": at, "source": "smtp", "mail_from": who,
                        "rcpt_tos": ["support@example.com"], "raw": raw, "size": len(raw),
                        "sha256": hashlib.sha256(raw).hexdigest(), "state": "done",
                        "reason": "", "attempts": 1, "processed_at": at, "ticket_id": number})
        messages.append({"ticket_id": number, "direction": "in", "author": "customer",
                         "message_id": f"h{i}@history.example", "from_addr": who,
                         "from_name": "", "to_addrs": [], "cc_addrs": [],
                         "subject": f"Altfall {i}", "text": "Text der alten Mail.",
                         "full_text": "Text der alten Mail.", "html": "", "decision": {},
                         "defects": [], "dedup_key": f"history-{i}", "created_at": at,
                         "in_reply_to": "", "references": ""})
        refs += [{"msgid": f"h{i}@history.example", "ticket_id": number, "created_at": at},
                 {"msgid": f"o{i}@example.com", "ticket_id": number, "created_at": at}]
        outbox.append({"created_at": at, "kind": "ack", "ticket_id": number,
                       "mail_from": f"support+b.h{i}@example.com", "rcpt": who,
                       "message_id": f"o{i}@example.com", "subject": f"[#{number}] Altfall",
                       "raw": b"" if at < now - dt.timedelta(days=7) else raw,
                       "automatic": True, "state": "sent", "attempts": 1,
                       "next_attempt_at": at, "sent_at": at, "last_error": "",
                       "template": "", "reason": "acknowledges the new ticket",
                       "audience": "customer"})
        events.append({"ticket_id": number, "at": at, "actor": who, "kind": "message",
                       "old": "", "new": "", "status": "closed", "detail": ""})
    inbound_ids = _insert(s, Inbound, inbound, returning=Inbound.id)
    for m, row_id in zip(messages, inbound_ids, strict=True):
        m["inbound_id"] = row_id
    for model, rows in ((Message, messages), (ThreadRef, refs), (Outbox, outbox),
                        (Event, events)):
        s.execute(insert(model), rows)


def _insert(s, model, rows, returning) -> list[int]:
    out: list[int] = []
    for start in range(0, len(rows), CHUNK):
        out += list(s.execute(insert(model).returning(returning, sort_by_parameter_order=True),
                              rows[start:start + CHUNK]).scalars())
    return out
