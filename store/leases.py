"""Leases: one instance at a time for a named piece of work (a timed job, an IMAP mailbox).

On PostgreSQL a lease is a session advisory lock held on a connection of its own (never
a pooled one: the lock must outlive transactions and must not go back to the pool with
it). The server enforces it: when the holder's process dies its connection closes and
the lock is gone at once; when its host vanishes the server's TCP keepalives, set on
that connection, drop it within about a minute. A holder that is alive but stalled
keeps its lease, which is why every job must be harmless to run twice: the work inside
is still claimed row by row (`SKIP LOCKED`) or page by page under a transaction lock.

On SQLite one `mailgate serve` owns the database (`hold_instance_lock`), so every lease
is granted at once.
"""

from __future__ import annotations

import contextlib
import threading

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from store.db import Database

# server side: probe an idle client after 20 s, every 5 s, give up after 4 misses
_KEEPALIVE = ("SET tcp_keepalives_idle = 20", "SET tcp_keepalives_interval = 5",
              "SET tcp_keepalives_count = 4")

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def _engine(db: Database) -> Engine:
    with _engines_lock:
        if db.url not in _engines:
            _engines[db.url] = create_engine(db.url, poolclass=NullPool,
                                             connect_args={"connect_timeout": 5})
        return _engines[db.url]


class Lease:
    """A named lease: `acquire()` without waiting, `held()` to check it is still ours,
    `release()` when done. One object per holder; not shared between threads."""

    def __init__(self, db: Database, name: str) -> None:
        self.db = db
        self.name = name
        self._conn: Connection | None = None

    @property
    def shared(self) -> bool:
        return self.db.dialect == "postgresql"

    def acquire(self) -> bool:
        """Take the lease if nobody holds it; True if this holder has it now."""
        if not self.shared:
            return True
        if self._conn is not None:
            return self.held()
        conn = _engine(self.db).connect()
        try:
            for statement in _KEEPALIVE:
                conn.exec_driver_sql(statement)
            got = conn.execute(text("SELECT pg_try_advisory_lock(hashtext(:n))"),
                               {"n": f"lease:{self.name}"}).scalar_one()
            conn.commit()
        except BaseException:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True

    def held(self) -> bool:
        """Whether the lease is still ours: the connection that holds it still answers.
        A lost connection lost the lock with it (another instance may have it now)."""
        if not self.shared:
            return True
        if self._conn is None:
            return False
        try:
            self._conn.exec_driver_sql("SELECT 1")
            self._conn.commit()
            return True
        except DBAPIError:
            self._drop()
            return False

    def release(self) -> None:
        if self._conn is None:
            return
        with contextlib.suppress(DBAPIError):
            self._conn.execute(text("SELECT pg_advisory_unlock(hashtext(:n))"),
                               {"n": f"lease:{self.name}"})
            self._conn.commit()
        self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


@contextlib.contextmanager
def exclusive(db: Database, name: str):
    """`with exclusive(db, name) as mine:` — `mine` is False when another instance holds
    the lease now; the lease is given back when the block ends."""
    lease = Lease(db, name)
    mine = lease.acquire()
    try:
        yield mine
    finally:
        if mine:
            lease.release()
