"""The database handle and the unit of work.

`Database.unit()` is the only place a transaction is committed: one handler, one unit,
one commit. SQLite runs in WAL mode with synchronous=FULL (a committed mail survives a
power cut; only units that may be done again commit lazily, see `unit`) and write units
start with BEGIN IMMEDIATE, so two writers queue on the
busy timeout instead of failing halfway through. Errors that mean "try again later" are
raised as `StoreUnavailable`, a full disk as `StoreFull`, so the edges can answer
451/452 without knowing which database is behind them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator

import structlog
from sqlalchemy import event, func, text
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


def conflicted(exc: BaseException) -> bool:
    """A transaction that lost a deadlock or a serialization conflict with another
    instance (PostgreSQL rolls one back): worth trying again at once."""
    seen = exc
    while seen is not None:
        if getattr(getattr(seen, "orig", seen), "sqlstate", None) in ("40P01", "40001"):
            return True
        seen = seen.__cause__
    return False


class WriteGate:
    """One writer at a time, urgent writers first.

    SQLite has a single write lock; writers that queue on it through its busy handler
    sleep in steps of up to 100 ms and wake in no particular order. Queuing here instead
    hands the lock over at once: threads of one process queue on a condition, processes
    queue on an flock of a file beside the database, which the kernel hands over the
    moment it is free. Urgent writers (the spool: its client waits for 250) go first in
    their process and announce themselves in a counter shared with the instance's other
    processes, so a long writer there can `step_aside` between two pieces of its work.
    """

    def __init__(self, lock_path: str | None = None) -> None:
        self._cond = threading.Condition()
        self._busy = False
        self._urgent_waiting = 0
        self._lock_path = lock_path
        self._fd: int | None = None
        self._pid = 0
        self.shared = None      # a multiprocessing.Value("i") for the whole instance

    def urgent_waiting(self) -> bool:
        return self._urgent_waiting > 0 or (self.shared is not None and self.shared.value > 0)

    def _announce(self, delta: int) -> None:
        if self.shared is not None:
            with self.shared.get_lock():
                self.shared.value += delta

    @contextlib.contextmanager
    def held(self, urgent: bool = False) -> Iterator[None]:
        if urgent:
            self._announce(1)
        try:
            self._enter(urgent)
        finally:
            if urgent:
                self._announce(-1)
        try:
            yield
        finally:
            self._leave()

    def _enter(self, urgent: bool) -> None:
        with self._cond:
            if urgent:
                self._urgent_waiting += 1
            try:
                while self._busy or (not urgent and self._urgent_waiting):
                    self._cond.wait()
            finally:
                if urgent:
                    self._urgent_waiting -= 1
            self._busy = True
        fd = self._file()
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                self._release_local()
                raise

    def _leave(self) -> None:
        fd = self._file()
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        self._release_local()

    def _release_local(self) -> None:
        with self._cond:
            self._busy = False
            self._cond.notify_all()

    def step_aside(self) -> None:
        """Let the urgent writers that wait go first, then take the lock back (called
        by a holder between two pieces of work, after committing)."""
        self._leave()
        deadline = time.monotonic() + 5.0
        while self.shared is not None and self.shared.value > 0 \
                and time.monotonic() < deadline:
            time.sleep(0.0005)   # until the waiter holds the lock; then we queue behind it
        self._enter(urgent=False)

    def _file(self) -> int | None:
        # opened lazily, and again after a fork: an flock belongs to the open file
        if self._lock_path is None:
            return None
        if self._fd is None or self._pid != os.getpid():
            self._fd = open_lock_file(self._lock_path)
            self._pid = os.getpid()
        return self._fd


class Database:
    def __init__(self, url: str, *, busy_timeout: float = 5.0, echo: bool = False,
                 pool_size: int = 5) -> None:
        self.url = url
        self.fixed_modes: list[tuple[str, int]] = []
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        self.busy_timeout = busy_timeout
        if self.dialect == "sqlite":
            self.fixed_modes = make_private(parsed.database)
            self.engine = create_engine(
                url, echo=echo, connect_args={"timeout": busy_timeout,
                                              "check_same_thread": False})
            _tune_sqlite(self.engine, busy_timeout)
            path = parsed.database
            self.gate: WriteGate | None = WriteGate(
                f"{path}-writelock" if path and path != ":memory:" else None)
        else:
            self.engine = create_engine(
                url, echo=echo, pool_pre_ping=True, pool_size=pool_size, max_overflow=5,
                pool_timeout=busy_timeout, connect_args={"connect_timeout": 5})
            self.gate = None   # PostgreSQL locks rows, not the database
            _tune_postgresql(self.engine)
        self.write_engine = self.engine.execution_options(mailgate_write=True)
        self.lazy_engine = self.engine.execution_options(mailgate_write=True,
                                                         mailgate_lazy=True)

    @contextlib.contextmanager
    def unit(self, *, write: bool = True, urgent: bool = False,
             durable: bool = True) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back if it raises.
        `urgent` write units (storing mail a sender waits for) go first on SQLite.

        `durable=False`: the commit returns before its log reaches the disk (SQLite
        synchronous=NORMAL, PostgreSQL synchronous_commit=off). Only for a unit that
        can be done again from durable rows and that nobody outside learns of before a
        later durable commit: the log is written in order, so any durable commit after
        it (the outbox sender claiming a mail before sending it, say) makes it durable
        too, and a power cut loses at most a suffix of such units, never a hole."""
        engine = self.write_engine if durable else self.lazy_engine
        if write and self.gate is not None:
            with self.gate.held(urgent):
                yield from self._unit(engine)
                return
        yield from self._unit(engine if write else self.engine)

    def step_aside(self, session: Session) -> None:
        """Inside a long write unit: if an urgent writer waits, commit what is done and
        let it go first (SQLite); the unit then goes on in a new transaction."""
        if self.gate is not None and self.gate.urgent_waiting():
            session.commit()
            self.gate.step_aside()

    def _unit(self, engine) -> Iterator[Session]:
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


# --- private files -------------------------------------------------------------------------
# The database holds every mail and the reply-token secret: nobody but its owner may read
# it. SQLite creates the -wal, -shm and -journal files with the mode of the database file
# itself, so creating that one 0600 before SQLite first opens it covers them all.
SIDE_FILES = ("", "-wal", "-shm", "-journal", "-writelock", "-instance.lock")


def make_private(path: str | None) -> list[tuple[str, int]]:
    """Create the SQLite file `path` mode 0600 if it is missing; take group and other
    access away from it and its side files if an older mailgate or a loose umask left
    them open. Returns (file, old mode) for every file it had to fix, for the caller to
    say so. A file it cannot touch is left to SQLite to report."""
    if not path or path == ":memory:" or path.startswith("file:"):
        return []
    # Only a missing file is opened (O_EXCL): closing any descriptor of a file drops every
    # POSIX lock this process holds on it, SQLite's shared lock of an open connection
    # too. Without that lock another process that closes its last connection thinks it is
    # the last user and deletes the -wal and -shm under this one, whose commits are then
    # invisible to everyone else (a second Database in a process that has one open).
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    fixed = []
    for name in (path + side for side in SIDE_FILES):
        try:
            mode = os.stat(name).st_mode & 0o777
            if mode & 0o077:
                os.chmod(name, mode & 0o700)
                fixed.append((name, mode))
        except OSError:
            continue
    if fixed:
        structlog.get_logger("mailgate").warning(
            "database files were open to other users; now owner-only",
            files=[f"{name} ({mode:04o})" for name, mode in fixed])
    return fixed


def open_lock_file(path: str) -> int:
    """A descriptor for an flock beside the database: owner-only (the mode given to
    open(2) is only ever narrowed by the umask, so the process-wide umask, which other
    threads may be using, is left alone), and not passed on to programs we exec."""
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


class InstanceLocked(Exception):
    """Another `mailgate serve` holds this SQLite database."""


def hold_instance_lock(url: str) -> int | None:
    """Take the lock that makes a daemon the only one on its SQLite file, for as long
    as the returned descriptor stays open (the kernel drops it when the process dies,
    so a crashed daemon never leaves a stale lock). None for PostgreSQL, where several
    instances share one database by design, and for in-memory databases.

    Not `-writelock`: that one is taken and released per write by every process of
    the one instance (and by CLI verbs), while this one is held for the daemon's life.
    """
    parsed = make_url(url)
    path = parsed.database
    if parsed.get_backend_name() != "sqlite" or not path or path == ":memory:" \
            or path.startswith("file:"):
        return None
    lock_path = f"{path}-instance.lock"
    fd = open_lock_file(lock_path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        os.close(fd)
        raise InstanceLocked(
            f"another mailgate serve{f' (pid {holder})' if holder.isdigit() else ''} "
            f"is already running on {path} (lock {lock_path}); SQLite allows one "
            f"instance per database") from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)    # for the message a second one prints
    return fd


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
        options = conn.get_execution_options()
        write = options.get("mailgate_write", False)
        if write:
            # per connection and outside a transaction: switched only when it changes
            mode = "NORMAL" if options.get("mailgate_lazy", False) else "FULL"
            info = conn.connection.info
            if info.get("mailgate_synchronous", "FULL") != mode:
                conn.exec_driver_sql(f"PRAGMA synchronous={mode}")
                info["mailgate_synchronous"] = mode
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _tune_postgresql(engine: Engine) -> None:
    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        if conn.get_execution_options().get("mailgate_lazy", False):
            conn.exec_driver_sql("SET LOCAL synchronous_commit TO off")


def lock_job(session: Session, name: str) -> None:
    """Serialise one timed job's transactions across instances (PostgreSQL; SQLite's
    write transactions already are), so two instances never send the same reminder."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy import text

        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:n))"),
                        {"n": f"job:{name}"})


# --- large values on SQLite ---------------------------------------------------------------
# Binding a 20 MB value makes SQLite copy it (and build the row from the copy); reading
# one returns it through a second buffer. Above this size the bytes go in and out a
# piece at a time through SQLite's incremental blob I/O instead.
BLOB_PIECES = 1 << 20


def large_blob(session: Session, size: int) -> bool:
    return size > BLOB_PIECES and session.get_bind().dialect.name == "sqlite"


# PostgreSQL: binding a large value copies it into the driver's buffer (a second copy of
# a 15 MB file). Above this size it goes into a temporary large object a piece at a time
# and the server copies it into the row.
PG_PIECES = 4 << 20


def large_write(session: Session, size: int) -> bool:
    """Is a value of `size` bytes inserted empty and then filled by `write_blob`?"""
    if session.get_bind().dialect.name == "sqlite":
        return size > BLOB_PIECES
    return size > PG_PIECES


def empty_value(session: Session, size: int):
    """What a row is inserted with for a value `write_blob` fills afterwards."""
    return func.zeroblob(size) if session.get_bind().dialect.name == "sqlite" else b""


def write_blob(session: Session, table: str, column: str, rowid: int, data) -> None:
    """Fill a value inserted as `empty_value`: `data` is a buffer, or (SQLite) an
    iterator of buffers (written one after another, none held longer than its write)."""
    if session.get_bind().dialect.name != "sqlite":
        _write_large_object(session, table, column, rowid, memoryview(data))
        return
    dbapi = session.connection().connection.dbapi_connection
    with dbapi.blobopen(table, column, rowid) as blob:
        if isinstance(data, bytes | bytearray | memoryview):
            view = memoryview(data)
            for start in range(0, len(view), BLOB_PIECES):
                blob.write(view[start:start + BLOB_PIECES])
        else:
            for piece in data:
                blob.write(piece)


def _write_large_object(session: Session, table: str, column: str, rowid: int,
                        view: memoryview) -> None:
    conn = session.connection()
    oid = conn.execute(text("SELECT lo_create(0)")).scalar_one()
    for at in range(0, len(view), PG_PIECES):
        conn.execute(text("SELECT lo_put(CAST(:oid AS oid), :at, :piece)"),
                     {"oid": oid, "at": at, "piece": view[at:at + PG_PIECES]})
    conn.execute(text(f"UPDATE {table} SET {column} = lo_get(CAST(:oid AS oid)) "
                      "WHERE id = :id"), {"oid": oid, "id": rowid})
    conn.execute(text("SELECT lo_unlink(CAST(:oid AS oid))"), {"oid": oid})


def read_blob(session: Session, table: str, column: str, rowid: int, size: int) -> bytearray:
    dbapi = session.connection().connection.dbapi_connection
    out = bytearray(size)
    with dbapi.blobopen(table, column, rowid, readonly=True) as blob:
        for start in range(0, size, BLOB_PIECES):
            out[start:start + BLOB_PIECES] = blob.read(BLOB_PIECES)
    return out
