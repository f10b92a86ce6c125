"""Workflow roles and whose turn it is.

A workflow's statuses name who acts in them (`Status.actors`: digital_coach, customer,
owner, handler, ...). A project maps each role to agents (`mailgate project role`);
`owner` and `handler` are the ticket's own owner and assignee first (the mapping is
their stand-in while a ticket has none), `customer` is the ticket's customers. From
these, `turns` answers who acts on a ticket now, and `waits_on` whether a ticket waits
on a given role or person. Role names are matched like statuses: by key or by a label
in any language, case and accents aside. Pure: the mapping and the ticket are passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from routing.names import pick
from routing.workflow import Workflow

CUSTOMER, OWNER, HANDLER, AGENT = "customer", "owner", "handler", "agent"

# a role's name as each team says it; roles a custom workflow invents show as written
ROLE_LABELS: dict[str, dict[str, str]] = {
    "digital_coach": {"en": "Digital Coach", "de": "Digital Coach", "da": "Digital Coach"},
    "key_account_manager": {"en": "Key Account Manager", "de": "Key Account Manager",
                            "da": "Key Account Manager"},
    "implementer": {"en": "Implementer", "de": "Umsetzer", "da": "Webudvikler"},
    CUSTOMER: {"en": "Customer", "de": "Kunde", "da": "Kunde"},
    OWNER: {"en": "Owner", "de": "Besitzer", "da": "Ejer"},
    HANDLER: {"en": "Handler", "de": "Bearbeiter", "da": "Sagsbehandler"},
    AGENT: {"en": "Agent", "de": "Mitarbeiter", "da": "Medarbejder"},
    "supporter": {"en": "Supporter", "de": "Supporter", "da": "Supporter"},
    "consultant": {"en": "Consultant", "de": "Berater", "da": "Konsulent"},
    "operations": {"en": "Operations", "de": "Betrieb", "da": "TmS Drift"},
    "development": {"en": "Development", "de": "Entwicklung", "da": "Udviklingen"},
    "accounting": {"en": "Accounting", "de": "Buchhaltung", "da": "Bogholderi"},
}


def role_label(role: str, language: str = "en") -> str:
    labels = ROLE_LABELS.get(role)
    if labels:
        return labels.get(language) or labels["en"]
    return role.replace("_", " ").replace("-", " ").strip().title() or role


def role_names(role: str) -> tuple[str, ...]:
    """Everything a role may be called by: its key, spaced, and its labels."""
    return (role, role.replace("_", " "), *ROLE_LABELS.get(role, {}).values())


def workflow_roles(wf: Workflow) -> tuple[str, ...]:
    """The roles a workflow names, in the order its statuses name them."""
    seen: dict[str, None] = {}
    for s in (*wf.statuses.values(), *wf.substatus_info.values()):
        seen.update(dict.fromkeys(a for a in s.actors if a and a != "none"))
    return tuple(seen)


def find_role(text: str, roles: Iterable[str]) -> str | None:
    """The role `text` names among `roles` (key or label, any language; a unique
    prefix too), None when unknown or ambiguous. "Kunde", "customer", "Umsetzer",
    "digital coach" all work."""
    return pick(text, tuple(roles), role_names)


def _steps(wf: Workflow, status: str, substatus: str):
    """The status and, while the ticket is not closed, its sub-status (the finer step,
    e.g. "Afventer godkendelse fra kunde"; None when there is none or it does not apply)."""
    main = wf.statuses.get(status)
    sub = wf.substatus_info.get(substatus) if substatus else None
    if main is not None and main.category == "closed":
        sub = None
    return main, sub


def acting_roles(wf: Workflow, status: str, substatus: str = "") -> tuple[str, ...]:
    """Who acts on a ticket in `status` (and `substatus`): the sub-status's roles when
    it applies (`_steps`), else the status's."""
    main, sub = _steps(wf, status, substatus)
    if sub is not None:
        return tuple(a for a in sub.actors if a != "none")
    return tuple(a for a in main.actors if a != "none") if main else ()


def todo_of(wf: Workflow, status: str, substatus: str = "") -> str:
    """What is to be done now, by the same rule as `acting_roles`."""
    main, sub = _steps(wf, status, substatus)
    if sub is not None and sub.todo:
        return sub.todo
    return main.todo if main else ""


def customer_todo(wf: Workflow, status: str, substatus: str, language: str) -> str:
    """What a customer is asked to do, when the workflow's texts are in the customer's
    `language` (or do not say which): a German `todo` is not put into an English mail."""
    return todo_of(wf, status, substatus) if wf.language in ("", language) else ""


@dataclass(frozen=True)
class Turn:
    """One role whose turn it is, and who plays it on this ticket: agents' addresses,
    or (for the customer role) the ticket's customers'. Empty: nobody is mapped."""

    role: str
    people: tuple[str, ...] = ()

    @property
    def customer(self) -> bool:
        return self.role == CUSTOMER


def players(role: str, role_map: Mapping[str, tuple[str, ...]], *, owner: str = "",
            assignee: str = "", customers: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Who plays `role` on a ticket with this owner, assignee and customers."""
    mapped = tuple(role_map.get(role, ()))
    if role == CUSTOMER:
        return customers
    if role == OWNER:
        return (owner,) if owner else mapped
    if role == HANDLER:
        return (assignee,) if assignee else mapped
    if role == AGENT:       # a workflow that names nobody: the ticket's own agent
        return (assignee or owner,) if (assignee or owner) else mapped
    return mapped


def turns(wf: Workflow, status: str, substatus: str, role_map: Mapping[str, tuple[str, ...]],
          *, owner: str = "", assignee: str = "", customers: tuple[str, ...] = (),
          ) -> tuple[Turn, ...]:
    """Whose turn it is on a ticket: each acting role with the people who play it."""
    return tuple(Turn(r, players(r, role_map, owner=owner, assignee=assignee,
                                 customers=customers))
                 for r in acting_roles(wf, status, substatus))


def waits_on(found: tuple[Turn, ...], *, role: str = "", email: str = "") -> bool:
    """Whether a ticket with these turns waits on `role` (a role key; "customer" for
    the customers) or on the agent `email`."""
    if role:
        return any(t.role == role for t in found)
    return any(not t.customer and email in t.people for t in found)
