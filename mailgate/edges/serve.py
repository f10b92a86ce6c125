"""The `serve` process: SMTP listener, processing loop, outbox loop and timed jobs.

`Daemon.start()` returns only when the SMTP port answers, and re-raises start-up errors.
`Daemon.stop()` shuts down in the order that loses nothing: refuse new connections
(421), let sessions in DATA finish (up to the shutdown timeout), flush the spool, let
the current mail finish processing, stop sending. `DaemonThread` runs the same object
on its own event loop in a background thread: that is how tests run it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading

from mailgate.bootstrap import App
from mailgate.edges.imap import MailboxFetcher
from mailgate.edges.parse_pool import InlineParser, ParsePool
from mailgate.edges.relay import OutboxSender
from mailgate.edges.smtp import IngestHandler, SmtpListener, tls_context
from mailgate.edges.spool import Spool
from mailgate.handlers.ingest import Ingest
from mailgate.handlers.timers import run_reminders, run_timers
from scheduler.jobs import Job, build_scheduler


class Daemon:
    def __init__(self, app: App) -> None:
        self.app = app
        cfg = app.config
        self.loop: asyncio.AbstractEventLoop | None = None
        self.spool = Spool(app.db, on_commit=lambda _ids: self.wake_processor())
        if cfg.processing.parse_workers > 0:
            self.parser: ParsePool | InlineParser = ParsePool(
                cfg.processing.parse_workers, app.limits,
                timeout=cfg.processing.parse_timeout_seconds,
                memory_mb=cfg.processing.parse_memory_mb)
        else:
            self.parser = InlineParser(app.limits)
        self.ingest = Ingest(app, self.parser)
        self.sender = OutboxSender(app)
        handler = IngestHandler(app.recipient_rules, self.spool,
                                max_recipients=cfg.smtp.max_recipients,
                                max_received=cfg.smtp.max_received_headers)
        self.smtp = SmtpListener(handler, host=cfg.smtp.host, port=cfg.smtp.port,
                                 hostname=cfg.smtp.hostname,
                                 data_size_limit=cfg.smtp.max_message_bytes,
                                 max_line_bytes=cfg.smtp.max_line_bytes,
                                 timeout=cfg.smtp.timeout_seconds,
                                 tls_context=tls_context(cfg.smtp.tls_cert_file,
                                                         cfg.smtp.tls_key_file),
                                 require_tls=cfg.smtp.require_tls)
        self._process_wake: asyncio.Event | None = None
        self._send_wake: asyncio.Event | None = None
        self._stopping: asyncio.Event | None = None
        self._tasks: list[asyncio.Task] = []
        self.scheduler = None
        self.address: tuple[str, int] | None = None
        self.fetchers = [MailboxFetcher(app, box, on_stored=lambda _ids: self.wake_processor())
                         for box in cfg.imap]

    # --- wake-ups (thread-safe) ---------------------------------------------------------

    def _set_threadsafe(self, event: asyncio.Event | None) -> None:
        if self.loop is not None and event is not None and not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(event.set)

    def wake_processor(self) -> None:
        self._set_threadsafe(self._process_wake)

    def wake_sender(self) -> None:
        self._set_threadsafe(self._send_wake)

    # --- life cycle ---------------------------------------------------------------------

    async def start(self) -> tuple[str, int]:
        self.loop = asyncio.get_running_loop()
        self._process_wake = asyncio.Event()
        self._send_wake = asyncio.Event()
        self._stopping = asyncio.Event()
        if isinstance(self.parser, ParsePool):
            await asyncio.to_thread(self.parser.start)
        self.spool.start()
        try:
            self.address = await self.smtp.start()
        except BaseException:
            self.spool.stop()
            self.parser.close()
            raise
        self._tasks = [asyncio.create_task(self._process_loop(), name="process"),
                       asyncio.create_task(self._send_loop(), name="send")]
        self.scheduler = build_scheduler(self.loop, self.jobs(), on_error=self._job_failed)
        self.scheduler.start()
        for fetcher in self.fetchers:
            fetcher.start()
        self._process_wake.set()
        self._send_wake.set()
        self.app.log.info("mailgate listening", smtp=f"{self.address[0]}:{self.address[1]}",
                          database=self.app.db.describe(),
                          relay=f"{self.app.config.outbound.host}:"
                                f"{self.app.config.outbound.port}")
        return self.address

    async def stop(self) -> None:
        timeout = self.app.config.smtp.shutdown_timeout_seconds
        cut = await self.smtp.drain(timeout)
        await self.smtp.close()
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        for fetcher in self.fetchers:
            fetcher.stop_event.set()
        for fetcher in self.fetchers:
            await asyncio.to_thread(fetcher.stop)
        await asyncio.to_thread(self.spool.stop)
        self._stopping.set()
        self._process_wake.set()
        self._send_wake.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.to_thread(self.parser.close)
        self.app.log.info("mailgate stopped", sessions_cut=cut)

    # --- timed jobs ---------------------------------------------------------------------

    def jobs(self) -> list[Job]:
        app = self.app

        def timers() -> None:
            now = app.now()
            run_timers(app, now=now)
            run_reminders(app, now=now)

        return [
            # Mail stored by other processes (`mailgate ingest`, another instance) and
            # retries whose backoff has passed are picked up by these wake-ups.
            Job("process-poll", app.config.processing.poll_seconds, self.wake_processor),
            Job("outbox-retry", 10, self.wake_sender),
            Job("workflow-timers", 900, timers, blocking=True, after=self.wake_sender),
            Job("outbox-compact", 3600, self.sender.compact, blocking=True),
        ]

    def _job_failed(self, name: str, exc: BaseException) -> None:
        self.app.log.error("timed job failed", job=name, error=f"{type(exc).__name__}: {exc}"
                           [:300])

    # --- loops --------------------------------------------------------------------------

    async def _wait(self, event: asyncio.Event, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
        event.clear()

    async def _process_loop(self) -> None:
        poll = self.app.config.processing.poll_seconds
        while not self._stopping.is_set():
            try:
                ids = await asyncio.to_thread(self.ingest.claim)
            except Exception as exc:
                self.app.log.error("cannot claim inbound mail", error=str(exc)[:300])
                ids = []
            if ids:
                results = await asyncio.to_thread(self.ingest.run, ids)
                if any(r.queued for r in results):
                    self.wake_sender()
            else:
                await self._wait(self._process_wake, poll)

    async def _send_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                results = await asyncio.to_thread(self.sender.run_due)
            except Exception as exc:
                self.app.log.error("outbox run failed", error=str(exc)[:300])
                results = []
            if not results:
                await self._wait(self._send_wake, 5.0)


class DaemonThread:
    """Run a Daemon in a background thread with its own loop (tests, embedding)."""

    def __init__(self, app: App) -> None:
        self.daemon = Daemon(app)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="mailgate-daemon",
                                       daemon=True)
        self.address: tuple[str, int] | None = None

    def start(self) -> tuple[str, int]:
        self.thread.start()
        future = asyncio.run_coroutine_threadsafe(self.daemon.start(), self.loop)
        self.address = future.result(timeout=60)
        return self.address

    def stop(self) -> None:
        if self.thread.is_alive():
            future = asyncio.run_coroutine_threadsafe(self.daemon.stop(), self.loop)
            future.result(timeout=120)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
        self.loop.close()


async def serve_forever(app: App) -> int:
    daemon = Daemon(app)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    host, port = await daemon.start()
    print(f"mailgate: SMTP on {host}:{port}, database {app.db.describe()}, relay "
          f"{app.config.outbound.host}:{app.config.outbound.port} — Ctrl-C to stop",
          flush=True)
    await stop.wait()
    print("mailgate: stopping (finishing open sessions)", flush=True)
    await daemon.stop()
    return 0
