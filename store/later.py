"""Inserts held until the unit of work commits: the rows a whole batch of mail adds to a
table go in with one executemany instead of one statement per mail.

Only for rows nothing reads back in the same transaction (log events, outbox mails,
thread references, messages). `hold(session)` turns holding on for one session; without
it `insert` writes at once. `flush(session)` writes what is held, and the session's
commit does so first, so held rows commit or roll back with everything else in the unit.
A held row whose id the caller needs at once takes one from `next_id`: ids reserved for
the unit (`reserve_ids`, one statement for a batch) as the database would give them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Table, event, func, select, text
from sqlmodel import Session

_KEY = "mailgate_held_inserts"


def hold(session: Session) -> None:
    if _KEY not in session.info:
        session.info[_KEY] = {}
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


def flush(session: Session) -> None:
    """Write the held rows: per table in the order they came, one executemany for each
    run of rows with the same columns."""
    held = session.info.get(_KEY)
    if not held:
        return
    tables = list(held.items())
    held.clear()
    conn = session.connection()
    for table, rows in tables:
        start = 0
        for i in range(1, len(rows) + 1):
            if i == len(rows) or rows[i].keys() != rows[start].keys():
                conn.execute(table.insert(), rows[start:i])
                start = i


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
        top = state["top"] or conn.execute(
            select(func.coalesce(func.max(table.c.id), 0))).scalar_one()
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
