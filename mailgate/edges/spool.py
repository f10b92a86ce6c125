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
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import select

from mailgate import faults
from store.db import Database, large_blob, write_blob
from store.inbox import UNKNOWN_SENDER
from store.models import Inbound, utcnow

_STOP = object()
MAX_BATCH = 64
MAX_BATCH_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Arrival:
    raw: bytes
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
        rows: list[Inbound | int] = []
        large: list[tuple[Inbound, Arrival]] = []
        now = utcnow()
        for a in arrivals:
            if a.imap_key and a.imap_key in existing:
                rows.append(existing[a.imap_key])
                continue
            piecewise = large_blob(session, len(a.raw))
            row = Inbound(received_at=now, source=a.source, peer=a.peer[:200],
                          helo=a.helo[:255],
                          mail_from=UNKNOWN_SENDER if a.mail_from is None else a.mail_from[:512],
                          rcpt_tos=list(a.rcpt_tos), size=len(a.raw),
                          raw=func.zeroblob(len(a.raw)) if piecewise else a.raw,
                          sha256=hashlib.sha256(a.raw).hexdigest(), imap_key=a.imap_key,
                          instance=instance[:200])
            session.add(row)
            rows.append(row)
            if piecewise:
                large.append((row, a))
            if a.imap_key:
                existing[a.imap_key] = row
        session.flush()
        for row, a in large:
            write_blob(session, "inbound", "raw", row.id, a.raw)
        ids = [r if isinstance(r, int) else r.id for r in rows]
        faults.hit("spool.before_commit")
    faults.hit("spool.after_commit")
    return ids


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
        return await asyncio.wrap_future(self.submit(arrival))

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
            for _, future in batch:
                _settle(future, exception=exc)
            return
        self.commits += 1
        # A session that vanished mid-DATA cancelled its future: the row is stored all
        # the same (the sender's retry collapses into it), and the others still get 250.
        for (_, future), row_id in zip(batch, ids, strict=True):
            _settle(future, result=row_id)
        if self.on_commit is not None:
            self.on_commit(ids)


def _settle(future: concurrent.futures.Future, *, result=None, exception=None) -> None:
    if future.cancelled():
        return
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        if exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(result)
