"""Queries over `job_runs`: the last run of each timed job, whichever instance ran it.

Each takes a keyword-only `session` and never commits. One row per job, overwritten by
every run (an upsert, so two instances recording the same job never collide).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from store.models import JobRun

_TABLE = JobRun.__table__


def record_run(*, session: Session, name: str, instance: str, started: dt.datetime,
               finished: dt.datetime | None, error: str, next_run: dt.datetime | None,
               detail: str = "") -> None:
    values = {"name": name[:100], "instance": instance[:200], "started": started,
              "finished": finished, "error": error[:2000], "next_run": next_run,
              "detail": detail[:2000]}
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(_TABLE).values(values)
    stmt = stmt.on_conflict_do_update(index_elements=["name"],
                                      set_={k: stmt.excluded[k] for k in values if k != "name"})
    session.connection().execute(stmt)


def forget_other_jobs(*, session: Session, names: Iterable[str]) -> int:
    """Remove the runs of jobs that are not (any longer) among `names`: a job an older
    version ran would otherwise show in `jobs list` as overdue forever."""
    return session.connection().execute(
        delete(_TABLE).where(_TABLE.c.name.not_in(sorted(names)))).rowcount


def job_runs(*, session: Session) -> list[JobRun]:
    return list(session.exec(select(JobRun).order_by(JobRun.name)))
