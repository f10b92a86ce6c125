"""Who is told what: the mails a ticket event causes, as `MailIntent` values.

Shared by every way a ticket changes (a reply mail, a command, a workflow rule, a timer,
the command line), so a status change announces itself the same way whoever made it.
Pure: the ticket's context and the site are passed in; nothing is rendered here.
"""

from __future__ import annotations

from routing.actors import Actor, AgentInfo, Person
from routing.addresses import is_valid_address
from routing.context import Site, TicketContext, TicketState, field_changes
from routing.effects import Audience, Change, LogEvent, MailIntent, MailKind


def ticket_agents(state: TicketState, site: Site) -> tuple[AgentInfo, ...]:
    """The agents a ticket concerns: its assignee, or everyone on its project."""
    if state.assignee:
        agent = site.staff.get(state.assignee)
        return (agent,) if agent else ()
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


def change_of(before: TicketState, after: TicketState, actor: Actor, site: Site) -> dict:
    old_wf, new_wf = site.workflow_of(before.project), site.workflow_of(after.project)
    return {"old": before.status, "new": after.status, "actor": actor.email,
            "old_label": old_wf.status_label(before.status),
            "new_label": new_wf.status_label(after.status)}


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
    if after.assignee and after.assignee != before.assignee and after.assignee != actor.email:
        agent = site.staff.get(after.assignee)
        if agent is not None and agent.wants("assigned"):
            mails.append(notify(agent, "notify_assigned", f"assigned by {actor.email}",
                                change=change))
    if after.status != before.status:
        mails.extend(notify(a, "notify_status_change", "status changed", change=change)
                     for a in ticket_agents(after, site)
                     if a.email != actor.email and a.wants("status_change"))
        mails.extend(_status_mails(ctx, after, actor, site, change, tell_customers))
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
