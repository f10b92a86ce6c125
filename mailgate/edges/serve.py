"""The `serve` process: SMTP (and LMTP) listeners, spool, the metrics page, and the
worker that processes, sends and runs the timed jobs (see `edges.workers`,
`edges.timed`).

`Daemon.start()` returns only when the SMTP port (and the LMTP socket or port, and the
metrics port, when configured) answers, and re-raises start-up errors.
`Daemon.stop()` shuts down in the order that loses nothing: refuse new connections
(421), let sessions in DATA finish (up to the shutdown timeout), flush the spool, let
the current mail finish processing, stop sending. `DaemonThread` runs the same object
on its own event loop in a background thread: that is how tests run it.
`serve_forever` is the `mailgate serve` process: it tells systemd (Type=notify) when the
listener answers, pings its watchdog from the event loop, and says when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import threading
from typing import TYPE_CHECKING

from mailgate.bootstrap import App
from mailgate.config import trust_warning
from mailgate.edges.lmtp import LmtpListener
from mailgate.edges.smtp import IngestHandler, SmtpListener, tls_context
from mailgate.edges.spool import Spool
from mailgate.edges.worker_process import WorkerProcess
from mailgate.handlers import ServiceError
from store.db import InstanceLocked, hold_instance_lock

if TYPE_CHECKING:
    from mailgate.edges.metrics import Metrics
    from mailgate.edges.timed import TimedJobs
    from mailgate.edges.workers import Loops

WATCH_SECONDS = 2.0     # how often a dead worker process is looked for


class Daemon:
    def __init__(self, app: App) -> None:
        self.app = app
        cfg = app.config
        self.loop: asyncio.AbstractEventLoop | None = None
        self.spool = Spool(app.db, on_commit=lambda _ids: self.wake_processor(),
                           instance=app.instance)
        self.timed: TimedJobs | None = None
        if cfg.processing.in_process:
            # the loops and the timed jobs here: imported only then (the worker process
            # has them; the serving process otherwise never loads them)
            from mailgate.edges.timed import TimedJobs
            from mailgate.edges.workers import Loops, make_parser
            self.work: Loops | WorkerProcess = Loops(app, make_parser(app))
            self.timed = TimedJobs(app, self.work.wake_processor, self.work.wake_sender)
        else:
            self.work = WorkerProcess(app)
        self.metrics: Metrics | None = None
        if cfg.metrics.listen:
            # imported only when used: prometheus_client and imap_tools cost a daemon that
            # has no metrics port or no mailbox memory for nothing
            from mailgate.edges.metrics import build_metrics, instance_name
            self.metrics = build_metrics(app.db, cfg.metrics.listen,
                                         instance_name(cfg.metrics.instance, cfg.smtp.port))
        handler = self._handler("smtp")
        self.smtp = SmtpListener(handler, host=cfg.smtp.host, port=cfg.smtp.port,
                                 hostname=cfg.smtp.hostname,
                                 data_size_limit=cfg.smtp.max_message_bytes,
                                 max_line_bytes=cfg.smtp.max_line_bytes,
                                 timeout=cfg.smtp.timeout_seconds,
                                 tls_context=tls_context(cfg.smtp.tls_cert_file,
                                                         cfg.smtp.tls_key_file),
                                 require_tls=cfg.smtp.require_tls)
        self.watching: asyncio.Task | None = None
        self.address: tuple[str, int] | None = None
        self.fetchers = []
        if cfg.imap:
            from mailgate.edges.imap import MailboxFetcher
            self.fetchers = [MailboxFetcher(app, box,
                                            on_stored=lambda _ids: self.wake_processor())
                             for box in cfg.imap]
        self.lmtp: LmtpListener | None = None
        if cfg.lmtp.socket or cfg.lmtp.port:
            # the SMTP limits: an MTA in front must not get through what SMTP refuses
            self.lmtp = LmtpListener(self._handler("lmtp"), path=cfg.lmtp.socket,
                                     host=cfg.lmtp.host, port=cfg.lmtp.port,
                                     hostname=cfg.smtp.hostname,
                                     data_size_limit=cfg.smtp.max_message_bytes,
                                     max_line_bytes=cfg.smtp.max_line_bytes,
                                     timeout=cfg.smtp.timeout_seconds)
        if self.metrics is not None:
            for fetcher in self.fetchers:
                self.metrics.counters.watch_fetcher(fetcher)

    def _handler(self, listener: str) -> IngestHandler:
        cfg = self.app.config
        return IngestHandler(self.app.recipient_rules, self.spool,
                             max_recipients=cfg.smtp.max_recipients,
                             max_received=cfg.smtp.max_received_headers, source=listener,
                             on_reply=self.metrics.counters.on_reply(listener)
                             if self.metrics is not None else None)

    @property
    def ingest(self):
        """The ingest handler, when it runs in this process (`in_process = true`)."""
        return None if isinstance(self.work, WorkerProcess) else self.work.ingest

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
            await self._start_extras()
        except BaseException:
            await self.smtp.close()
            if self.lmtp is not None:
                await self.lmtp.close()
            self.spool.stop()
            await asyncio.to_thread(self.work.stop)
            if self.timed is not None:
                await asyncio.to_thread(self.timed.stop)
            raise
        if self.timed is not None:
            self.timed.start()
        if isinstance(self.work, WorkerProcess):
            self.watching = asyncio.create_task(self._watch_worker())
        for fetcher in self.fetchers:
            fetcher.start()
        if warning := trust_warning(self.app.config):
            self.app.log.warning(warning)
        self.app.log.info("mailgate listening", smtp=f"{self.address[0]}:{self.address[1]}",
                          lmtp=self.lmtp.describe() if self.lmtp else "off",
                          metrics=f"{self.metrics.server.host}:{self.metrics.server.port}"
                          if self.metrics else "off",
                          database=self.app.db.describe(),
                          relay=f"{self.app.config.outbound.host}:"
                                f"{self.app.config.outbound.port}")
        return self.address

    async def _start_extras(self) -> None:
        """LMTP and metrics; their errors name them (the CLI's OSError message is
        about the SMTP port)."""
        if self.lmtp is not None:
            try:
                await self.lmtp.start()
            except OSError as exc:
                raise ServiceError(f"cannot listen for LMTP on {self.lmtp.describe()}: "
                                   f"{exc.strerror or exc}") from None
        if self.metrics is not None:
            try:
                await asyncio.to_thread(self.metrics.server.start)
            except OSError as exc:
                raise ServiceError(f"cannot serve metrics on {self.app.config.metrics.listen}"
                                   f": {exc.strerror or exc}") from None

    async def stop(self) -> None:
        """Refuse new connections (421), let sessions in DATA finish, flush the spool,
        let the batch being processed and the mail being sent finish."""
        timeout = self.app.config.smtp.shutdown_timeout_seconds
        listeners = [self.smtp] + ([self.lmtp] if self.lmtp is not None else [])
        cut = sum(await asyncio.gather(*(lst.drain(timeout) for lst in listeners)))
        for lst in listeners:
            await lst.close()
        if self.metrics is not None:
            await asyncio.to_thread(self.metrics.server.stop)
        if self.timed is not None:
            await asyncio.to_thread(self.timed.stop)
        if self.watching is not None:
            self.watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.watching
        for fetcher in self.fetchers:
            fetcher.stop_event.set()
        for fetcher in self.fetchers:
            await asyncio.to_thread(fetcher.stop)
        await asyncio.to_thread(self.spool.stop)
        await asyncio.to_thread(self.work.stop)
        self.app.log.info("mailgate stopped", sessions_cut=cut)

    async def _watch_worker(self) -> None:
        """Start the worker again if it died (and log it), every few seconds."""
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            try:
                await asyncio.to_thread(self.work.watch)
            except Exception as exc:    # never let the watch itself stop
                self.app.log.error("worker watch failed",
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


# --- systemd ------------------------------------------------------------------------------
# sd_notify(3) is one datagram per message to $NOTIFY_SOCKET; written out here rather than
# taken from the `sdnotify` package because it is that small, and because the variables
# must also be taken out of the environment: the worker processes inherit it, and under
# NotifyAccess=main only this process may speak for the service.


def notify_target(address: str) -> str:
    """'@name' is a socket in the abstract namespace: a leading NUL byte on the wire."""
    return "\0" + address[1:] if address.startswith("@") else address


def watchdog_interval(usec: str, for_pid: str, pid: int) -> float | None:
    """Seconds between WATCHDOG=1 pings (half the interval systemd allows), or None when
    no watchdog is armed or it is armed for another process."""
    if not usec.isdigit() or int(usec) == 0 or (for_pid and for_pid != str(pid)):
        return None
    return int(usec) / 2_000_000


class SystemdNotifier:
    def __init__(self, address: str, watchdog: float | None) -> None:
        self.address = address          # empty: not run by systemd, every call a no-op
        self.watchdog = watchdog

    @classmethod
    def from_environ(cls) -> SystemdNotifier:
        address = os.environ.pop("NOTIFY_SOCKET", "")
        usec = os.environ.pop("WATCHDOG_USEC", "")
        for_pid = os.environ.pop("WATCHDOG_PID", "")
        return cls(address, watchdog_interval(usec, for_pid, os.getpid()) if address
                   else None)

    def notify(self, *lines: str) -> None:
        if not self.address:
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock, \
                contextlib.suppress(OSError):   # systemd gone: nothing to tell
            sock.sendto("\n".join(lines).encode(), notify_target(self.address))

    async def ping_watchdog(self) -> None:
        """Runs on the event loop: a loop that hangs stops the pings, and systemd
        restarts the service."""
        while self.watchdog:
            self.notify("WATCHDOG=1")
            await asyncio.sleep(self.watchdog)


async def serve_forever(app: App) -> int:
    systemd = SystemdNotifier.from_environ()     # before the worker processes start
    try:
        # held until this process ends (the descriptor is never closed before that)
        lock = hold_instance_lock(app.config.database.url)
    except InstanceLocked as exc:
        raise ServiceError(str(exc)) from None
    daemon = Daemon(app)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    host, port = await daemon.start()       # every listener answers: READY may be sent
    lmtp = f", LMTP on {daemon.lmtp.describe()}" if daemon.lmtp is not None else ""
    print(f"mailgate: SMTP on {host}:{port}{lmtp}, database {app.db.describe()}, relay "
          f"{app.config.outbound.host}:{app.config.outbound.port} — Ctrl-C to stop",
          flush=True)
    systemd.notify("READY=1", f"STATUS=SMTP on {host}:{port}{lmtp}, relay "
                              f"{app.config.outbound.host}:{app.config.outbound.port}")
    pings = asyncio.create_task(systemd.ping_watchdog())
    await stop.wait()
    systemd.notify("STOPPING=1", "STATUS=stopping: finishing open sessions")
    print("mailgate: stopping (finishing open sessions)", flush=True)
    await daemon.stop()
    pings.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await pings
    if lock is not None:
        os.close(lock)
    return 0
