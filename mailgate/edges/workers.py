"""The processing and sending loops, and the worker process that runs them.

`Loops` runs the ingest handler and the outbox sender, each in its own thread, woken
when there is work (`wake_processor`, `wake_sender`) and otherwise polling at a slow
pace for work stored by other processes. `serve` runs the loops in a worker process of
their own (started and watched through `edges.worker_process`), so the process that
speaks SMTP does nothing but accept and commit, and both cores work; the worker runs
the timed jobs beside them (`edges.timed`). With `[processing] in_process = true`
`serve` runs the loops as threads of its own instead (one process: simpler to debug,
slower).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from mailgate import faults
from mailgate.bootstrap import App, build_app
from mailgate.config import Config
from mailgate.edges.children import SharedCounter
from mailgate.edges.parse_pool import InlineParser, ParsePool, lower_priority, name_process
from mailgate.edges.relay import OutboxSender
from mailgate.edges.timed import TimedJobs
from mailgate.edges.worker_process import STOP, WAKE_PROCESS, WAKE_SEND


def make_parser(app: App) -> ParsePool | InlineParser:
    cfg = app.config.processing
    if cfg.parse_workers > 0:
        return ParsePool(cfg.parse_workers, app.limits, timeout=cfg.parse_timeout_seconds,
                         memory_mb=cfg.parse_memory_mb)
    return InlineParser(app.limits)


class Loops:
    def __init__(self, app: App, parser, *, on_queued: Callable[[], None] | None = None) -> None:
        self.app = app
        self.parser = parser
        # imported here: the serve process, which runs its loops in the worker, never
        # loads the processing code (decide, gather, apply, DKIM: ~3 MB resident)
        from mailgate.handlers.ingest import Ingest

        self.ingest = Ingest(app, parser)
        self.sender = OutboxSender(app)
        self._process = threading.Event()
        self._send = threading.Event()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._process_loop, name="mailgate-process",
                                          daemon=True),
                         threading.Thread(target=self._send_loop, name="mailgate-send",
                                          daemon=True)]
        self.on_queued = on_queued or self.wake_sender

    def start(self) -> None:
        if isinstance(self.parser, ParsePool):
            self.parser.start()
        for t in self._threads:
            t.start()
        self.wake_processor()
        self.wake_sender()

    def wake_processor(self) -> None:
        self._process.set()

    def wake_sender(self) -> None:
        self._send.set()

    def stop(self) -> None:
        """Let the batch in hand and the mail being sent finish, then stop."""
        self._stop.set()
        self._process.set()
        self._send.set()
        for t in self._threads:
            t.join(120)
        self.parser.close()

    def _wait(self, event: threading.Event, timeout: float) -> None:
        event.wait(timeout)
        event.clear()

    def _process_loop(self) -> None:
        """Claim a batch and have it read and parsed (in a thread of its own, by the
        parse workers) while the batch before it is decided and applied; on stop, the
        batch in hand is applied before the loop ends."""
        poll = self.app.config.processing.poll_seconds
        ahead = ThreadPoolExecutor(1, thread_name_prefix="mailgate-prepare")
        current: Future | None = None
        try:
            while current is not None or not self._stop.is_set():
                upcoming, results = None, []
                try:
                    ids = [] if self._stop.is_set() else self.ingest.claim()
                    upcoming = ahead.submit(self.ingest.prepare, ids) if ids else None
                except Exception as exc:   # the batch in hand is applied all the same
                    self._failed(exc)
                try:
                    if current is not None:
                        results = self.ingest.apply(current.result())
                except Exception as exc:   # never let one bad batch stop the loop
                    self._failed(exc)      # its rows come again when their lease runs out
                current = upcoming
                if any(r.queued for r in results):
                    self.on_queued()
                if current is None:
                    self._wait(self._process, poll)
        finally:
            ahead.shutdown(wait=True)

    def _failed(self, exc: Exception) -> None:
        self.app.log.exception("processing loop failed", error=str(exc)[:300])
        self._stop.wait(1.0)

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            try:
                results = self.sender.run_due()
            except Exception as exc:
                self.app.log.error("outbox run failed", error=str(exc)[:300])
                results = []
            if not results:    # mail queued elsewhere (the CLI) is seen within a poll
                self._wait(self._send, self.sender.idle_seconds(
                    self.app.config.processing.poll_seconds))


def _worker_main(config: Config, conn, fault_spec: str, urgent) -> None:
    """The worker process: its own store connections, parse workers and loops."""
    name_process("mailgate-work")
    lower_priority(config.processing.nice)   # its parse workers inherit it
    faults.arm(fault_spec)
    app = build_app(config, run_migrations=False)
    if app.db.gate is not None:
        app.db.gate.shared = urgent
    loops = Loops(app, make_parser(app))
    loops.start()
    jobs = TimedJobs(app, loops.wake_processor, loops.wake_sender)
    jobs.start()
    try:
        while True:
            try:
                signal = conn.recv_bytes()
            except (EOFError, OSError):
                break          # the serve process is gone
            if signal == STOP:
                break
            if signal == WAKE_PROCESS:
                loops.wake_processor()
            elif signal == WAKE_SEND:
                loops.wake_sender()
    finally:
        jobs.stop()
        loops.stop()
        app.db.dispose()
        # Everything is closed: skip the interpreter's slow exit (it joins the
        # executor threads once more).
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(0)


def worker_child(conn, config: Config, fault_spec: str, urgent_fd: int) -> None:
    """Where the worker process starts (`children.start`)."""
    _worker_main(config, conn, fault_spec, SharedCounter(urgent_fd))
