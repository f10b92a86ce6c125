"""Timed jobs, run by APScheduler on the daemon's event loop.

The scheduler knows nothing of the daemon: it is handed a list of `Job`s, each a name,
an interval and a plain callable. A callable marked `blocking` runs in a worker thread
(it touches the database, which must never hold up the SMTP conversation on the loop);
the others run on the loop itself. A job that fails is logged and runs again at its next
turn. Every job is safe on several instances at once: the work it does is claimed row by
row or under a job lock in the database, so each instance keeps its own in-memory store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from apscheduler.schedulers.asyncio import AsyncIOScheduler


@dataclass(frozen=True)
class Job:
    name: str
    seconds: float
    run: Callable[[], object]
    blocking: bool = False
    after: Callable[[], object] | None = None     # runs on the loop once `run` is done


def build_scheduler(loop: asyncio.AbstractEventLoop, jobs: Sequence[Job], *,
                    on_error: Callable[[str, BaseException], None]) -> AsyncIOScheduler:
    sched = AsyncIOScheduler(event_loop=loop, timezone="UTC",
                             job_defaults={"coalesce": True, "max_instances": 1,
                                           "misfire_grace_time": 30})
    for job in jobs:
        sched.add_job(_wrap(loop, job, on_error), "interval", seconds=job.seconds, id=job.name)
    return sched


def _wrap(loop: asyncio.AbstractEventLoop, job: Job, on_error):
    async def run() -> None:
        try:
            if job.blocking:
                await loop.run_in_executor(None, job.run)
            else:
                job.run()
        except Exception as exc:
            on_error(job.name, exc)
        if job.after is not None:
            job.after()

    run.__name__ = job.name.replace("-", "_")
    return run
