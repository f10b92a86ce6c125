"""The daemon's timed jobs, run where the work is done.

The jobs wake the processing and sending loops, run the workflow timers and reminders,
compact the outbox and apply retention: all of it work of the loops' process, so they
run there, beside the loops (the worker process, or the serving process itself with
`[processing] in_process = true`). The process that speaks SMTP then never loads the
scheduler, the timers or the sender. `TimedJobs` runs them on an event loop of their own
in a thread; each run is kept for `mailgate jobs list`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from mailgate.bootstrap import App
from mailgate.edges.relay import OutboxSender
from mailgate.handlers.jobs import RunRecorder
from mailgate.handlers.retention import run_retention
from mailgate.handlers.timers import run_reminders, run_timers
from scheduler.jobs import Elsewhere, Job, build_scheduler
from store import jobs
from store.leases import exclusive


def timed_jobs(app: App, wake_processor: Callable[[], None],
               wake_sender: Callable[[], None]) -> list[Job]:
    sender = OutboxSender(app)

    def timers() -> str:
        now = app.now()
        moved, sent = run_timers(app, now=now), run_reminders(app, now=now)
        return f"{len(moved)} moved, {len(sent)} reminders"

    return [
        # Mail stored by other processes (`mailgate ingest`, another instance) and
        # retries whose backoff has passed are picked up by these wake-ups.
        Job("process-poll", app.config.processing.poll_seconds, wake_processor),
        Job("outbox-retry", 10, wake_sender),
        Job("workflow-timers", 900, one_instance(app, "workflow-timers", timers),
            blocking=True, after=wake_sender),
        Job("outbox-compact", 3600, one_instance(app, "outbox-compact", sender.compact),
            blocking=True),
        Job("retention", 3600, one_instance(
            app, "retention", lambda: run_retention(app, now=app.now()).summary()),
            blocking=True),
    ]


def one_instance(app: App, name: str, run: Callable[[], object]) -> Callable[[], object]:
    """The job `run`, done by one instance at a time: while another instance holds the
    job's lease this turn is skipped here (and not recorded as a run)."""
    def leased() -> object:
        with exclusive(app.db, f"job:{name}") as mine:
            return run() if mine else Elsewhere("run by another instance")
    return leased


class TimedJobs:
    """The jobs on an event loop of their own, in a thread: wherever they run, the
    process's other loop (if any: the serving process's) is not held up by them."""

    def __init__(self, app: App, wake_processor: Callable[[], None],
                 wake_sender: Callable[[], None]) -> None:
        self.app = app
        self.jobs = timed_jobs(app, wake_processor, wake_sender)
        try:        # e.g. `worker-watch`, a job until 2026-12; only what `jobs list` shows
            with app.db.unit() as session:
                jobs.forget_other_jobs(session=session, names=[j.name for j in self.jobs])
        except Exception as exc:    # the store may be away at start: the jobs run anyway
            app.log.warning("could not forget the runs of old jobs",
                            error=f"{type(exc).__name__}: {exc}"[:300])
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="mailgate-jobs",
                                        daemon=True)
        self._scheduler = build_scheduler(
            self._loop, self.jobs, on_error=self._failed, clock=app.now,
            on_run=RunRecorder(app, intervals={j.name: j.seconds for j in self.jobs}))

    def start(self) -> None:
        self._thread.start()
        self._on_loop(self._scheduler.start)    # APScheduler starts from its loop's thread

    def stop(self) -> None:
        """No new runs; a blocking run under way is let finish, then the loop is closed."""
        if self._loop.is_closed():
            return
        if self._thread.is_alive():
            self._on_loop(lambda: self._scheduler.shutdown(wait=False))
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop.run_until_complete(self._loop.shutdown_default_executor())
        self._loop.close()

    def _on_loop(self, call: Callable[[], object]) -> None:
        async def run() -> None:
            call()
        asyncio.run_coroutine_threadsafe(run(), self._loop).result(30)

    def _failed(self, name: str, exc: BaseException) -> None:
        self.app.log.error("timed job failed", job=name,
                           error=f"{type(exc).__name__}: {exc}"[:300])
