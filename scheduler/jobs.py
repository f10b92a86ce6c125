"""The daemon's timed jobs, run by APScheduler on the daemon's event loop.

Every job is a thin call into a shared handler and is safe to run on several instances
at once: work is claimed row by row in the database (SKIP LOCKED on PostgreSQL), so
each instance keeps its own in-memory job store and nothing runs twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler

if TYPE_CHECKING:
    from mailgate.daemon import Daemon


def build_scheduler(daemon: Daemon) -> AsyncIOScheduler:
    cfg = daemon.app.config
    sched = AsyncIOScheduler(event_loop=daemon.loop, timezone="UTC",
                             job_defaults={"coalesce": True, "max_instances": 1,
                                           "misfire_grace_time": 30})
    # Mail stored by other processes (`mailgate ingest`, another instance) and retries
    # whose backoff has passed are picked up by these wake-ups. Jobs are coroutines so
    # they run on the daemon's loop, not in a thread pool that dies with it.
    sched.add_job(_call(daemon.wake_processor), "interval",
                  seconds=cfg.processing.poll_seconds, id="process-poll")
    sched.add_job(_call(daemon.wake_sender), "interval", seconds=10, id="outbox-retry")
    sched.add_job(_timers(daemon), "interval", minutes=15, id="workflow-timers")
    return sched


def _timers(daemon: Daemon):
    """Workflow timers (auto-close after N days) and reminders (quiet tickets, due
    dates) in a worker thread: they touch the database, which must not block the SMTP
    conversation on the loop."""
    from mailgate.changes import run_reminders, run_timers

    def both() -> None:
        now = app.now()
        run_timers(app, now=now)
        run_reminders(app, now=now)

    app = daemon.app

    async def job() -> None:
        try:
            await daemon.loop.run_in_executor(None, both)
        except Exception:
            app.log.exception("workflow timers failed")
        daemon.wake_sender()

    return job


def _call(fn):
    async def job() -> None:
        fn()

    job.__name__ = fn.__name__
    return job
