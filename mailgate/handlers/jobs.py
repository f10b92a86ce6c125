"""Keep the last run of each timed job in the database, for `mailgate jobs list`.

The scheduler reports every run to a `RunRecorder` (it knows nothing of the database;
the daemon hands it this callable). Wake-ups that run every few seconds would write a
row each time: a run is written when the job runs seldom (a minute or more apart), when
its error changes, or when the job's last record is a minute old.
"""

from __future__ import annotations

import threading
import time

from mailgate.bootstrap import App
from scheduler.jobs import RunReport
from store import jobs

EVERY = 60.0     # seconds between records of a frequent job that keeps going well


class RunRecorder:
    def __init__(self, app: App, *, every: float = EVERY, intervals: dict[str, float]) -> None:
        self.app = app
        self.every = every
        self.intervals = intervals          # job name -> seconds between its runs
        self._last: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def __call__(self, report: RunReport) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(report.name)
            due = (self.intervals.get(report.name, self.every) >= self.every or last is None
                   or last[1] != report.error or now - last[0] >= self.every)
            if not due:
                return
            self._last[report.name] = (now, report.error)
        record(self.app, report)


def record(app: App, report: RunReport) -> None:
    with app.db.unit() as session:
        jobs.record_run(session=session, name=report.name, instance=app.instance,
                        started=report.started, finished=report.finished, error=report.error,
                        next_run=report.next_run, detail=report.detail)
