"""The durable inbox: raw mail in, a committed `Inbound` row id out.

Every ingest path (SMTP, IMAP, `mailgate ingest`) hands its bytes here and answers the
sender only after `accept` returns. One writer thread commits whatever has queued up
in a single transaction (group commit), so sixteen concurrent SMTP sessions cost one
fsync, not sixteen. If the commit fails, every mail in that batch gets the error and
its sender is told to retry: nothing is acknowledged that was not committed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy import insert
from sqlmodel import select

from mailgate import faults
from mailgate.edges.spill import SpilledRaw
from store.db import BLOB_PIECES, Database
from store.inbox import UNKNOWN_SENDER, slices, write_pieces
from store.models import Inbound, utcnow

_STOP = object()
_INSERT = insert(Inbound).returning(Inbound.id, sort_by_parameter_order=True)
MAX_BATCH = 64
MAX_BATCH_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Arrival:
    raw: bytes | SpilledRaw        # a large mail from SMTP/LMTP waits in a file
    mail_from: str | None         # the envelope sender: "" null (a bounce), None unknown
    rcpt_tos: tuple[str, ...]
    source: str = "smtp"
    peer: str = ""
    helo: str = ""
    imap_key: str | None = None   # mailbox + UIDVALIDITY + UID: the same IMAP mail twice is one row


def store_arrivals(db: Database, arrivals: list[Arrival], *, instance: str = "") -> list[int]:
    """Insert and commit in one transaction; returns the row ids in order. `instance`
    names the mailgate that took them in."""
    with db.unit(urgent=True) as session:
        keys = [a.imap_key for a in arrivals if a.imap_key]
        existing = {}
        if keys:
            existing = {key: row_id for key, row_id in session.exec(
                select(Inbound.imap_key, Inbound.id).where(Inbound.imap_key.in_(keys))).all()}
        rows: list[dict | int] = []     # a new row's values, or the id of one stored before
        new: list[dict] = []
        large: list[tuple[dict, Arrival]] = []
        now = utcnow()
        for a in arrivals:
            if a.imap_key and a.imap_key in existing:
                rows.append(existing[a.imap_key])
                continue
            size = len(a.raw)
            piecewise = size > BLOB_PIECES      # a piece per row (store.inbox.write_pieces)
            spilled = isinstance(a.raw, SpilledRaw)
            row = dict(received_at=now, source=a.source, peer=a.peer[:200],
                       helo=a.helo[:255],
                       mail_from=UNKNOWN_SENDER if a.mail_from is None else a.mail_from[:512],
                       rcpt_tos=list(a.rcpt_tos), size=size,
                       raw=b"" if piecewise else a.raw.read() if spilled else a.raw,
                       sha256=a.raw.sha256 if spilled else hashlib.sha256(a.raw).hexdigest(),
                       imap_key=a.imap_key, instance=instance[:200])
            new.append(row)
            rows.append(row)
            if piecewise:
                large.append((row, a))
            if a.imap_key:
                existing[a.imap_key] = row
        if new:   # one INSERT for the batch (no ORM objects: half the spool's CPU)
            for row, row_id in zip(new, session.execute(_INSERT, new).scalars().all(),
                                   strict=True):
                row["id"] = row_id
        for row, a in large:
            write_pieces(session=session, inbound_id=row["id"], pieces=_pieces(a.raw))
        ids = [r if isinstance(r, int) else r["id"] for r in rows]
        faults.hit("spool.before_commit")
    faults.hit("spool.after_commit")
    return ids


def _pieces(raw) -> Iterator:
    return raw.pieces(BLOB_PIECES) if isinstance(raw, SpilledRaw) else slices(raw)


class Spool:
    def __init__(self, db: Database, *, on_commit: Callable[[list[int]], None] | None = None,
                 max_batch: int = MAX_BATCH, instance: str = "") -> None:
        self.db = db
        self.instance = instance
        self.on_commit = on_commit
        self.max_batch = max_batch
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self.commits = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mailgate-spool", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Finish what is queued, then stop."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None

    def submit(self, arrival: Arrival) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        if self._thread is None:
            future.set_exception(RuntimeError("spool is not running"))
        else:
            self._queue.put((arrival, future))
        return future

    async def accept(self, arrival: Arrival) -> int:
        """`submit` for a session on an event loop: the loop is woken once per commit
        with every id of that batch, not once per mail."""
        if self._thread is None:
            raise RuntimeError("spool is not running")
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self._queue.put((arrival, (loop, waiter)))
        return await waiter

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            if item is _STOP:
                break
            batch = [item]
            size = len(item[0].raw)
            while len(batch) < self.max_batch and size < MAX_BATCH_BYTES:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stopping = True
                    break
                batch.append(nxt)
                size += len(nxt[0].raw)
            self._commit(batch)

    def _commit(self, batch: list) -> None:
        try:
            ids = store_arrivals(self.db, [a for a, _ in batch], instance=self.instance)
        except BaseException as exc:   # the batch failed: each sender hears "retry"
            _settle_batch(batch, [None] * len(batch), exc)
            return
        self.commits += 1
        # A session that vanished mid-DATA cancelled its future: the row is stored all
        # the same (the sender's retry collapses into it), and the others still get 250.
        _settle_batch(batch, ids)
        if self.on_commit is not None:
            self.on_commit(ids)


def _settle_batch(batch: list, ids: list, exception: BaseException | None = None) -> None:
    """Answer every waiter of a batch: `submit`'s futures here, `accept`'s with one
    call into each event loop they wait on."""
    on_loops: dict[asyncio.AbstractEventLoop, list] = {}
    for (_, waiter), row_id in zip(batch, ids, strict=True):
        if isinstance(waiter, concurrent.futures.Future):
            _settle(waiter, result=row_id, exception=exception)
        else:
            on_loops.setdefault(waiter[0], []).append((waiter[1], row_id))
    for loop, waiters in on_loops.items():
        with contextlib.suppress(RuntimeError):    # that loop is closed: nobody waits
            loop.call_soon_threadsafe(_settle_waiters, waiters, exception)


def _settle_waiters(waiters: list, exception: BaseException | None) -> None:
    for waiter, row_id in waiters:
        if waiter.done():          # cancelled: its session is gone
            continue
        if exception is not None:
            waiter.set_exception(exception)
        else:
            waiter.set_result(row_id)


def _settle(future: concurrent.futures.Future, *, result=None, exception=None) -> None:
    if future.cancelled():
        return
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        if exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(result)
