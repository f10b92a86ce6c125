"""What customers are told when their workflow says "every change" (`notify_customer`).

The forum-like request system promises its customers a mail about every change, so that
nobody has to log in to look: the status, the priority, who handles the request (by
name, never by address) and the due date. Everything one action changes (an agent's
mail with several commands, a command-line action, a timer) is told in ONE mail: the
forwarded reply carries the list when the agent wrote something, else a `changes` mail
does. Workflows with "visible-statuses" (the default) keep to a status mail when a ticket
enters a customer-visible status (routing.announce). Pure.
"""

from __future__ import annotations

from dataclasses import replace

from routing.actors import Person
from routing.context import PRIORITY_NAMES, Site, TicketState
from routing.effects import Audience, MailIntent, MailKind
from routing.workflow import Workflow

EVERY_CHANGE = "every-change"
TOLD = ("status", "priority", "assignee", "due")    # the fields a customer hears of


def every_change(wf: Workflow) -> bool:
    return wf.notify_customer == EVERY_CHANGE


def status_text(wf: Workflow, t: TicketState) -> str:
    """A status as the customer reads it, with the sub-status when there is one."""
    sub = wf.substatus_labels.get(t.substatus, t.substatus)
    return wf.status_label(t.status) + (f", {sub}" if sub else "")


def told_changes(before: TicketState, after: TicketState, site: Site,
                 ) -> tuple[dict[str, str], ...]:
    """The rows a customer is told of, `{"field", "old", "new"}` in the order of `TOLD`,
    as the customer reads them (labels, agents' names, ISO dates); none unless the
    ticket's workflow says every-change. A move into a status the workflow hides from
    customers (`customer_visible = false`) stays untold."""
    wf = site.workflow_of(after.project)
    if not every_change(wf):
        return ()
    rows = []
    if (before.status, before.substatus) != (after.status, after.substatus):
        target = wf.statuses.get(after.status)
        if target is None or target.customer_visible:
            rows.append(_row("status", status_text(site.workflow_of(before.project), before),
                             status_text(wf, after)))
    if before.priority != after.priority:
        rows.append(_row("priority", PRIORITY_NAMES.get(before.priority, str(before.priority)),
                         PRIORITY_NAMES.get(after.priority, str(after.priority))))
    if before.assignee != after.assignee:
        rows.append(_row("assignee", _name(before.assignee, site), _name(after.assignee, site)))
    if before.due != after.due:
        rows.append(_row("due", before.due.isoformat() if before.due else "",
                         after.due.isoformat() if after.due else ""))
    return tuple(rows)


def _row(name: str, old: str, new: str) -> dict[str, str]:
    return {"field": name, "old": old, "new": new}


def _name(email: str, site: Site) -> str:
    """An agent as customers see them: the name, else the desk's name; never the address
    (customers write to the ticket's reply address, not to a person)."""
    if not email:
        return ""
    return site.staff.name_of(email) or site.policy.support_name


# customer mails a `changes` mail stands in for; a mail asking the customer to act
# (routing.turn_mails) is kept and carries the list instead
_REPLACED = ("status_changed", "due_date")
_CARRIES = ("ask_customer",)


def one_mail_per_customer(mails: list[MailIntent], customers: tuple[Person, ...], actor: str,
                          rows: tuple[dict[str, str], ...], change: dict, *,
                          tell: bool) -> list[MailIntent]:
    """`mails` with every customer told of `rows` in one mail: the status and due-date
    mails give way to one `changes` mail, or to the list on a mail that asks the customer
    to act. With `tell` False the caller's own mail (a forwarded reply) carries the list,
    so none is added here."""
    if not rows:
        return mails
    kept = [m for m in mails if not (m.audience is Audience.CUSTOMER
                                     and m.template in _REPLACED)]
    if not tell:
        return kept
    carried = {m.to.email for m in kept if m.template in _CARRIES}
    out = [replace(m, changes=rows) if m.template in _CARRIES else m for m in kept]
    what = ", ".join(r["field"] for r in rows)
    out.extend(MailIntent(MailKind.STATUS, c, "changes", f"the customer is told of every "
                          f"change ({what})", Audience.CUSTOMER, change=change, changes=rows)
               for c in customers if c.email != actor and c.email not in carried)
    return out
