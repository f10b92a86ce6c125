"""Applying ticket changes: mail commands, a customer's reply, timers, the CLI.

Every change goes through `apply_state`: it writes the ticket, records one event per
changed field (who, when, old -> new, the status at that moment) and queues the mails the
change causes (agent notifications by preference, customer mail for statuses the workflow
marks as visible, the workflow's per-status notifications). It works inside the caller's
unit of work and never commits.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlmodel import Session

from mailgate import services
from mailgate.bootstrap import App
from mailgate.outgoing import Person
from routing.addresses import is_valid_address
from routing.commands import Actor, Plan, TicketState, World, transcript
from routing.workflow import Timer, Workflow, due_date_reminder, due_reminders, due_timer
from store import queries
from store.models import Agent, Project, Ticket

NOTIFY_EVENTS = ("new_ticket", "customer_reply", "assigned", "status_change", "file_uploaded",
                 "reminder")


def wants(agent: Agent, event: str) -> bool:
    return event in {e.strip() for e in (agent.notify or "").split(",")}


def workflow_of(app: App, project: Project) -> Workflow:
    return app.workflows.get(project.workflow) or app.workflows["support"]


def ticket_state(session: Session, t: Ticket, project: Project) -> TicketState:
    assignee = session.get(Agent, t.assignee_id) if t.assignee_id else None
    contacts = queries.ticket_contacts(session=session, ticket_id=t.id)
    return TicketState(
        number=t.id, project=project.slug, status=t.status, substatus=t.substatus,
        priority=t.priority, assignee=assignee.email if assignee else "", group=t.group_name,
        type=t.ticket_type, due=t.due_date, urgent=t.urgent,
        cc=frozenset(c.email for c, role in contacts if role == "cc"),
        requester=next((c.email for c, role in contacts if role == "requester"), ""))


def actor_for(session: Session, email: str, t: Ticket, state: TicketState) -> Actor:
    agent = queries.agent_by_email(session=session, email=email)
    if agent and agent.active:
        if agent.role == "admin":
            return Actor(email, "admin")
        projects = None if agent.all_projects else frozenset(
            queries.agent_project_slugs(session=session, agent=agent))
        return Actor(email, "agent", projects)
    if email == state.requester or email in state.cc:
        return Actor(email, "customer")
    return Actor(email, "stranger")


def world_for(session: Session, app: App) -> World:
    agents = {}
    for a in queries.agents(session=session):
        if not a.active:
            continue
        projects = None if (a.all_projects or a.role == "admin") else frozenset(
            queries.agent_project_slugs(session=session, agent=a))
        agents[a.email] = (a.name, projects)
    return World(agents=agents, groups=dict(app.config.groups),
                 projects={p.slug: p.workflow for p in queries.projects(session=session)})


# --- applying ---------------------------------------------------------------------------


def apply_state(session: Session, app: App, *, t: Ticket, project: Project,
                before: TicketState, after: TicketState, actor: str, now: dt.datetime,
                changes: list[tuple[str, str, str]], tell_customers: bool = True) -> int:
    """Write `after` to the ticket; returns the number of mails queued. With
    `tell_customers` False the customers hear of a status change some other way (the
    agent's forwarded reply names the new status)."""
    if not changes:
        return 0
    wf_before = workflow_of(app, project)
    if after.project != before.project:
        target = queries.project_by_slug(session=session, slug=after.project)
        t.project_id = target.id
        project = target
    wf = workflow_of(app, project)
    if after.status != before.status:
        t.status = after.status
        t.status_changed_at = now
        closed = wf.category(after.status) == "closed"
        t.closed_at = now if closed else None
    t.substatus = after.substatus
    t.priority = after.priority
    t.group_name = after.group
    t.ticket_type = after.type
    t.due_date = after.due
    t.urgent = after.urgent
    if after.assignee != before.assignee:
        agent = queries.agent_by_email(session=session, email=after.assignee) \
            if after.assignee else None
        t.assignee_id = agent.id if agent else None
    for address in sorted(after.cc - before.cc):
        contact = queries.ensure_contact(session=session, email=address)
        queries.add_ticket_contact(session=session, ticket_id=t.id, contact=contact, role="cc")
    for address in sorted(before.cc - after.cc):
        queries.remove_ticket_contact(session=session, ticket_id=t.id, email=address)
    services.touch(t, now)
    for name, old, new in changes:
        if name == "status":
            old, new = (f"{old} ({wf_before.status_label(old)})",
                        f"{new} ({wf.status_label(new)})")
        services.record_event(session, t, kind=name, actor=actor, now=now, old=old, new=new)
    return _announce(session, app, t=t, project=project, wf=wf, before=before, after=after,
                     actor=actor, now=now, tell_customers=tell_customers)


def _announce(session: Session, app: App, *, t: Ticket, project: Project, wf: Workflow,
              before: TicketState, after: TicketState, actor: str, now: dt.datetime,
              tell_customers: bool) -> int:
    queued = 0
    change = {"old": before.status, "new": after.status, "actor": actor,
              "old_label": workflow_of(app, project).status_label(before.status),
              "new_label": wf.status_label(after.status)}
    if after.assignee and after.assignee != before.assignee and after.assignee != actor:
        agent = queries.agent_by_email(session=session, email=after.assignee)
        if agent and agent.active and wants(agent, "assigned"):
            queued += services.mail_agent(session, app, t=t, project=project, agent=agent,
                                          template="notify_assigned", now=now, change=change)
    if after.status == before.status:
        return queued
    for agent in services.ticket_agents(session, t, project):
        if agent.email != actor and wants(agent, "status_change"):
            queued += services.mail_agent(session, app, t=t, project=project, agent=agent,
                                          template="notify_status_change", now=now,
                                          change=change)
    status = wf.statuses.get(after.status)
    if status and status.customer_visible and tell_customers:
        for customer in services.customers_of(session, t):
            if customer.email != actor:
                queued += services.mail_customer(session, app, t=t, project=project,
                                                 to=customer, template="status_changed",
                                                 now=now, change=change)
    for target in (status.notify if status else ()):
        address = app.config.groups.get(target, target)
        if is_valid_address(address):
            queued += services.mail_customer(session, app, t=t, project=project,
                                             to=Person(address, target),
                                             template="status_notify", now=now, change=change,
                                             kind="status_notify")
        else:
            app.log.warning("status notification has no address", target=target,
                            ticket=t.id, status=after.status)
    return queued


def apply_plan(session: Session, app: App, *, t: Ticket, project: Project, plan_: Plan,
               actor: str, now: dt.datetime, tell_customers: bool = True) -> int:
    if not plan_.applied:
        return 0
    return apply_state(session, app, t=t, project=project, before=plan_.before,
                       after=plan_.after, actor=actor, now=now, changes=plan_.changes,
                       tell_customers=tell_customers)


def set_status(session: Session, app: App, *, t: Ticket, project: Project, status: str,
               substatus: str | None, actor: str, now: dt.datetime) -> int:
    """Move a ticket to `status` (and sub-status) on behalf of `actor` (customer reply,
    timers, CLI); the same events and mails as a mail command."""
    before = ticket_state(session, t, project)
    after = dataclasses.replace(before, status=status,
                                substatus=before.substatus if substatus is None else substatus)
    changes = Plan((), before, after, applied=True).changes
    return apply_state(session, app, t=t, project=project, before=before, after=after,
                       actor=actor, now=now, changes=changes)


def send_transcript(session: Session, app: App, *, t: Ticket, project: Project, to: Person,
                    plan_: Plan, now: dt.datetime, in_reply_to: str = "") -> int:
    return services.mail_customer(session, app, t=t, project=project, to=to,
                                  template="transcript", now=now, kind="transcript",
                                  transcript=transcript(plan_), in_reply_to=in_reply_to)


def run_timers(app: App, *, now: dt.datetime, page: int = 200) -> list[tuple[int, str]]:
    """Move tickets whose workflow timer ran out (e.g. 8 days waiting for approval ->
    closed). Days count from the ticket's last activity. Returns (ticket, new status)."""
    moved: list[tuple[int, str]] = []
    for session, rows in _quiet_pages(app, now=now, page=page, job="timers",
                                      has=lambda timer: bool(timer.to)):
        for t, project in rows:
            wf = workflow_of(app, project)
            timer = due_timer(wf, t.status, t.substatus, _days_quiet(t, now))
            if timer is None or timer.to == t.status:
                continue
            set_status(session, app, t=t, project=project, status=timer.to, substatus=None,
                       actor="system", now=now)
            services.record_event(session, t, kind="timer", actor="system", now=now,
                                  detail=f"{timer.days} days in {timer.when}")
            moved.append((t.id, timer.to))
    for number, status in moved:
        app.log.info("timer moved ticket", ticket=number, status=status)
    return moved


def run_reminders(app: App, *, now: dt.datetime, page: int = 200) -> list[tuple[int, str]]:
    """Send the reminders that are due: workflow reminder timers (e.g. "still waiting for
    your answer" after 4 quiet days) and due dates that have come. Each goes out once: a
    timer's once per quiet spell, a due date's once per date. Returns (ticket, reminder)."""
    sent: list[tuple[int, str]] = []
    for session, rows in _quiet_pages(app, now=now, page=page, job="reminders",
                                      has=lambda timer: bool(timer.remind)):
        for t, project in rows:
            already = queries.event_details(session=session, ticket_id=t.id, kind="reminder",
                                            since=t.updated_at)
            for timer in due_reminders(workflow_of(app, project), t.status, t.substatus,
                                       _days_quiet(t, now), already):
                _remind(session, app, t=t, project=project, timer=timer, now=now)
                sent.append((t.id, timer.key))
    today = now.date()
    for session, rows in _pages(app, job="reminders", page=page, due_by=today):
        for t, project in rows:
            reminded = queries.event_details(session=session, ticket_id=t.id,
                                             kind="due-reminder")
            if not due_date_reminder(t.due_date, today,
                                     workflow_of(app, project).category(t.status), reminded):
                continue
            for agent in services.ticket_agents(session, t, project):
                if wants(agent, "reminder"):
                    services.mail_agent(session, app, t=t, project=project, agent=agent,
                                        template="reminder_due", now=now,
                                        reminder={"days": (today - t.due_date).days,
                                                  "since": t.due_date.isoformat()})
            services.record_event(session, t, kind="due-reminder", actor="system", now=now,
                                  detail=t.due_date.isoformat())
            sent.append((t.id, f"due {t.due_date.isoformat()}"))
    for number, what in sent:
        app.log.info("reminder sent", ticket=number, reminder=what)
    return sent


def _quiet_pages(app: App, *, now: dt.datetime, page: int, job: str, has):
    """`_pages` over the tickets of workflows with timers that `has` picks, quiet for at
    least the shortest of those timers."""
    workflows = {name: wf for name, wf in app.workflows.items() if any(map(has, wf.timers))}
    if not workflows:
        return
    shortest = min(t.days for wf in workflows.values() for t in wf.timers if has(t))
    yield from _pages(app, job=job, page=page, workflows=workflows,
                      quiet_since=now - dt.timedelta(days=shortest))


def _pages(app: App, *, job: str, page: int, **filters):
    """Open tickets in id order, a page at a time, each page in its own transaction that
    holds the job's lock (one instance at a time): yields (session, rows)."""
    last = 0
    while True:
        with app.db.unit() as session:
            queries.lock_job(session=session, name=job)
            rows = queries.open_tickets_page(session=session, after_id=last, limit=page,
                                             **filters)
            yield session, rows
        if len(rows) < page:
            return
        last = rows[-1][0].id


def _days_quiet(t: Ticket, now: dt.datetime) -> float:
    return (now - t.updated_at).total_seconds() / 86400


def _remind(session: Session, app: App, *, t: Ticket, project: Project, timer: Timer,
            now: dt.datetime) -> None:
    """One reminder timer's mail: to each customer of the ticket, or to its agents who
    chose reminders. The log records it either way, so it is not retried every run."""
    reminder = {"days": timer.days, "since": t.updated_at.date().isoformat()}
    if timer.remind == "customer":
        for person in services.customers_of(session, t):
            services.mail_customer(session, app, t=t, project=project, to=person,
                                   template="reminder_customer", now=now, kind="reminder",
                                   reminder=reminder)
    else:
        for agent in services.ticket_agents(session, t, project):
            if wants(agent, "reminder"):
                services.mail_agent(session, app, t=t, project=project, agent=agent,
                                    template="reminder_agent", now=now, reminder=reminder)
    services.record_event(session, t, kind="reminder", actor="system", now=now,
                          detail=timer.key)
