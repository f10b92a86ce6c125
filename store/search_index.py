"""The search index: FTS5 tables (SQLite) or a tsvector table and GIN indexes
(PostgreSQL), and the triggers that keep them current in the transaction of every
insert of a message, an attachment or an event, whichever code path makes it.

Created with a new database and by the migration step that introduced search (which
also indexes the rows already there). Queries over it live in `store.search`.
"""

from __future__ import annotations

from sqlalchemy import Connection

from store.search import EVENT_TSV, PG_CONFIGS

_TOKENIZE = "tokenize = \"unicode61 remove_diacritics 2\""
# Each text is tokenized once: `text` (what the author newly wrote) is part of
# `full_text`, so the quoted column gets the whole body without it. replace() with an
# empty `text` returns the body unchanged (both engines), and if `text` is not found
# verbatim the whole body is indexed, as before: every word of the mail stays findable.
_QUOTED = "replace(new.full_text, new.text, '')"

_SQLITE = [
    f"CREATE VIRTUAL TABLE IF NOT EXISTS message_fts USING fts5(subject, body, quoted, files, "
    f"{_TOKENIZE})",
    f"CREATE VIRTUAL TABLE IF NOT EXISTS event_fts USING fts5(detail, {_TOKENIZE})",
    # dropped first so that an upgrade replaces the triggers of an older version
    "DROP TRIGGER IF EXISTS message_fts_insert",
    "DROP TRIGGER IF EXISTS message_fts_update",
    "CREATE TRIGGER message_fts_insert AFTER INSERT ON message BEGIN "
    "INSERT INTO message_fts (rowid, subject, body, quoted, files) "
    f"VALUES (new.id, new.subject, new.text, {_QUOTED}, ''); END",
    "CREATE TRIGGER message_fts_update AFTER UPDATE OF subject, text, full_text "
    "ON message BEGIN UPDATE message_fts SET subject = new.subject, body = new.text, "
    f"quoted = {_QUOTED} WHERE rowid = new.id; END",
    "CREATE TRIGGER IF NOT EXISTS message_fts_delete AFTER DELETE ON message BEGIN "
    "DELETE FROM message_fts WHERE rowid = old.id; END",
    "CREATE TRIGGER IF NOT EXISTS attachment_fts_insert AFTER INSERT ON attachment BEGIN "
    "UPDATE message_fts SET files = trim(files || ' ' || new.filename) "
    "WHERE rowid = new.message_row_id; END",
    "CREATE TRIGGER IF NOT EXISTS event_fts_insert AFTER INSERT ON event "
    "WHEN new.detail != '' BEGIN INSERT INTO event_fts (rowid, detail) "
    "VALUES (new.id, new.detail); END",
    "CREATE TRIGGER IF NOT EXISTS event_fts_delete AFTER DELETE ON event BEGIN "
    "DELETE FROM event_fts WHERE rowid = old.id; END",
]
_SQLITE_BACKFILL = [
    "INSERT INTO message_fts (rowid, subject, body, quoted, files) SELECT m.id, m.subject, "
    "m.text, replace(m.full_text, m.text, ''), coalesce((SELECT group_concat(a.filename, ' ') "
    "FROM attachment a WHERE a.message_row_id = m.id), '') FROM message m",
    "INSERT INTO event_fts (rowid, detail) SELECT id, detail FROM event WHERE detail != ''",
]

# the stemming dictionary follows the ticket's project; long texts are cut, since a
# tsvector has a size limit and the first 200,000 characters carry what people look for
_PG_TSV = ("setweight(to_tsvector(cfg, coalesce(m_subject, '')), 'A') || "
           "setweight(to_tsvector(cfg, left(coalesce(m_text, ''), 200000)), 'B') || "
           "setweight(to_tsvector(cfg, left(replace(coalesce(m_full, ''), coalesce(m_text, ''), "
           "''), 200000)), 'D') || "
           "setweight(to_tsvector(cfg, mailgate_file_words(coalesce(m_files, ''))), 'B')")
# the message's date and project, copied next to its tsvector: a date range or a
# project then narrows the GIN index's matches (a BitmapAnd with these btrees, no
# extension needed) instead of every match in all time being joined to `message`
_PG_KEYS = [
    "CREATE INDEX IF NOT EXISTS ix_message_search_date ON message_search (created_at)",
    "CREATE INDEX IF NOT EXISTS ix_message_search_project_date ON message_search "
    "(project_id, created_at)",
]
_PG = [
    "CREATE TABLE IF NOT EXISTS message_search (message_id integer PRIMARY KEY "
    "REFERENCES message (id) ON DELETE CASCADE, config regconfig NOT NULL, "
    "tsv tsvector NOT NULL, created_at timestamptz, project_id integer)",
    "CREATE INDEX IF NOT EXISTS ix_message_search_tsv ON message_search USING gin (tsv)",
    *_PG_KEYS,
    f"CREATE INDEX IF NOT EXISTS ix_event_detail_tsv ON event USING gin "
    f"({EVENT_TSV.replace('e.', '')})",
    "CREATE OR REPLACE FUNCTION mailgate_search_config(ticket_no integer) RETURNS regconfig "
    "LANGUAGE sql STABLE AS $$ SELECT coalesce((SELECT CASE p.language "
    + " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in PG_CONFIGS.items())
    + " ELSE 'simple' END::regconfig FROM ticket t JOIN project p ON p.id = t.project_id "
    "WHERE t.id = ticket_no), 'simple'::regconfig) $$",
    # the parser reads "cert.pem" as one file-name token; its parts are words people type
    "CREATE OR REPLACE FUNCTION mailgate_file_words(names text) RETURNS text LANGUAGE sql "
    "IMMUTABLE AS $$ SELECT names || ' ' || translate(names, '._-', '   ') $$",
    "CREATE OR REPLACE FUNCTION mailgate_message_tsv(cfg regconfig, m_subject text, "
    "m_text text, m_full text, m_files text) RETURNS tsvector LANGUAGE sql IMMUTABLE AS "
    f"$$ SELECT {_PG_TSV} $$",
    "CREATE OR REPLACE FUNCTION mailgate_message_search() RETURNS trigger LANGUAGE plpgsql "
    "AS $$ DECLARE cfg regconfig := mailgate_search_config(NEW.ticket_id); BEGIN "
    "INSERT INTO message_search (message_id, config, tsv, created_at, project_id) "
    "VALUES (NEW.id, cfg, "
    "mailgate_message_tsv(cfg, NEW.subject, NEW.text, NEW.full_text, (SELECT "
    "string_agg(filename, ' ') FROM attachment WHERE message_row_id = NEW.id)), "
    "NEW.created_at, (SELECT project_id FROM ticket WHERE id = NEW.ticket_id)) "
    "ON CONFLICT (message_id) DO UPDATE SET config = EXCLUDED.config, tsv = EXCLUDED.tsv, "
    "created_at = EXCLUDED.created_at, project_id = EXCLUDED.project_id; "
    "RETURN NULL; END $$",
    "CREATE OR REPLACE FUNCTION mailgate_attachment_search() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ BEGIN UPDATE message_search SET tsv = tsv || "
    "setweight(to_tsvector(config, mailgate_file_words(NEW.filename)), 'B') "
    "WHERE message_id = NEW.message_row_id; RETURN NULL; END $$",
    "DROP TRIGGER IF EXISTS message_search_sync ON message",
    "CREATE TRIGGER message_search_sync AFTER INSERT OR UPDATE OF subject, text, full_text, "
    "ticket_id, created_at ON message FOR EACH ROW EXECUTE FUNCTION mailgate_message_search()",
    "DROP TRIGGER IF EXISTS attachment_search_sync ON attachment",
    "CREATE TRIGGER attachment_search_sync AFTER INSERT ON attachment FOR EACH ROW "
    "EXECUTE FUNCTION mailgate_attachment_search()",
]
_PG_BACKFILL = [
    "INSERT INTO message_search (message_id, config, tsv, created_at, project_id) "
    "SELECT m.id, c.cfg, "
    "mailgate_message_tsv(c.cfg, m.subject, m.text, m.full_text, (SELECT "
    "string_agg(a.filename, ' ') FROM attachment a WHERE a.message_row_id = m.id)), "
    "m.created_at, (SELECT t.project_id FROM ticket t WHERE t.id = m.ticket_id) "
    "FROM message m CROSS JOIN LATERAL (SELECT mailgate_search_config(m.ticket_id) AS cfg) c "
    "ON CONFLICT (message_id) DO NOTHING",
]
# an upgrade of a database whose message_search has no date and project yet
_PG_KEYS_BACKFILL = [
    "ALTER TABLE message_search ADD COLUMN IF NOT EXISTS created_at timestamptz",
    "ALTER TABLE message_search ADD COLUMN IF NOT EXISTS project_id integer",
    "UPDATE message_search s SET created_at = m.created_at, project_id = t.project_id "
    "FROM message m JOIN ticket t ON t.id = m.ticket_id WHERE m.id = s.message_id "
    "AND s.created_at IS NULL",
    *_PG_KEYS,
]


def create_search_index(conn: Connection, *, backfill: bool) -> None:
    """Create the search tables, indexes and the triggers that keep them current;
    `backfill` indexes the rows already there (an upgrade, not a new database)."""
    pg = conn.dialect.name == "postgresql"
    for stmt in (_PG if pg else _SQLITE) + ((_PG_BACKFILL if pg else _SQLITE_BACKFILL)
                                            if backfill else []):
        conn.exec_driver_sql(stmt)


def add_search_keys(conn: Connection) -> None:
    """PostgreSQL: copy each message's date and project into `message_search` (and
    index them) in a database indexed before they were kept there; the trigger of
    `create_search_index` keeps them from then on. SQLite's FTS5 needs none."""
    if conn.dialect.name != "postgresql":
        return
    for stmt in _PG_KEYS_BACKFILL[:2]:
        conn.exec_driver_sql(stmt)
    create_search_index(conn, backfill=False)      # the trigger that fills them
    for stmt in _PG_KEYS_BACKFILL[2:]:
        conn.exec_driver_sql(stmt)
