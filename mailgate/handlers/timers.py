"""Timers: move tickets whose workflow timer ran out, send the reminders that are due.

Open tickets are scanned a page at a time; each page is gathered in one go (contexts,
loop counts), decided by `routing.timed` and applied in one transaction that holds the
job's lock, so two instances never send the same reminder. Every reminder is recorded
in the ticket's log, which is how the next run knows it went out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from sqlmodel import Session

from mailgate.bootstrap import App
from mailgate.handlers.apply import apply_effects
from mailgate.handlers.gather import Batch, for_tickets
from routing import timed
from store import tickets
from store.db import lock_job


def run_timers(app: App, *, now: dt.datetime, page: int = 200) -> list[tuple[int, str]]:
    """Move tickets whose move timer ran out (e.g. 8 days waiting for approval ->
    closed). Days count from the ticket's last activity. Returns (ticket, new status)."""
    moved: list[tuple[int, str]] = []
    for session, batch in _quiet_pages(app, now=now, page=page, job="timers",
                                       has=lambda timer: bool(timer.to)):
        for ctx in list(batch.contexts.values()):
            effects = timed.moved_by_timer(ctx, _days_quiet(ctx, now), batch.site,
                                           batch.guard_facts())
            if effects is not None:
                apply_effects(session, app, effects, site=batch.site, ctx=ctx, now=now,
                              batch=batch)
                moved.append((ctx.number, effects.after.status))
    for number, status in moved:
        app.log.info("timer moved ticket", ticket=number, status=status)
    return moved


def run_reminders(app: App, *, now: dt.datetime, page: int = 200) -> list[tuple[int, str]]:
    """Send the reminders that are due: workflow reminder timers (e.g. "still waiting for
    your answer" after 4 quiet days) and due dates that have come. Each goes out once: a
    timer's once per quiet spell, a due date's once per date. Returns (ticket, reminder)."""
    sent: list[tuple[int, str]] = []
    for session, batch in _quiet_pages(app, now=now, page=page, job="reminders",
                                       has=lambda timer: bool(timer.remind)):
        log = tickets.event_details(session=session, numbers=batch.contexts, kind="reminder")
        for ctx in list(batch.contexts.values()):
            spell = frozenset(d for at, d in log[ctx.number] if ctx.updated and at >= ctx.updated)
            effects, keys = timed.reminders(ctx, _days_quiet(ctx, now), spell, batch.site,
                                            batch.guard_facts())
            if effects is not None:
                apply_effects(session, app, effects, site=batch.site, ctx=ctx, now=now,
                              batch=batch)
                sent.extend((ctx.number, key) for key in keys)
    today = now.date()
    for session, batch in _pages(app, now=now, job="reminders", page=page, due_by=today):
        log = tickets.event_details(session=session, numbers=batch.contexts,
                                    kind="due-reminder")
        for ctx in list(batch.contexts.values()):
            reminded = frozenset(d for _, d in log[ctx.number])
            effects = timed.due_date(ctx, today, reminded, batch.site, batch.guard_facts())
            if effects is not None:
                apply_effects(session, app, effects, site=batch.site, ctx=ctx, now=now,
                              batch=batch)
                sent.append((ctx.number, f"due {ctx.state.due.isoformat()}"))
    for number, what in sent:
        app.log.info("reminder sent", ticket=number, reminder=what)
    return sent


def _quiet_pages(app: App, *, now: dt.datetime, page: int, job: str, has,
                 ) -> Iterator[tuple[Session, Batch]]:
    """`_pages` over the tickets of workflows with timers that `has` picks, quiet for at
    least the shortest of those timers."""
    workflows = {name: wf for name, wf in app.workflows.items() if any(map(has, wf.timers))}
    if not workflows:
        return
    shortest = min(t.days for wf in workflows.values() for t in wf.timers if has(t))
    yield from _pages(app, now=now, job=job, page=page, workflows=workflows,
                      quiet_since=now - dt.timedelta(days=shortest))


def _pages(app: App, *, now: dt.datetime, job: str, page: int, **filters,
           ) -> Iterator[tuple[Session, Batch]]:
    """Open tickets in id order, a page at a time, each page gathered in one go and
    applied in its own transaction that holds the job's lock (one instance at a time)."""
    last = 0
    while True:
        with app.db.unit() as session:
            lock_job(session, job)
            rows = tickets.open_tickets_page(session=session, after_id=last, limit=page,
                                             **filters)
            if rows:
                yield session, for_tickets(session, app, [t.id for t, _ in rows], now)
        if len(rows) < page:
            return
        last = rows[-1][0].id


def _days_quiet(ctx, now: dt.datetime) -> float:
    return (now - ctx.updated).total_seconds() / 86400 if ctx.updated else 0.0
