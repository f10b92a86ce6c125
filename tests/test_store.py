"""The store on both databases: schema creation, upgrades, refusal of newer schemas."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import select

from store import later, threads, tickets
from store.db import Database
from store.migrations import SCHEMA_VERSION, SchemaError, migrate
from store.models import Agent, Contact, Project, Ticket

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def db(db_url):
    database = Database(db_url)
    yield database
    database.dispose()


def _load_v1(db: Database) -> None:
    """Build a database exactly as mailgate 1 (schema version 1) left it, with data."""
    ddl = "\n".join(line for line in (FIXTURES / f"schema_v1.{db.dialect}.sql")
                    .read_text().splitlines() if not line.startswith("--"))
    with db.write_engine.begin() as conn:
        for statement in filter(None, (s.strip() for s in ddl.split(";"))):
            conn.execute(text(statement))
        conn.execute(text("INSERT INTO project (slug, name, key, workflow, created_at) "
                          "VALUES ('acme', 'Acme', 'acme', 'support', :now)"),
                     {"now": dt.datetime(2026, 1, 1)})
        conn.execute(text("INSERT INTO agent (email, name, role, all_projects, active, "
                          "created_at) VALUES ('anna@agency.example', 'Anna', 'agent', "
                          "TRUE, TRUE, :now)"), {"now": dt.datetime(2026, 1, 1)})
        conn.execute(text("INSERT INTO ticket (project_id, subject, status, priority, "
                          "created_at, updated_at) VALUES (1, 'Old ticket', 'open', 3, "
                          ":now, :now)"), {"now": dt.datetime(2026, 1, 1)})


def test_a_fresh_database_gets_the_current_schema_and_a_second_start_changes_nothing(db):
    assert migrate(db) == (None, SCHEMA_VERSION)
    assert migrate(db) == (SCHEMA_VERSION, SCHEMA_VERSION)
    with db.unit() as s:
        s.add(Project(slug="acme", name="Acme", key="acme"))
    with db.unit(write=False) as s:
        assert s.exec(select(Project.slug)).all() == ["acme"]


def test_a_version_1_database_is_upgraded_and_keeps_its_data(db):
    _load_v1(db)
    assert migrate(db) == (1, SCHEMA_VERSION)
    with db.unit(write=False) as s:
        (ticket,) = s.exec(select(Ticket)).all()
        (agent,) = s.exec(select(Agent)).all()
    assert (ticket.subject, ticket.status, ticket.priority) == ("Old ticket", "open", 3)
    assert (ticket.substatus, ticket.group_name, ticket.due_date, ticket.urgent) == (
        "", "", None, False)
    # v4 turned reminders on, a later step a colleague's answer (agent_replied)
    assert agent.notify == "new_ticket,customer_reply,assigned,reminder,agent_replied"
    # the upgraded schema takes the new fields
    with db.unit() as s:
        t = s.get(Ticket, ticket.id)
        t.due_date = dt.date(2026, 12, 24)
        t.urgent = True
    with db.unit(write=False) as s:
        assert s.get(Ticket, ticket.id).due_date == dt.date(2026, 12, 24)
    assert migrate(db) == (SCHEMA_VERSION, SCHEMA_VERSION)


def test_a_database_from_a_newer_mailgate_is_refused_untouched(db):
    migrate(db)
    with db.write_engine.begin() as conn:
        conn.execute(text("UPDATE schema_version SET version = :v"), {"v": SCHEMA_VERSION + 1})
    with pytest.raises(SchemaError, match="newer than this mailgate"):
        migrate(db)
    with db.write_engine.begin() as conn:
        assert conn.execute(text("SELECT version FROM schema_version")).scalar() == \
            SCHEMA_VERSION + 1


def test_tables_without_a_version_row_are_left_alone(db):
    with db.write_engine.begin() as conn:
        conn.execute(text("CREATE TABLE ticket (id INTEGER PRIMARY KEY, note TEXT)"))
    with pytest.raises(SchemaError, match="not created by mailgate"):
        migrate(db)


def test_sqlite_runs_in_wal_mode_with_synchronous_full(sqlite_url):
    database = Database(sqlite_url)
    try:
        migrate(database)
        with database.unit() as s:
            mode = s.exec(text("PRAGMA journal_mode")).one()[0]
            sync = s.exec(text("PRAGMA synchronous")).one()[0]
    finally:
        database.dispose()
    assert (mode, sync) == ("wal", 2)                      # 2 = FULL


def _sync_setting(session) -> str:
    if session.get_bind().dialect.name == "sqlite":
        return {1: "lazy", 2: "durable"}[session.exec(text("PRAGMA synchronous")).one()[0]]
    return {"off": "lazy", "on": "durable"}[
        session.exec(text("SHOW synchronous_commit")).one()[0]]


@pytest.mark.parametrize("order", [("durable", "lazy", "durable", "durable", "lazy", "lazy")])
def test_a_unit_that_may_be_done_again_commits_without_waiting_for_the_disk(db_url, order):
    """Processing units commit lazily (SQLite synchronous=NORMAL, PostgreSQL
    synchronous_commit=off); every other write unit, and every unit after a lazy one on
    the same pooled connection, waits for its log to reach the disk."""
    database = Database(db_url, pool_size=1)
    try:
        migrate(database)
        seen = []
        for kind in order:
            with database.unit(durable=kind == "durable") as s:
                seen.append(_sync_setting(s))
                s.exec(text("UPDATE schema_version SET version = version"))
        with database.unit(urgent=True) as s:
            seen.append(_sync_setting(s))
    finally:
        database.dispose()
    assert seen == [*order, "durable"]


def _message(i: int) -> dict:
    return {"ticket_id": None, "inbound_id": None, "direction": "in", "author": "stranger",
            "message_id": f"m{i}@test.example", "in_reply_to": "", "references": "",
            "from_addr": "kim@customer.example", "from_name": "Kim", "to_addrs": [],
            "cc_addrs": [], "subject": f"held {i}", "text": f"word{i}", "full_text": f"word{i}",
            "html": "", "decision": {}, "defects": [], "dedup_key": f"k{i}",
            "created_at": dt.datetime.now(dt.UTC)}


def test_messages_held_for_the_batch_statement_keep_the_ids_they_were_given(db):
    """A batch holds its messages (and their files) for one statement at the commit:
    each keeps the id it was given at once, beyond the reserved ones too, and a message
    stored afterwards the ordinary way comes after them."""
    migrate(db)
    with db.unit() as s:
        later.hold(s)
        tickets.reserve_message_ids(session=s, count=2)
        ids = [tickets.insert_message(session=s, values=_message(i)) for i in range(3)]
        tickets.insert_attachments(session=s, rows=[{
            "message_row_id": ids[0], "filename": "a.txt", "content_type": "text/plain",
            "size": 1, "sha256": "x", "content_id": "", "data": b"a"}])
        assert s.execute(text("SELECT count(*) FROM message")).scalar() == 0
    with db.unit() as s:
        after = tickets.insert_message(session=s, values=_message(3))
    with db.unit(write=False) as s:
        stored = s.execute(text("SELECT id, dedup_key FROM message ORDER BY id")).all()
        files = s.execute(text("SELECT message_row_id FROM attachment")).scalars().all()
    assert len(set(ids)) == 3 and after > max(ids)
    assert [tuple(r) for r in stored] == [(ids[0], "k0"), (ids[1], "k1"), (ids[2], "k2"),
                                          (after, "k3")]
    assert files == [ids[0]]


def test_a_ticket_opened_for_a_thread_claims_its_root_once(db):
    """Opening a ticket inserts it and claims its thread's root (one statement on
    PostgreSQL): the first ticket holds the root, a second one opened for the same root
    is told who holds it, a ticket without a root claims nothing. The people of a new
    ticket are held for the batch's statement and are there after the commit."""
    migrate(db)
    now = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    with db.unit() as s:
        s.add(Project(slug="acme", name="Acme", key="acme", workflow="support"))
        s.add(Contact(email="kim@customer.example", name="Kim"))
    values = {"project_id": 1, "subject": "Printer", "status": "new", "priority": 2,
              "requester_id": 1, "created_at": now, "updated_at": now,
              "status_changed_at": now, "group_name": "", "owner_id": None,
              "assignee_id": None}
    with db.unit() as s:
        later.hold(s)
        first, holder = threads.open_ticket(session=s, values=values, root="r1@x.example")
        assert holder == first
        tickets.add_ticket_contacts(session=s, ticket_id=first, new=True,
                                    contacts=[(1, "requester")])
        assert s.execute(text("SELECT count(*) FROM ticket_contact")).scalar() == 0
        second, holder = threads.open_ticket(session=s, values=values, root="r1@x.example")
        assert second != first and holder == first
        third, holder = threads.open_ticket(session=s, values=values, root="")
        assert holder is None
    with db.unit(write=False) as s:
        rows = s.execute(text("SELECT id, subject, substatus, offer_minutes FROM ticket "
                              "ORDER BY id")).all()
        roots = s.execute(text("SELECT root, ticket_id FROM thread_root")).all()
        people = s.execute(text("SELECT ticket_id, contact_id, role FROM ticket_contact")).all()
    assert [tuple(r) for r in rows] == [(n, "Printer", "", 0) for n in (first, second, third)]
    assert [tuple(r) for r in roots] == [("r1@x.example", first)]
    assert [tuple(r) for r in people] == [(first, 1, "requester")]


def test_changes_to_a_ticket_held_for_the_batch_are_merged_and_written_at_the_commit(db):
    """A batch's changes to its tickets are held like its inserts: two changes to one
    ticket become one row of the statement (the later value wins), nothing is written
    before the commit, and a message held in the same unit is stored after them (the
    search index reads the ticket's project as the message goes in)."""
    migrate(db)
    now = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    with db.unit() as s:
        s.add(Project(slug="acme", name="Acme", key="acme", workflow="support"))
        s.add(Project(slug="beta", name="Beta", key="beta", workflow="support"))
    values = {"project_id": 1, "subject": "Printer", "status": "new", "priority": 2,
              "requester_id": None, "created_at": now, "updated_at": now,
              "status_changed_at": now, "group_name": "", "owner_id": None,
              "assignee_id": None}
    with db.unit() as s:
        one, _ = threads.open_ticket(session=s, values=values, root="")
        two, _ = threads.open_ticket(session=s, values=values, root="")
    with db.unit() as s:
        later.hold(s)
        tickets.update_ticket(session=s, number=one, values={"status": "open",
                                                                   "priority": 3})
        tickets.update_ticket(session=s, number=two, values={"project_id": 2})
        tickets.update_ticket(session=s, number=one, values={"status": "closed"})
        tickets.insert_message(session=s, values={**_message(0), "ticket_id": two})
        assert s.execute(text("SELECT status FROM ticket WHERE id = :n"),
                         {"n": one}).scalar() == "new"
    with db.unit(write=False) as s:
        rows = s.execute(text("SELECT id, status, priority, project_id FROM ticket "
                              "ORDER BY id")).all()
        if db.dialect == "postgresql":
            indexed = s.execute(text("SELECT project_id FROM message_search")).scalar()
            assert indexed == 2
    assert [tuple(r) for r in rows] == [(one, "closed", 3, 1), (two, "new", 2, 2)]
    with db.unit() as s:            # not holding: at once
        tickets.update_ticket(session=s, number=two, values={"status": "open"})
        assert s.execute(text("SELECT status FROM ticket WHERE id = :n"),
                         {"n": two}).scalar() == "open"
