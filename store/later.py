"""Inserts held until the unit of work commits: the rows a whole batch of mail adds to a
table go in with one executemany instead of one statement per mail.

Only for rows nothing reads back in the same transaction (log events, outbox mails,
thread references). `hold(session)` turns holding on for one session; without it
`insert` writes at once. `flush(session)` writes what is held, and the session's commit
does so first, so held rows commit or roll back with everything else in the unit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Table, event
from sqlmodel import Session

_KEY = "mailgate_held_inserts"


def hold(session: Session) -> None:
    if _KEY not in session.info:
        session.info[_KEY] = {}
        event.listen(session, "before_commit", flush)


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
