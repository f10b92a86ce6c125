"""The database handle and the unit of work.

`Database.unit()` is the only place a transaction is committed: one handler, one unit,
one commit. SQLite runs in WAL mode with synchronous=FULL (a committed mail survives a
power cut) and write units start with BEGIN IMMEDIATE, so two writers queue on the
busy timeout instead of failing halfway through. Errors that mean "try again later" are
raised as `StoreUnavailable`, a full disk as `StoreFull`, so the edges can answer
451/452 without knowing which database is behind them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import Session, create_engine


class StoreUnavailable(Exception):
    """The store cannot take a write now (locked, down, unreachable): retry later."""


class StoreFull(StoreUnavailable):
    """The store is out of space."""


_FULL_MARKERS = ("database or disk is full", "disk is full", "no space left",
                 "could not extend file", "53100")


def classify_error(exc: BaseException) -> StoreUnavailable | None:
    """Map a driver error to our two transient kinds, or None if it is a real bug."""
    text = str(exc).lower()
    orig = getattr(exc, "orig", None)
    sqlstate = getattr(orig, "sqlstate", None) or ""
    if any(m in text for m in _FULL_MARKERS) or sqlstate == "53100":
        return StoreFull(str(exc).splitlines()[0])
    if isinstance(exc, OperationalError | PoolTimeout | ConnectionError | TimeoutError):
        return StoreUnavailable(str(exc).splitlines()[0])
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return StoreUnavailable(str(exc).splitlines()[0])
    if sqlstate.startswith(("08", "53", "57P")):
        return StoreUnavailable(str(exc).splitlines()[0])
    return None


class Database:
    def __init__(self, url: str, *, busy_timeout: float = 5.0, echo: bool = False,
                 pool_size: int = 5) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        self.busy_timeout = busy_timeout
        if self.dialect == "sqlite":
            self.engine = create_engine(
                url, echo=echo, connect_args={"timeout": busy_timeout,
                                              "check_same_thread": False})
            _tune_sqlite(self.engine, busy_timeout)
        else:
            self.engine = create_engine(
                url, echo=echo, pool_pre_ping=True, pool_size=pool_size, max_overflow=5,
                pool_timeout=busy_timeout, connect_args={"connect_timeout": 5})
        self.write_engine = self.engine.execution_options(mailgate_write=True)

    @contextlib.contextmanager
    def unit(self, *, write: bool = True) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back if it raises."""
        engine = self.write_engine if write else self.engine
        session = Session(engine, expire_on_commit=False)
        try:
            yield session
            session.commit()
        except BaseException as exc:
            with contextlib.suppress(Exception):
                session.rollback()
            mapped = classify_error(exc) if isinstance(exc, Exception) else None
            if mapped is not None and mapped is not exc:
                raise mapped from exc
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()

    def describe(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)


def _tune_sqlite(engine: Engine, busy_timeout: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Take transaction control from the driver so we can issue BEGIN IMMEDIATE.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        write = conn.get_execution_options().get("mailgate_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def lock_job(session: Session, name: str) -> None:
    """Serialise one timed job's transactions across instances (PostgreSQL; SQLite's
    write transactions already are), so two instances never send the same reminder."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy import text

        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:n))"),
                        {"n": f"job:{name}"})
