"""Schema creation and upgrades, run automatically at start.

A new database gets the current schema in one go and is stamped with `SCHEMA_VERSION`.
An older database is brought forward by the numbered steps in `STEPS`, each in its own
transaction, never by dropping anything. Several instances starting together on
PostgreSQL serialise on an advisory lock; on SQLite the write lock does the same.
A database written by a newer mailgate is refused rather than guessed at.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, inspect, text
from sqlmodel import SQLModel

from store import models  # (importing it registers the tables)
from store.db import Database, classify_error
from store.desk import create_desk_index
from store.search import create_search_keys
from store.search_index import add_search_keys, create_search_index
from store.trace import create_trace_index

_LOCK_ID = 0x6D61696C67617465  # "mailgate"


class SchemaError(Exception):
    pass


@dataclass(frozen=True)
class Step:
    version: int
    description: str
    apply: Callable[[Connection], None]


def _add_columns(table: str, columns: list[tuple[str, str]]) -> Callable[[Connection], None]:
    """A step adding columns of `table` as the models define them: (name, SQL default)."""

    def apply(conn: Connection) -> None:
        have = {c["name"] for c in inspect(conn).get_columns(table)}
        model = SQLModel.metadata.tables[table]
        for name, default in columns:
            if name in have:
                continue
            sqltype = model.c[name].type.compile(dialect=conn.dialect)
            tail = "" if default == "NULL" else f" NOT NULL DEFAULT {default}"
            conn.execute(text(f'ALTER TABLE {table} ADD COLUMN "{name}" {sqltype}{tail}'))

    return apply


# Version 1 is the first released schema. Append steps; never edit or reorder them.
def _v2(conn: Connection) -> None:
    _add_columns("ticket", [("substatus", "''"), ("group_name", "''"), ("ticket_type", "''"),
                            ("due_date", "NULL"), ("urgent", "FALSE"),
                            ("status_changed_at", "NULL")])(conn)
    _add_columns("agent", [("notify", "'new_ticket,customer_reply,assigned'")])(conn)


def _v3(conn: Connection) -> None:
    SQLModel.metadata.tables["suppression"].create(conn, checkfirst=True)


def _v4(conn: Connection) -> None:
    # reminders are a new notification; agents get them until they turn them off
    conn.execute(text("UPDATE agent SET notify = CASE WHEN notify = '' THEN 'reminder' "
                      "ELSE notify || ',reminder' END WHERE notify NOT LIKE '%reminder%'"))


def _v5(conn: Connection) -> None:
    _add_columns("outbox", [("template", "''"), ("payload", "NULL"), ("reason", "''"),
                            ("audience", "''")])(conn)
    outbox = SQLModel.metadata.tables["outbox"]
    have = {i["name"] for i in inspect(conn).get_indexes("outbox")}
    for index in outbox.indexes:
        if index.name not in have:
            index.create(conn)
    # status events kept "open (Open)"; keep the value, the label is the workflow's to give
    rows = conn.execute(text("SELECT id, old, new FROM event WHERE kind = 'status'")).all()
    for row_id, old, new in rows:
        conn.execute(text("UPDATE event SET old = :o, new = :n WHERE id = :i"),
                     {"o": _value_of(old), "n": _value_of(new), "i": row_id})


def _value_of(shown: str) -> str:
    value, sep, label = (shown or "").partition(" (")
    return value if sep and label.endswith(")") else shown


STEPS: list[Step] = [
    Step(2, "ticket sub-status, group, type, due date, urgent; agent notification choices",
         _v2),
    Step(3, "suppression list (hard bounces)", _v3),
    Step(4, "reminder notifications on for existing agents", _v4),
    Step(5, "outbox keeps the decided mail and why; indexes for per-mail lookups; "
            "status events keep values, not labels", _v5),
]


def _owner_and_quota(conn: Connection) -> None:
    _add_columns("ticket", [("owner_id", "NULL"), ("offer_state", "''"),
                            ("offer_minutes", "0")])(conn)
    for table in ("quota_entry", "time_booking"):
        SQLModel.metadata.tables[table].create(conn, checkfirst=True)


# appended, not numbered by hand: other steps may land in the list above at the same time
STEPS.append(Step(len(STEPS) + 2, "ticket owner and offer; project contingents and booked "
                                  "time", _owner_and_quota))


def _project_language_and_fields(conn: Connection) -> None:
    # existing projects keep getting English mail until someone sets their language
    _add_columns("project", [("language", "'en'"), ("domain", "''"), ("contact_person", "''"),
                             ("invitation_url", "''"), ("signature", "''")])(conn)


STEPS.append(Step(len(STEPS) + 2, "project language, domain, contact person, invitation "
                                  "link and signature", _project_language_and_fields))


def _search_and_done_marks(conn: Connection) -> None:
    _add_columns("message", [("done_at", "NULL"), ("done_by", "''")])(conn)
    create_search_index(conn, backfill=True)
    create_desk_index(conn)


STEPS.append(Step(len(STEPS) + 2, "full-text search over messages, attachment names and "
                                  "log entries; messages ticked off as done",
                  _search_and_done_marks))


def _trace_jobs_and_imports(conn: Connection) -> None:
    _add_columns("inbound", [("instance", "''")])(conn)
    _add_columns("event", [("inbound_id", "NULL")])(conn)
    _add_columns("outbox", [("inbound_id", "NULL"), ("relay_reply", "''")])(conn)
    create_trace_index(conn)
    for table in ("job_runs", "imported_export"):
        SQLModel.metadata.tables[table].create(conn, checkfirst=True)


STEPS.append(Step(len(STEPS) + 2, "which instance took a mail in; outbox mails and log "
                                  "entries linked to the mail that caused them; last run "
                                  "of each timed job; imports done", _trace_jobs_and_imports))


def _project_roles(conn: Connection) -> None:
    SQLModel.metadata.tables["project_role"].create(conn, checkfirst=True)


STEPS.append(Step(len(STEPS) + 2, "workflow roles mapped to agents per project",
                  _project_roles))


def _guard_index_and_search_once(conn: Connection) -> None:
    have = {i["name"] for i in inspect(conn).get_indexes("outbox")}
    for index in SQLModel.metadata.tables["outbox"].indexes:
        if index.name not in have:
            index.create(conn)
    # the triggers now index each text once; rows already indexed keep their entries
    create_search_index(conn, backfill=False)


STEPS.append(Step(len(STEPS) + 2, "the agent notification counts indexed; the search "
                                  "index fed each text once", _guard_index_and_search_once))


def _merged_tickets(conn: Connection) -> None:
    _add_columns("ticket", [("merged_into_id", "NULL")])(conn)


STEPS.append(Step(len(STEPS) + 2, "tickets merged into another (`ticket merge`)",
                  _merged_tickets))


def _ticket_links(conn: Connection) -> None:
    SQLModel.metadata.tables["ticket_link"].create(conn, checkfirst=True)


STEPS.append(Step(len(STEPS) + 2, "links between tickets (a follow-up to a closed ticket)",
                  _ticket_links))


def _agent_replied_on(conn: Connection) -> None:
    # a colleague's answer is a new notification; agents get it until they turn it off
    conn.execute(text("UPDATE agent SET notify = CASE WHEN notify = '' THEN 'agent_replied' "
                      "ELSE notify || ',agent_replied' END "
                      "WHERE notify NOT LIKE '%agent_replied%'"))


STEPS.append(Step(len(STEPS) + 2, "agents are told when a colleague answers their ticket "
                                  "(agent_replied)", _agent_replied_on))


def _thread_roots(conn: Connection) -> None:
    SQLModel.metadata.tables["thread_root"].create(conn, checkfirst=True)


STEPS.append(Step(len(STEPS) + 2, "one ticket per conversation across instances (thread "
                                  "roots)", _thread_roots))

STEPS.append(Step(len(STEPS) + 2, "narrow key indexes that search filters read (SQLite)",
                  create_search_keys))
STEPS.append(Step(len(STEPS) + 2, "message date and project kept in the search index "
                                  "(PostgreSQL)", add_search_keys))


def _inbound_pieces(conn: Connection) -> None:
    models.InboundPiece.__table__.create(conn, checkfirst=True)


STEPS.append(Step(len(STEPS) + 2, "large inbound mail stored a piece per row",
                  _inbound_pieces))

SCHEMA_VERSION = 1 + len(STEPS)


def current_version(conn: Connection) -> int | None:
    if not inspect(conn).has_table("schema_version"):
        return None
    row = conn.execute(text("SELECT version FROM schema_version WHERE id = 1")).first()
    return int(row[0]) if row else None


def migrate(db: Database) -> tuple[int | None, int]:
    """Create or upgrade the schema; returns (version found, version now)."""
    try:
        return _migrate(db)
    except SchemaError:
        raise
    except Exception as exc:
        mapped = classify_error(exc)
        if mapped is not None:
            raise mapped from exc
        raise


def _migrate(db: Database) -> tuple[int | None, int]:
    with db.write_engine.connect() as conn:
        trans = conn.begin()
        try:
            if db.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
            found = current_version(conn)
            if found is None:
                _create_fresh(conn)
            elif found > SCHEMA_VERSION:
                raise SchemaError(
                    f"the database has schema version {found}, newer than this mailgate "
                    f"({SCHEMA_VERSION}); upgrade mailgate instead")
            else:
                for step in STEPS:
                    if step.version > found:
                        step.apply(conn)
                        conn.execute(text("UPDATE schema_version SET version = :v WHERE id = 1"),
                                     {"v": step.version})
            trans.commit()
        except BaseException:
            trans.rollback()
            raise
    return found, SCHEMA_VERSION


def _create_fresh(conn: Connection) -> None:
    existing = set(inspect(conn).get_table_names())
    ours = set(SQLModel.metadata.tables)
    if existing & ours:
        raise SchemaError("the database has mailgate tables but no schema_version row; "
                          "it was not created by mailgate and is left untouched")
    SQLModel.metadata.create_all(conn)
    create_search_index(conn, backfill=False)     # triggers and FTS tables are not models
    create_desk_index(conn)                        # a partial index is not in the model
    create_search_keys(conn)
    create_trace_index(conn)
    conn.execute(text("INSERT INTO schema_version (id, version) VALUES (1, :v)"),
                 {"v": SCHEMA_VERSION})

