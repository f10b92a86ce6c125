"""Inserts (and changes) held until the unit of work commits: the rows a whole batch of
mail adds to a table go in with one executemany instead of one statement per mail.

Only for rows nothing reads back in the same transaction (log events, outbox mails,
thread references, messages), and for changes to rows whose current values the unit
keeps itself (a batch's tickets: their contexts travel with the batch).
`hold(session)` turns holding on for one session; without it `insert` and `update`
write at once. `flush(session)` writes what is held, and the session's commit does so
first, so held rows commit or roll back with everything else in the unit. A held row
whose id the caller needs at once takes one from `next_id`: ids reserved for the unit
(`reserve_ids`, one statement for a batch) as the database would give them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Table, bindparam, event, func, select, text
from sqlmodel import Session

_KEY = "mailgate_held_inserts"
_UPDATES = "mailgate_held_updates"
_ROW = "held_row_id"


def hold(session: Session) -> None:
    if _KEY not in session.info:
        session.info[_KEY] = {}
        session.info[_UPDATES] = {}
        event.listen(session, "before_commit", flush)


def holding(session: Session) -> bool:
    return _KEY in session.info


def insert(session: Session, table: Table, rows: Iterable[dict[str, Any]]) -> None:
    rows = list(rows)
    if not rows:
        return
    held = session.info.get(_KEY)
    if held is None:
        session.connection().execute(table.insert(), rows)
    else:
        held.setdefault(table, []).extend(rows)


def update(session: Session, table: Table, row_id: int, values: dict[str, Any]) -> None:
    """Change the row of `table` with this id (one already in the table): held, merged
    with the changes held for it before, when the unit holds inserts; else at once."""
    held = session.info.get(_KEY)
    if held is None:
        session.connection().execute(_update_of(table), {**values, _ROW: row_id})
        return
    rows = session.info[_UPDATES].setdefault(table, {})
    rows[row_id] = {**rows.get(row_id, {}), **values}


def flush(session: Session) -> None:
    """Write the held changes, then the held rows: per table in the order they came,
    one executemany for each run of rows with the same columns (updates first: a row a
    trigger reads as an insert goes in, such as a ticket's project, is as it ends)."""
    held, changes = session.info.get(_KEY), session.info.get(_UPDATES)
    if not held and not changes:
        return
    conn = session.connection()
    changed = list(changes.items())
    changes.clear()
    for table, by_id in changed:
        runs: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row_id, values in by_id.items():
            runs.setdefault(tuple(sorted(values)), []).append({**values, _ROW: row_id})
        for rows in runs.values():
            conn.execute(_update_of(table), rows)
    tables = list(held.items())
    held.clear()
    for table, rows in tables:
        start = 0
        for i in range(1, len(rows) + 1):
            if i == len(rows) or rows[i].keys() != rows[start].keys():
                conn.execute(table.insert(), rows[start:i])
                start = i


def _update_of(table: Table):
    return _built("update", table, lambda t: t.update().where(t.c.id == bindparam(_ROW)))


def _top_of(table: Table):
    return _built("top", table, lambda t: select(func.coalesce(func.max(t.c.id), 0)))


def _built(kind: str, table: Table, build):
    statement = _STATEMENTS.get((kind, table.name))
    if statement is None:       # built once per table: building costs more than running
        statement = _STATEMENTS[kind, table.name] = build(table)
    return statement


_STATEMENTS: dict[tuple[str, str], Any] = {}


# --- ids for held rows ----------------------------------------------------------------------


def reserve_ids(session: Session, table: Table, count: int) -> list[int]:
    """The next `count` ids of `table` for this unit: its sequence's next values on
    PostgreSQL (unused ones stay unused), on SQLite the ids it would give itself (max + 1
    …: its one writer holds the write lock until the commit; held rows are not in the
    table yet, so later ones go on from the last id handed out)."""
    conn = session.connection()
    ids_of = session.info.setdefault(_IDS, {})
    if table.name not in ids_of:
        ids_of[table.name] = {"spare": [], "top": None, "left": 0}
        event.listen(session, "after_commit", lambda s, t=table.name: _forget(s, t))
        event.listen(session, "after_rollback", lambda s, t=table.name: _forget(s, t))
    state = ids_of[table.name]
    if count <= 0:
        ids = []
    elif conn.dialect.name == "postgresql":
        ids = sorted(conn.execute(text(
            "SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
            {"t": table.name, "n": count}).scalars())
    else:
        top = state["top"] or conn.execute(_top_of(table)).scalar_one()
        ids = list(range(top + 1, top + 1 + count))
        state["top"] = top + count
    state["spare"] = ids
    return ids


def next_id(session: Session, table: Table) -> int:
    """An id for one held row of `table`: a reserved one, or (after a commit, when the
    batch stepped aside) as many newly reserved as were left."""
    state = session.info.get(_IDS, {}).get(table.name)
    spare = state["spare"] if state else []
    if not spare:
        spare = reserve_ids(session, table, max(1, state["left"] if state else 0))
    return spare.pop(0)


def _forget(session: Session, table: str) -> None:
    state = session.info[_IDS][table]
    state.update(spare=[], top=None, left=len(state["spare"]))


_IDS = "mailgate_reserved_ids"
