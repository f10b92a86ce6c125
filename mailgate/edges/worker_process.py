"""The serving process's handle on its worker process: start, wake, watch, stop.

Kept apart from the loops the worker runs (`edges.workers`): the process that speaks
SMTP imports this, and none of the processing, sending or timed-job code.

The worker is woken over a pipe whose writing end never blocks: a full pipe already
means "wake up". A worker that dies is started again; the mail it had claimed is taken
up again when its lease runs out.
"""

from __future__ import annotations

import contextlib
import os
import threading

from mailgate import faults
from mailgate.bootstrap import App
from mailgate.edges import children
from mailgate.edges.children import Child, SharedCounter

WAKE_PROCESS, WAKE_SEND, STOP = b"p", b"s", b"x"


class WorkerProcess:
    """The serve process's handle on its worker: start, wake, watch, stop."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._proc: Child | None = None
        self._conn = None
        self._lock = threading.Lock()
        self.stopping = False
        # how many urgent writers (the spool) wait for the database, seen by both sides
        self.urgent = SharedCounter()
        if app.db.gate is not None:
            app.db.gate.shared = self.urgent

    def start(self, *, again: bool = False) -> None:
        # faults armed for this process tree go to the first worker only: a restart is
        # the recovery they test
        spec = "" if again else faults.spec()
        proc, conn = children.start("mailgate.edges.workers", "worker_child",
                                    (self.app.config, spec, self.urgent.fd),
                                    pass_fds=(self.urgent.fd,))
        os.set_blocking(conn.fileno(), False)
        with self._lock:
            self._proc, self._conn = proc, conn

    def _signal(self, what: bytes) -> None:
        with self._lock:
            if self._conn is None:
                return
            with contextlib.suppress(BlockingIOError, BrokenPipeError, OSError):
                self._conn.send_bytes(what)

    def wake_processor(self) -> None:
        self._signal(WAKE_PROCESS)

    def wake_sender(self) -> None:
        self._signal(WAKE_SEND)

    def watch(self) -> None:
        """Start the worker again if it died (called every few seconds by `serve`)."""
        proc = self._proc
        if self.stopping or proc is None or proc.is_alive():
            return
        self.app.log.error("worker process died; starting it again", exitcode=proc.exitcode)
        self._close_conn()
        self.start(again=True)

    def stop(self, timeout: float = 150) -> None:
        self.stopping = True
        proc = self._proc
        if proc is None:
            return
        with self._lock:
            if self._conn is not None:
                os.set_blocking(self._conn.fileno(), True)
                with contextlib.suppress(OSError):
                    self._conn.send_bytes(STOP)
        proc.join(timeout)
        if proc.is_alive():
            proc.kill()
            proc.join(10)
        self._close_conn()

    def _close_conn(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
