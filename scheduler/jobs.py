"""Timed jobs, run by APScheduler on an event loop it is given.

The scheduler knows nothing of the daemon: it is handed a list of `Job`s, each a name,
an interval and a plain callable. A callable marked `blocking` runs in a worker thread
(it touches the database, which must never hold up the loop); the others run on the
loop itself. A job that fails is logged and runs again at its next
turn. Every job is safe on several instances at once: the work it does is claimed row by
row or under a job lock in the database, so each instance keeps its own in-memory store.
Each run is reported as a `RunReport` to an `on_run` callable, if one is given (the
daemon keeps the last run of each job for `mailgate jobs list`); a job that returns a
string has it reported as what the run did.
"""

from __future__ import annotations

import asyncio
import datetime as dt
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


@dataclass(frozen=True)
class RunReport:
    name: str
    started: dt.datetime
    finished: dt.datetime
    error: str                  # "" when it went well
    next_run: dt.datetime
    detail: str = ""            # what the job said it did


class Elsewhere(str):
    """What a job returns when another instance holds its lease and runs it: nothing was
    done here, so nothing is reported (the last run shown stays the other instance's)."""


OnError = Callable[[str, BaseException], None]
OnRun = Callable[[RunReport], None]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def run_job(job: Job, *, on_error: OnError, on_run: OnRun | None = None,
            clock: Callable[[], dt.datetime] = _utcnow) -> RunReport:
    """Run one job once, here and now, and report it (the scheduler calls this; so may a
    test with a fake clock). Its error is reported, never raised."""
    started, error, detail, said = clock(), "", "", None
    try:
        said = job.run()
        detail = said if isinstance(said, str) else ""
    except Exception as exc:
        on_error(job.name, exc)
        error = f"{type(exc).__name__}: {exc}"[:2000]
    finished = clock()
    report = RunReport(job.name, started, finished, error,
                       started + dt.timedelta(seconds=job.seconds), detail)
    if not isinstance(said, Elsewhere):
        _report(report, on_run, on_error)
    return report


def _report(report: RunReport, on_run: OnRun | None, on_error: OnError) -> None:
    if on_run is None:
        return
    try:
        on_run(report)
    except Exception as exc:    # keeping the record must not stop the job
        on_error(f"{report.name} (recording its run)", exc)


def build_scheduler(loop: asyncio.AbstractEventLoop, jobs: Sequence[Job], *,
                    on_error: OnError, on_run: OnRun | None = None,
                    clock: Callable[[], dt.datetime] = _utcnow) -> AsyncIOScheduler:
    sched = AsyncIOScheduler(event_loop=loop, timezone="UTC",
                             job_defaults={"coalesce": True, "max_instances": 1,
                                           "misfire_grace_time": 30})
    for job in jobs:
        sched.add_job(_wrap(loop, job, on_error, on_run, clock), "interval",
                      seconds=job.seconds, id=job.name)
    return sched


def _wrap(loop: asyncio.AbstractEventLoop, job: Job, on_error: OnError, on_run: OnRun | None,
          clock: Callable[[], dt.datetime]):
    async def run() -> None:
        if job.blocking:
            # the record is kept in the same worker thread: it touches the database
            await loop.run_in_executor(None, lambda: run_job(job, on_error=on_error,
                                                             on_run=on_run, clock=clock))
        else:
            report = run_job(job, on_error=on_error, clock=clock)
            if on_run is not None:      # the job ran on the loop; its record must not
                await loop.run_in_executor(None, _report, report, on_run, on_error)
        if job.after is not None:
            job.after()

    run.__name__ = job.name.replace("-", "_")
    return run
