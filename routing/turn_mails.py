"""The mails that tell people it is their turn, when a ticket enters a status.

Agents who play an acting role get `notify_your_turn` with the status's "what to do";
when the customer acts, the customers get `ask_customer` instead of the plain status
mail. An agent is told once per change: the turn mail stands in for the status-change
and the assignment notification, and the notification of a customer's reply or of a
new ticket (which brings the text itself) says whose turn it is instead. Pure; used
by `routing.announce` and `routing.decide`.
"""

from __future__ import annotations

from dataclasses import replace

from routing.actors import Person
from routing.context import Site, TicketState
from routing.effects import Audience, MailIntent, MailKind
from routing.roles import customer_todo, role_label, todo_of, turns

YOUR_TURN, ASK_CUSTOMER = "notify_your_turn", "ask_customer"
# notifications that already tell an agent everything a turn mail would
_RICHER = ("notify_customer_reply", "notify_new_ticket")


def ticket_turns(site: Site, state: TicketState, customers: tuple[Person, ...] = ()):
    """Whose turn it is on a ticket in `state` (see `routing.roles.turns`)."""
    info = site.projects.get(state.project)
    return turns(site.workflow_of(state.project), state.status, state.substatus,
                 info.role_map() if info else {}, owner=state.owner, assignee=state.assignee,
                 customers=tuple(c.email for c in customers))


def whose_turn(after: TicketState, customers: tuple[Person, ...], actor: str, site: Site,
               change: dict, *, ask_customers: bool = True,
               ) -> tuple[tuple[MailIntent, ...], tuple[MailIntent, ...]]:
    """(agents' turn mails, customers' asks) for a ticket that entered `after`'s status.
    Whoever made the change (`actor`) is not told; an agent playing several roles gets
    one mail naming them all."""
    info = site.projects.get(after.project)
    language = info.language if info else "en"
    wf = site.workflow_of(after.project)
    todo = todo_of(wf, after.status, after.substatus)
    roles_of: dict[str, list[str]] = {}
    asked: list[MailIntent] = []
    for turn in ticket_turns(site, after, customers):
        label = role_label(turn.role, language)
        if turn.customer:
            if ask_customers:
                asked.extend(MailIntent(
                    MailKind.STATUS, c, ASK_CUSTOMER, f"the customer acts in "
                    f"{change.get('new_label', after.status)}", Audience.CUSTOMER,
                    change={**change, "role": label, "todo": customer_todo(
                        wf, after.status, after.substatus, language)})
                    for c in customers if c.email != actor)
            continue
        for email in turn.people:
            agent = site.staff.get(email)
            if agent is not None and email != actor and agent.works_on(after.project):
                roles_of.setdefault(email, []).append(label)
    agents = tuple(MailIntent(
        MailKind.NOTIFY, Person(email, site.staff.name_of(email)), YOUR_TURN,
        f"acts as {', '.join(labels)} in {change.get('new_label', after.status)}",
        Audience.AGENT, change={**change, "todo": todo, "role": ", ".join(labels)},
        note_address=True) for email, labels in roles_of.items())
    return agents, tuple(asked)


def merge_assigned(mails: list[MailIntent], turn_mails: tuple[MailIntent, ...],
                   ) -> list[MailIntent]:
    """`mails` plus `turn_mails`, where an agent both assigned (or made owner) and told
    it is their turn gets the turn mail only, which says so (`change.assigned`: handler
    or owner)."""
    turned = {t.to.email for t in turn_mails}
    assigned = {m.to.email: "owner" if m.reason.startswith("made owner") else "handler"
                for m in mails if m.template == "notify_assigned" and m.to.email in turned}
    kept = [m for m in mails if not (m.template == "notify_assigned" and m.to.email in turned)]
    return kept + [replace(t, change={**t.change, "assigned": assigned[t.to.email]})
                   if t.to.email in assigned else t for t in turn_mails]


def one_mail_each(mails: list[MailIntent]) -> list[MailIntent]:
    """An agent who gets a customer's reply or a new ticket in the same go gets no
    separate turn mail: that notification says whose turn it is (`change.role`,
    `change.todo`) and already brings them to the ticket."""
    turns_to = {m.to.email: m for m in mails if m.template == YOUR_TURN}
    told = {m.to.email for m in mails if m.template in _RICHER} & set(turns_to)
    untold = set(told)                  # told once, even with two notifications
    out = []
    for m in mails:
        if m.template == YOUR_TURN and m.to.email in told:
            continue
        if m.template in _RICHER and m.to.email in untold:
            turn = turns_to[m.to.email].change
            m = replace(m, change={**m.change, **{k: turn[k] for k in (
                "role", "todo", "old_label", "new_label") if k in turn}})
            untold.discard(m.to.email)
        out.append(m)
    return out


def opening_turns(state: TicketState, label: str, customer: Person, site: Site,
                  ) -> tuple[MailIntent, ...]:
    """Turn mails for a ticket just opened in its first status (the customer, who
    opened it, gets the acknowledgement instead)."""
    change = {"old": "", "new": state.status, "actor": customer.email, "old_label": "",
              "new_label": label}
    agents, _ = whose_turn(state, (customer,), customer.email, site, change,
                           ask_customers=False)
    return agents
