"""Full-text search over tickets: subjects, message text (new and quoted), attachment
names and log entries, on SQLite (FTS5) and PostgreSQL (tsvector) behind one call.

The indexes are kept by triggers (`store.search_index`), so every path that inserts a
message, an attachment or an event updates them in its own transaction; nothing here
writes. User input never reaches either engine's query
syntax: `parse_query` keeps only words (letters and digits), phrases and prefixes, and
the two renderers quote what they emit.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from sqlalchemy import bindparam, text
from sqlmodel import Session

from store.models import UTCDateTime

# a project's language -> the PostgreSQL text search configuration that stems it
PG_CONFIGS = {"de": "german", "da": "danish", "en": "english"}
MARK = ("«", "»")          # around the matched words in a snippet
MAX_TERMS = 32
# a query is ranked among its newest RANK_WINDOW matches (after the filters): ranking
# every match of a common word in a million messages costs seconds, not milliseconds
RANK_WINDOW = 1000
# PostgreSQL: at least this many of the newest matches are ranked (if there are as
# many); they are looked for in the newest PG_IDS ids first, or in the last days of a
# date range that hold about PG_DATED_ROWS messages at the table's average rate (3 days
# at a million messages over three years; more days in a smaller or younger table)
MIN_WINDOW = 100
PG_IDS, PG_DATED_ROWS = 20_000, 3_000
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# SQLite: what the filters read, narrow, so that walking a long match list does not
# read the wide message rows (text, full_text, html); used by `_messages_fts5`
SQLITE_SEARCH_KEYS = (
    "CREATE INDEX IF NOT EXISTS ix_message_search_keys ON message "
    "(id, ticket_id, created_at, direction, done_at)",
    "CREATE INDEX IF NOT EXISTS ix_ticket_search_keys ON ticket "
    "(id, project_id, deleted_at, status)")


@dataclass(frozen=True)
class Term:
    """One thing a hit must contain: a word, a phrase (several words in a row) or the
    start of a word (`prefix`)."""

    words: tuple[str, ...]
    prefix: bool = False


_TOKEN = re.compile(r'"([^"]*)"?|(\S+)')
_WORD = re.compile(r"\w+")


def parse_query(query: str) -> tuple[Term, ...]:
    """Words, "phrases" and prefixes (`zert*`) from what a person typed. Everything
    that is not a letter or digit separates words, so no character of either engine's
    syntax survives; an unclosed quote runs to the end."""
    terms: list[Term] = []
    for phrase, bare in _TOKEN.findall(query or ""):
        if phrase:
            words = tuple(w.lower() for w in _WORD.findall(phrase))
            if words:
                terms.append(Term(words))
            continue
        words = [w.lower() for w in _WORD.findall(bare)]
        for i, w in enumerate(words):
            last = i == len(words) - 1
            terms.append(Term((w,), prefix=last and bare.rstrip().endswith("*")))
    # a pasted page is not a query: the first terms decide, and the engines stay quick
    return tuple(dict.fromkeys(terms))[:MAX_TERMS]


def fts5_match(terms: tuple[Term, ...]) -> str:
    """An FTS5 MATCH expression: every term must occur (implicit AND)."""
    out = []
    for t in terms:
        quoted = '"' + " ".join(t.words).replace('"', '""') + '"'
        out.append(quoted + ("*" if t.prefix else ""))
    return " ".join(out)


def pg_tsquery(terms: tuple[Term, ...]) -> str:
    """A `to_tsquery` string; the words are \\w+ only, so none needs quoting."""
    out = []
    for t in terms:
        if len(t.words) > 1:
            out.append("(" + " <-> ".join(t.words) + ")")
        else:
            out.append(t.words[0] + (":*" if t.prefix else ""))
    return " & ".join(out)


@dataclass(frozen=True)
class SearchQuery:
    terms: tuple[Term, ...]
    project: str | None = None
    ticket: int | None = None
    since: dt.datetime | None = None        # inclusive
    until: dt.datetime | None = None        # exclusive
    statuses: frozenset[str] | None = None  # the ticket's current status
    sender: str | None = None
    direction: str | None = None            # in | out | internal
    done: bool | None = None                # None: either
    limit: int = 20


@dataclass(frozen=True)
class Hit:
    ticket: int
    message: int | None
    date: dt.datetime
    sender: str
    direction: str
    subject: str
    snippet: str
    score: float
    kind: str = "mail"                      # mail | note | event
    event: int | None = field(default=None)


def search(session: Session, query: SearchQuery) -> list[Hit]:
    """The best `query.limit` hits, by relevance and then newest first."""
    if not query.terms:
        return []
    pg = session.get_bind().dialect.name == "postgresql"
    hits = _messages(session, query, pg)
    if query.done is None and query.direction in (None, "internal"):
        hits += _events(session, query, pg)
    hits.sort(key=lambda h: (-h.score, -h.date.timestamp()))
    return hits[:query.limit]


def create_search_keys(conn) -> None:
    """The key indexes search reads (SQLite; PostgreSQL's plans do without)."""
    if conn.dialect.name == "sqlite":
        for ddl in SQLITE_SEARCH_KEYS:
            conn.exec_driver_sql(ddl)


def _filters(query: SearchQuery, date_col: str, sender_col: str, params: dict) -> list[str]:
    """The WHERE terms both kinds of hit share; `date_col` and `sender_col` name the
    hit's own columns."""
    where = ["t.deleted_at IS NULL"]
    if query.project:
        where.append("p.slug = :project")
        params["project"] = query.project
    if query.ticket:
        where.append("t.id = :ticket")
        params["ticket"] = query.ticket
    if query.since:
        where.append(f"{date_col} >= :since")
        params["since"] = query.since
    if query.until:
        where.append(f"{date_col} < :until")
        params["until"] = query.until
    if query.statuses is not None:
        where.append("t.status IN :statuses")
        params["statuses"] = sorted(query.statuses)
    if query.sender:
        where.append(f"lower({sender_col}) = :sender")
        params["sender"] = query.sender.strip().lower()
    return where


def _bind(sql: str, params: dict):
    stmt = text(sql)
    binds = [bindparam(k, type_=UTCDateTime()) for k in ("since", "until") if k in params]
    if "statuses" in params:
        binds.append(bindparam("statuses", expanding=True))
    return stmt.bindparams(*binds)


def _messages(session: Session, query: SearchQuery, pg: bool) -> list[Hit]:
    params: dict = {"limit": query.limit}
    # PostgreSQL: the date copied into message_search, which its indexes can narrow
    where = _filters(query, "s.created_at" if pg else "m.created_at", "m.from_addr", params)
    if query.direction:
        where.append("m.direction = :direction")
        params["direction"] = query.direction
    if query.done is not None:
        where.append("m.done_at IS NOT NULL" if query.done else "m.done_at IS NULL")
    if not pg:
        return _messages_fts5(session, query, where, params)
    return _messages_pg(session, query, where, params)


def _messages_pg(session: Session, query: SearchQuery, where: list[str],
                 params: dict) -> list[Hit]:
    """Rank a window of the newest matches (see `_pg_window`) with ts_rank, and
    ts_headline only the rows returned."""
    joins = ("JOIN message m ON m.id = {id} JOIN ticket t ON t.id = m.ticket_id "
             "JOIN project p ON p.id = t.project_id")
    cols = "m.id, m.ticket_id, m.created_at, m.from_addr, m.direction, m.subject"
    per_config = _pg_queries(session, pg_tsquery(query.terms))
    if not any(per_config.values()):
        return []               # nothing but stop words
    params.update({f"q_{c}": q for c, q in per_config.items()})
    if query.project:                  # the project's id, a value the planner can use
        params["project_id"] = session.connection().execute(
            text("SELECT id FROM project WHERE slug = :s"), {"s": query.project}).scalar()
        if params["project_id"] is None:
            return []
        where.append("s.project_id = :project_id")
    # the row's own dictionary decides (ranking and the row-by-row walk)
    own = ("CASE s.config " + " ".join(f"WHEN '{c}'::regconfig THEN CAST(:q_{c} AS "
                                       f"tsquery)" for c in PG_CONFIGS.values())
           + " ELSE CAST(:q_simple AS tsquery) END")
    # the same, one GIN lookup per dictionary: the planner estimates each, and so can
    # weigh the GIN index against the date and project btrees (or combine them)
    per_dict = " OR ".join(f"(s.config = '{c}'::regconfig AND s.tsv @@ CAST(:q_{c} AS "
                           f"tsquery))" for c, q in per_config.items() if q)
    params["window"] = RANK_WINDOW
    dated = bool(query.since or query.until)
    if dated and not query.since:      # the window narrows the range from below
        where.append("s.created_at >= :since")
        params["since"] = EPOCH
    # the newest matches: by date within a date range (ix_message_search_date or
    # _project_date), by id otherwise; `:floor` and a raised `:since` keep the walk
    # near the top. Over such a narrowed range the match is tested row by row
    # (ts_match_vq is an @@ the GIN index cannot serve, so the planner walks the
    # range); over the whole range the GIN index finds the rows, narrowed by the
    # date and project btrees where the planner finds that cheaper.
    window = (f"SELECT s.message_id FROM message_search s {joins.format(id='s.message_id')} "
              f"WHERE s.message_id > :floor AND {{match}} AND {' AND '.join(where)} "
              f"ORDER BY "
              + ("s.created_at DESC, s.message_id DESC" if dated else "s.message_id DESC")
              + " LIMIT :window")
    narrow = _bind(window.format(match=f"ts_match_vq(s.tsv, {own})"), params)
    # the whole range: the GIN index (with the date and project btrees) finds every
    # match first, as a set of its own; left to plan it with the ORDER BY and LIMIT,
    # PostgreSQL walks the id or date index hoping for early matches, and reads the
    # whole table when a filter leaves none (a German word in a Danish project)
    keys = " AND ".join([f"({per_dict})", *(w for w in where if w.startswith("s."))])
    whole = _bind(f"WITH s AS MATERIALIZED (SELECT message_id, created_at, project_id "
                  f"FROM message_search s WHERE {keys}) "
                  + window.replace("FROM message_search s ", "FROM s ")
                  .format(match="TRUE"), params)
    params["ids"] = _pg_window(session, (narrow, whole), params, dated)
    sql = (f"SELECT {cols}, ts_headline(s.config, m.subject || ' · ' || left(m.full_text, "
           f"20000), {own}, '{_HEADLINE}'), r.rank FROM ("
           f"SELECT s.message_id, ts_rank(s.tsv, {own}) AS rank, m.created_at "
           f"FROM message_search s JOIN message m ON m.id = s.message_id "
           f"WHERE s.message_id = ANY(:ids) ORDER BY rank DESC, m.created_at DESC "
           f"LIMIT :limit) r JOIN message_search s ON s.message_id = r.message_id "
           f"JOIN message m ON m.id = r.message_id ORDER BY r.rank DESC, m.created_at DESC")
    params = {k: v for k, v in params.items() if k == "ids" or k == "limit"
              or k.startswith("q_")}
    rows = session.connection().execute(_bind(sql, params), params).all()
    return [Hit(ticket=r[1], message=r[0], date=_aware(r[2]), sender=r[3], direction=r[4],
                subject=r[5], snippet=_one_line(r[6]), score=round(float(r[7]), 6),
                kind="note" if r[4] == "internal" else "mail") for r in rows]


def _messages_fts5(session: Session, query: SearchQuery, where: list[str],
                   params: dict) -> list[Hit]:
    """Rank only the newest RANK_WINDOW matches that pass the filters, and snippet only
    the rows returned: bm25() and snippet() cost per row, and a common word matches a
    good part of a large history. FTS5 walks the match list newest rowid first, the
    filters read the narrow key indexes (not the wide message rows), and the walk stops
    at the window; bm25() is computed in the same pass, for the rows kept only."""
    params.update(q=fts5_match(query.terms), window=RANK_WINDOW)
    covered = query.sender is None     # the sender is not in the key index
    m_ix = "INDEXED BY ix_message_search_keys " if covered else ""
    sql = (f"SELECT m.id, m.ticket_id, m.created_at, m.from_addr, m.direction, m.subject, "
           f"c.rank FROM (SELECT c.* FROM (SELECT m.id, m.created_at, "
           f"-bm25(message_fts, 8.0, 4.0, 1.0, 4.0) AS rank FROM message_fts "
           f"JOIN message m {m_ix}ON m.id = message_fts.rowid "
           f"JOIN ticket t INDEXED BY ix_ticket_search_keys ON t.id = m.ticket_id "
           f"JOIN project p ON p.id = t.project_id WHERE message_fts MATCH :q "
           f"AND {' AND '.join(where)} ORDER BY message_fts.rowid DESC LIMIT :window) c "
           f"ORDER BY c.rank DESC, c.created_at DESC LIMIT :limit) c "
           f"JOIN message m ON m.id = c.id ORDER BY c.rank DESC, c.created_at DESC")
    conn = session.connection()
    rows = conn.execute(_bind(sql, params), params).all()
    snippets = _fts5_snippets(conn, params["q"], [r[0] for r in rows])
    return [Hit(ticket=r[1], message=r[0], date=_aware(r[2]), sender=r[3], direction=r[4],
                subject=r[5], snippet=_one_line(snippets.get(r[0])),
                score=round(float(r[6]), 6),
                kind="note" if r[4] == "internal" else "mail") for r in rows]


def _fts5_snippets(conn, match: str, ids: list[int]) -> dict[int, str]:
    """snippet() of the given rows. A rowid range, not `rowid IN`: FTS5 answers each
    IN value by a fresh scan of the match list, the range by one walk."""
    if not ids:
        return {}
    sql = text(f"SELECT rowid, snippet(message_fts, -1, '{MARK[0]}', '{MARK[1]}', '…', 14) "
               f"FROM message_fts WHERE message_fts MATCH :q AND rowid BETWEEN :lo AND :hi "
               f"AND +rowid IN :ids").bindparams(bindparam("ids", expanding=True))
    return dict(conn.execute(sql, {"q": match, "lo": min(ids), "hi": max(ids),
                                   "ids": ids}).all())


def _pg_window(session: Session, stmts: tuple, params: dict, dated: bool) -> list[int]:
    """The ids of the newest matches to rank: up to RANK_WINDOW of them, found among
    the newest rows first (ids above `:floor`, or the last days of a date range) and
    widened only while fewer than MIN_WINDOW turn up. A common word is so served from
    the top instead of from all its matches; a rare one goes straight to the whole
    range, where the GIN index finds its few rows."""
    conn = session.connection()
    # psycopg prepares a statement run five times; PostgreSQL's generic plan for it
    # cannot see how narrow the range is and scans everything
    conn.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    if dated:
        lowest = _aware(params["since"])
        oldest, newest, rows = conn.execute(text(
            "SELECT min(created_at), max(created_at), (SELECT reltuples FROM pg_class "
            "WHERE oid = 'message_search'::regclass) FROM message_search")).one()
        top = params.get("until") or newest
        top = _aware(top) if top is not None else lowest
        first, unit, key = _pg_first_seconds(oldest, newest, rows), dt.timedelta(seconds=1), \
            "since"
        params["floor"] = 0
    else:
        lowest, top = 0, conn.execute(
            text("SELECT coalesce(max(message_id), 0) FROM message_search")).scalar()
        first, unit, key = PG_IDS, 1, "floor"
    span = first
    while True:
        params[key] = lowest if span is None else max(lowest, top - span * unit)
        ids = list(conn.execute(stmts[params[key] == lowest], params).scalars())
        if len(ids) >= MIN_WINDOW or params[key] == lowest:
            return ids
        # as many more as the density so far says are needed; when that is a long walk
        # (a rare word), all at once through the GIN index (narrowed by the date and
        # project btrees of message_search)
        few = len(ids) * 2.5 < MIN_WINDOW
        span = None if few else span * 2 * MIN_WINDOW // max(1, len(ids))


def _pg_first_seconds(oldest, newest, rows) -> int:
    """How far back from the top of a date range the first walk looks: the time in
    which PG_DATED_ROWS messages arrive at the table's average rate (from the planner's
    row count), at least an hour; 3 days when the table was never analyzed."""
    if oldest is None or newest is None or not rows or rows < 0:
        return 3 * 86400
    seconds = (_aware(newest) - _aware(oldest)).total_seconds()
    return max(3600, int(seconds * PG_DATED_ROWS / rows))


def _pg_queries(session: Session, tsquery: str) -> dict[str, str]:
    """The query as each dictionary reads it (normalised tsquery text; "" if only stop
    words are left)."""
    configs = (*PG_CONFIGS.values(), "simple")
    row = session.connection().execute(text("SELECT " + ", ".join(
        f"to_tsquery('{c}', :tq)::text" for c in configs)), {"tq": tsquery}).one()
    return dict(zip(configs, row, strict=True))


EVENT_TSV = "to_tsvector('simple'::regconfig, e.detail)"  # matches ix_event_detail_tsv
_HEADLINE = f"StartSel={MARK[0]}, StopSel={MARK[1]}, MaxWords=18, MinWords=6"


def _events(session: Session, query: SearchQuery, pg: bool) -> list[Hit]:
    params: dict = {"limit": query.limit}
    where = _filters(query, "e.at", "e.actor", params)
    joins = "JOIN ticket t ON t.id = e.ticket_id JOIN project p ON p.id = t.project_id"
    cols = "e.id, e.ticket_id, e.at, e.actor, t.subject"
    if pg:
        params["tq"] = pg_tsquery(query.terms)
        sql = (f"SELECT {cols}, ts_headline('simple', e.detail, to_tsquery('simple', :tq), "
               f"'{_HEADLINE}'), ts_rank({EVENT_TSV}, to_tsquery('simple', :tq)) AS rank "
               f"FROM event e {joins} WHERE {EVENT_TSV} @@ to_tsquery('simple', :tq) "
               f"AND {' AND '.join(where)} ORDER BY rank DESC, e.at DESC LIMIT :limit")
    else:
        params["q"] = fts5_match(query.terms)
        sql = (f"SELECT {cols}, snippet(event_fts, 0, '{MARK[0]}', '{MARK[1]}', '…', 14), "
               f"-bm25(event_fts) AS rank FROM event_fts JOIN event e ON e.id = event_fts.rowid "
               f"{joins} WHERE event_fts MATCH :q AND {' AND '.join(where)} "
               f"ORDER BY rank DESC, e.at DESC LIMIT :limit")
    rows = session.connection().execute(_bind(sql, params), params).all()
    return [Hit(ticket=r[1], message=None, event=r[0], date=_aware(r[2]), sender=r[3],
                direction="internal", subject=r[4], snippet=_one_line(r[5]),
                score=round(float(r[6]), 6), kind="event") for r in rows]


def _aware(value) -> dt.datetime:
    if isinstance(value, str):           # SQLite hands raw text back from text() queries
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _one_line(snippet: str | None) -> str:
    return " ".join((snippet or "").split())
