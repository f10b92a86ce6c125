"""Who is told what: the mails a ticket event causes, as `MailIntent` values.

Shared by every way a ticket changes (a reply mail, a command, a workflow rule, a timer,
the command line), so a status change announces itself the same way whoever made it.
Pure: the ticket's context and the site are passed in; nothing is rendered here.
"""

from __future__ import annotations

import dataclasses

from routing.actors import Actor, AgentInfo, Person
from routing.addresses import is_valid_address
from routing.change_requests import EVENT as CHANGE_REQUEST
from routing.change_requests import is_change_request
from routing.context import Site, TicketContext, TicketState, field_changes, show_value
from routing.effects import Audience, Booking, Change, LogEvent, MailIntent, MailKind
from routing.every_change import one_mail_per_customer, told_changes
from routing.quota import crossed, show_minutes
from routing.turn_mails import merge_assigned, whose_turn


def ticket_agents(state: TicketState, site: Site) -> tuple[AgentInfo, ...]:
    """The agents a ticket concerns: its handler (assignee) and its owner, or everyone on
    its project when it has neither. The owner hands work on but keeps the overview."""
    if state.assignee or state.owner:
        found = (site.staff.get(e) for e in dict.fromkeys((state.assignee, state.owner)) if e)
        return tuple(a for a in found if a is not None)
    return site.staff.of_project(state.project)


def notify(agent: AgentInfo, template: str, reason: str, *, text: str = "",
           from_name: str = "", change: dict | None = None, reminder: dict | None = None,
           customer: Person | None = None) -> MailIntent:
    return MailIntent(MailKind.NOTIFY, Person(agent.email, agent.name), template, reason,
                      Audience.AGENT, from_name=from_name, text=text, change=change or {},
                      reminder=reminder or {}, note_address=True, customer=customer)


def tell_agents(state: TicketState, site: Site, *, events: tuple[str, ...],
                template: str, reason: str, text: str = "", from_name: str = "",
                customer: Person | None = None, exclude: frozenset[str] = frozenset(),
                ) -> tuple[MailIntent, ...]:
    """A notification to each of the ticket's agents who chose one of `events`."""
    return tuple(notify(a, template, reason, text=text, from_name=from_name,
                        customer=customer)
                 for a in ticket_agents(state, site)
                 if a.email not in exclude and any(a.wants(e) for e in events))


def tell_colleagues(state: TicketState, site: Site, writer: Person, *, text: str,
                    from_name: str = "", customer: Person | None = None,
                    ) -> tuple[MailIntent, ...]:
    """The ticket's other agents who chose `agent_replied`: `writer` answered the
    customer, and with what, so two agents do not answer the same customer twice."""
    return tuple(dataclasses.replace(
        notify(a, "notify_agent_replied", f"{writer.email} answered the customer",
               text=text, from_name=from_name, customer=customer), agent=writer)
        for a in ticket_agents(state, site)
        if a.email != writer.email and a.wants("agent_replied"))


def change_of(before: TicketState, after: TicketState, actor: Actor, site: Site) -> dict:
    old_wf, new_wf = site.workflow_of(before.project), site.workflow_of(after.project)
    return {"old": before.status, "new": after.status, "actor": actor.email,
            "old_label": _label(old_wf, before), "new_label": _label(new_wf, after)}


def _label(wf, t: TicketState) -> str:
    """A status as the customer reads it: with the sub-status, which in a two-level
    workflow is what tells them whose turn it is ("Under behandling, Afventer …")."""
    sub = wf.substatus_labels.get(t.substatus, t.substatus)
    return wf.status_label(t.status) + (f", {sub}" if sub else "")


def changes_and_mails(ctx: TicketContext, before: TicketState, after: TicketState,
                      actor: Actor, site: Site, *, causes: dict[str, str],
                      tell_customers: bool = True,
                      ) -> tuple[tuple[Change, ...], tuple[LogEvent, ...], tuple[MailIntent, ...]]:
    """Everything a move from `before` to `after` by `actor` causes: one change (and log
    entry) per field with what caused it, and the mails that announce it. With
    `tell_customers` False the customers hear of a status change some other way (the
    agent's forwarded reply names the new status)."""
    rows = field_changes(before, after)
    if not rows:
        return (), (), ()
    changes = tuple(Change(name, old, new, causes.get(name, "")) for name, old, new in rows)
    events = tuple(LogEvent(name, actor.email, detail=causes.get(name, ""), old=old, new=new)
                   for name, old, new in rows)
    change = change_of(before, after, actor, site)
    mails: list[MailIntent] = []
    for email, was, how in ((after.assignee, before.assignee, "assigned"),
                            (after.owner, before.owner, "made owner")):
        agent = site.staff.get(email) if email and email not in (was, actor.email) else None
        if agent is not None and agent.wants("assigned"):
            mails.append(notify(agent, "notify_assigned", f"{how} by {actor.email}",
                                change=change))
    if after.due and after.due != before.due:
        # the document: the due date tells the customer when to expect the work done
        mails.extend(MailIntent(MailKind.STATUS, c, "due_date",
                                f"the customer is told the due date {after.due.isoformat()}",
                                Audience.CUSTOMER, change={
                                    **change, "old": show_value(before.due),
                                    "new": show_value(after.due)})
                     for c in ctx.customers if c.email != actor.email)
    if after.status != before.status or after.substatus != before.substatus:
        # whose turn it is now: one mail per agent (it stands in for the status-change and
        # assignment notes); an asked customer gets the ask instead of the status mail
        turned, asked = whose_turn(after, ctx.customers, actor.email, site, change,
                                   ask_customers=tell_customers)
        told = {m.to.email for m in turned}
        mails = merge_assigned(mails, turned)
        mails.extend(notify(a, "notify_status_change", "status changed", change=change)
                     for a in ticket_agents(after, site) if a.email != actor.email
                     and a.wants("status_change") and a.email not in told)
        mails.extend(asked)
        mails.extend(_status_mails(ctx, after, actor, site, change,
                                   tell_customers and not asked))
    # an every-change workflow tells each customer all of it in one mail
    mails = one_mail_per_customer(mails, ctx.customers, actor.email,
                                  told_changes(before, after, site), change, tell=tell_customers)
    mails.extend(change_request_mails(before, after, actor, site))
    return changes, events, tuple(mails)


def _status_mails(ctx: TicketContext, after: TicketState, actor: Actor, site: Site,
                  change: dict, tell_customers: bool) -> list[MailIntent]:
    status = site.workflow_of(after.project).statuses.get(after.status)
    if status is None:
        return []
    mails = []
    if status.customer_visible and tell_customers:
        mails.extend(MailIntent(MailKind.STATUS, c, "status_changed",
                                f"the customer sees status {status.label}", Audience.CUSTOMER,
                                change=change)
                     for c in ctx.customers if c.email != actor.email)
    for target in status.notify:
        address = site.policy.groups.get(target, target)
        if is_valid_address(address):
            mails.append(MailIntent(MailKind.STATUS_NOTIFY, Person(address, target),
                                    "status_notify", f"status {status.label} notifies {target}",
                                    Audience.OTHER, change=change))
        else:
            mails.append(MailIntent(MailKind.STATUS_NOTIFY, Person("", target), "status_notify",
                                    f"status {status.label} names {target!r}, which is no "
                                    "group with an address", Audience.OTHER, change=change))
    return mails


def booked_time(before: TicketState, after: TicketState, actor: Actor, site: Site,
                ) -> tuple[Booking | None, tuple[LogEvent, ...], tuple[MailIntent, ...]]:
    """The booking `/time` made (an event on the ticket: who, how much, against what),
    and a note to the owner when it takes the project over 80% or 100% of its
    contingent: the ticket's owner, else the admins."""
    minutes = after.booked - before.booked
    if not minutes:
        return None, (), ()
    budget = "offer" if after.offer_used != before.offer_used else "project"
    against = ("the ticket's accepted offer" if budget == "offer"
               else f"the contingent of project {after.project}")
    event = LogEvent("time", actor.email, f"{show_minutes(minutes)} against {against}",
                     old=str(before.booked), new=str(after.booked))
    mails: tuple[MailIntent, ...] = ()
    q0, q1 = before.quota, after.quota
    hit = crossed(q0.used, q1.used, q1.added) if budget == "project" and q0 and q1 else None
    if hit:
        owner = site.staff.get(after.owner) if after.owner else None
        to = (owner,) if owner else tuple(a for a in site.staff.agents.values() if a.admin)
        change = {"old": str(q0.percent()), "new": str(q1.percent()), "actor": actor.email,
                  "old_label": f"{show_minutes(q0.used)} of {show_minutes(q0.added)}",
                  "new_label": f"{show_minutes(q1.used)} of {show_minutes(q1.added)}"}
        mails = tuple(notify(a, "notify_quota", f"project {after.project} used {hit}% of "
                             "its contingent", change=change) for a in to)
    return Booking(minutes, actor.email, budget), (event,), mails


def change_request_mails(before: TicketState | None, after: TicketState, actor: Actor,
                         site: Site) -> tuple[MailIntent, ...]:
    """`notify_change_request` to the ticket's agents who chose the event, when `after`
    is a change request and `before` (None: the ticket is new) was not one."""
    if not is_change_request(after.type) or (before is not None
                                             and is_change_request(before.type)):
        return ()
    return tell_agents(after, site, events=(CHANGE_REQUEST,), template="notify_change_request",
                       reason=f"a change request ({after.type}) by {actor.email}",
                       exclude=frozenset({actor.email}))
