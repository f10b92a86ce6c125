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
    where = _filters(query, "m.created_at", "m.from_addr", params)
    if query.direction:
        where.append("m.direction = :direction")
        params["direction"] = query.direction
    if query.done is not None:
        where.append("m.done_at IS NOT NULL" if query.done else "m.done_at IS NULL")
    joins = ("JOIN message m ON m.id = {id} JOIN ticket t ON t.id = m.ticket_id "
             "JOIN project p ON p.id = t.project_id")
    cols = "m.id, m.ticket_id, m.created_at, m.from_addr, m.direction, m.subject"
    if pg:
        per_config = _pg_queries(session, pg_tsquery(query.terms))
        if not any(per_config.values()):
            return []               # nothing but stop words
        params.update({f"q_{c}": q for c, q in per_config.items()},
                      q_any=" | ".join(f"( {q} )" for q in per_config.values() if q))
        # the row's own dictionary decides; the union of all of them lets the GIN index
        # narrow the rows first (a constant query, parsed once, not once per row)
        own = ("CASE s.config " + " ".join(f"WHEN '{c}'::regconfig THEN CAST(:q_{c} AS "
                                           f"tsquery)" for c in PG_CONFIGS.values())
               + " ELSE CAST(:q_simple AS tsquery) END")
        sql = (f"SELECT {cols}, ts_headline(s.config, m.subject || ' · ' || left(m.full_text, "
               f"20000), {own}, '{_HEADLINE}'), r.rank FROM ("
               f"SELECT s.message_id, ts_rank(s.tsv, {own}) AS rank "
               f"FROM message_search s {joins.format(id='s.message_id')} "
               f"WHERE s.tsv @@ CAST(:q_any AS tsquery) AND s.tsv @@ {own} "
               f"AND {' AND '.join(where)} ORDER BY rank DESC, m.created_at DESC "
               f"LIMIT :limit) r JOIN message_search s ON s.message_id = r.message_id "
               f"JOIN message m ON m.id = r.message_id")
    else:
        params["q"] = fts5_match(query.terms)
        sql = (f"SELECT {cols}, snippet(message_fts, -1, '{MARK[0]}', '{MARK[1]}', '…', 14), "
               f"-bm25(message_fts, 8.0, 4.0, 1.0, 4.0) AS rank FROM message_fts "
               f"{joins.format(id='message_fts.rowid')} WHERE message_fts MATCH :q "
               f"AND {' AND '.join(where)} ORDER BY rank DESC, m.created_at DESC "
               f"LIMIT :limit")
    rows = session.connection().execute(_bind(sql, params), params).all()
    return [Hit(ticket=r[1], message=r[0], date=_aware(r[2]), sender=r[3], direction=r[4],
                subject=r[5], snippet=_one_line(r[6]), score=round(float(r[7]), 6),
                kind="note" if r[4] == "internal" else "mail") for r in rows]


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
