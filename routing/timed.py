"""What the clock causes on one ticket: workflow timers, reminders, due dates.

Each function takes a ticket's context and how long it has been quiet and returns the
`Effects` (or None when nothing is due), through the same announcements and guards as
a change made by mail. Pure: the caller passes in the time and what went out before.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from routing.actors import SYSTEM
from routing.announce import changes_and_mails, notify, ticket_agents
from routing.context import Site, TicketContext
from routing.effects import Audience, Effects, LogEvent, MailIntent, MailKind, Outcome
from routing.guards import GuardFacts, guarded
from routing.workflow import due_date_reminder, due_reminders, due_timer


def moved_by_timer(ctx: TicketContext, days_quiet: float, site: Site,
                   guard: GuardFacts) -> Effects | None:
    """A move timer that ran out (e.g. 8 days waiting for approval -> closed)."""
    state = ctx.state
    timer = due_timer(ctx.workflow, state.status, state.substatus, days_quiet)
    if timer is None or timer.to == state.status:
        return None
    why = f"{timer.days} days in {timer.when}"
    after = replace(state, status=timer.to)
    changes, events, mails = changes_and_mails(ctx, state, after, SYSTEM, site,
                                               causes={"status": f"timer: {why}"})
    return guarded(Effects(Outcome.DONE, f"timer: {why}", "timer", ticket=ctx.number,
                            before=state, after=after, changes=changes, mails=mails,
                            events=(*events, LogEvent("timer", "system", why))), guard, ctx.number)


def reminders(ctx: TicketContext, days_quiet: float, sent: frozenset[str], site: Site,
              guard: GuardFacts) -> tuple[Effects | None, tuple[str, ...]]:
    """Reminder timers that ran out and were not sent in this quiet spell: a mail to
    each customer, or to the agents who chose reminders. Returns the effects and the
    reminders' keys."""
    state = ctx.state
    due = due_reminders(ctx.workflow, state.status, state.substatus, days_quiet, sent)
    if not due:
        return None, ()
    mails: list[MailIntent] = []
    events: list[LogEvent] = []
    since = ctx.updated.date().isoformat() if ctx.updated else ""
    for timer in due:
        reminder = {"days": timer.days, "since": since}
        if timer.remind == "customer":
            mails.extend(MailIntent(MailKind.REMINDER, c, "reminder_customer",
                                    f"reminder: {timer.key}", Audience.CUSTOMER,
                                    reminder=reminder) for c in ctx.customers)
        else:
            mails.extend(notify(a, "reminder_agent", f"reminder: {timer.key}",
                                reminder=reminder)
                         for a in ticket_agents(state, site) if a.wants("reminder"))
        events.append(LogEvent("reminder", "system", timer.key))
    # a reminder is no activity: the ticket stays as quiet as it was
    effects = Effects(Outcome.DONE, "reminder", "timer", ticket=ctx.number,
                      mails=tuple(mails), events=tuple(events))
    return guarded(effects, guard, ctx.number), tuple(t.key for t in due)


def due_date(ctx: TicketContext, today: dt.date, reminded: frozenset[str], site: Site,
             guard: GuardFacts) -> Effects | None:
    """The agents are reminded once per due date, the day it comes."""
    state = ctx.state
    if not due_date_reminder(state.due, today, ctx.workflow.category(state.status), reminded):
        return None
    reminder = {"days": (today - state.due).days, "since": state.due.isoformat()}
    mails = tuple(notify(a, "reminder_due", f"due {state.due.isoformat()}", reminder=reminder)
                  for a in ticket_agents(state, site) if a.wants("reminder"))
    effects = Effects(Outcome.DONE, "due date", "timer", ticket=ctx.number, mails=mails,
                      events=(LogEvent("due-reminder", "system", state.due.isoformat()),))
    return guarded(effects, guard, ctx.number)

