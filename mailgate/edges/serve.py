"""The `serve` process: SMTP listener, spool, timed jobs, and the worker that processes
and sends (see `edges.workers`).

`Daemon.start()` returns only when the SMTP port answers, and re-raises start-up errors.
`Daemon.stop()` shuts down in the order that loses nothing: refuse new connections
(421), let sessions in DATA finish (up to the shutdown timeout), flush the spool, let
the current mail finish processing, stop sending. `DaemonThread` runs the same object
on its own event loop in a background thread: that is how tests run it.
"""

from __future__ import annotations

import asyncio
import signal
import threading

from mailgate.bootstrap import App
from mailgate.edges.imap import MailboxFetcher
from mailgate.edges.relay import OutboxSender
from mailgate.edges.smtp import IngestHandler, SmtpListener, tls_context
from mailgate.edges.spool import Spool
from mailgate.edges.workers import Loops, WorkerProcess, make_parser
from mailgate.handlers.timers import run_reminders, run_timers
from scheduler.jobs import Job, build_scheduler


class Daemon:
    def __init__(self, app: App) -> None:
        self.app = app
        cfg = app.config
        self.loop: asyncio.AbstractEventLoop | None = None
        self.spool = Spool(app.db, on_commit=lambda _ids: self.wake_processor())
        if cfg.processing.in_process:
            self.work: Loops | WorkerProcess = Loops(app, make_parser(app))
        else:
            self.work = WorkerProcess(app)
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
        self.scheduler = None
        self.address: tuple[str, int] | None = None
        self.fetchers = [MailboxFetcher(app, box, on_stored=lambda _ids: self.wake_processor())
                         for box in cfg.imap]

    @property
    def ingest(self):
        """The ingest handler, when it runs in this process (`in_process = true`)."""
        return self.work.ingest if isinstance(self.work, Loops) else None

    def wake_processor(self) -> None:
        self.work.wake_processor()

    def wake_sender(self) -> None:
        self.work.wake_sender()

    # --- life cycle ---------------------------------------------------------------------

    async def start(self) -> tuple[str, int]:
        self.loop = asyncio.get_running_loop()
        await asyncio.to_thread(self.work.start)
        self.spool.start()
        try:
            self.address = await self.smtp.start()
        except BaseException:
            self.spool.stop()
            await asyncio.to_thread(self.work.stop)
            raise
        self.scheduler = build_scheduler(self.loop, self.jobs(), on_error=self._job_failed)
        self.scheduler.start()
        for fetcher in self.fetchers:
            fetcher.start()
        self.app.log.info("mailgate listening", smtp=f"{self.address[0]}:{self.address[1]}",
                          database=self.app.db.describe(),
                          relay=f"{self.app.config.outbound.host}:"
                                f"{self.app.config.outbound.port}")
        return self.address

    async def stop(self) -> None:
        """Refuse new connections (421), let sessions in DATA finish, flush the spool,
        let the batch being processed and the mail being sent finish."""
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
        await asyncio.to_thread(self.work.stop)
        self.app.log.info("mailgate stopped", sessions_cut=cut)

    # --- timed jobs ---------------------------------------------------------------------

    def jobs(self) -> list[Job]:
        app = self.app
        sender = OutboxSender(app)

        def timers() -> None:
            now = app.now()
            run_timers(app, now=now)
            run_reminders(app, now=now)

        jobs = [
            # Mail stored by other processes (`mailgate ingest`, another instance) and
            # retries whose backoff has passed are picked up by these wake-ups.
            Job("process-poll", app.config.processing.poll_seconds, self.wake_processor),
            Job("outbox-retry", 10, self.wake_sender),
            Job("workflow-timers", 900, timers, blocking=True, after=self.wake_sender),
            Job("outbox-compact", 3600, sender.compact, blocking=True),
        ]
        if isinstance(self.work, WorkerProcess):
            jobs.append(Job("worker-watch", 2, self.work.watch, blocking=True))
        return jobs

    def _job_failed(self, name: str, exc: BaseException) -> None:
        self.app.log.error("timed job failed", job=name,
                           error=f"{type(exc).__name__}: {exc}"[:300])


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
