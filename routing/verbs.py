"""The verbs of mail commands, one small class each, registered in `REGISTRY`.

A verb parses its argument once into a value, says whether a customer may use it on a
ticket in its current status, and applies the value to a `TicketState`, returning the
new state and a sentence for the transcript, or the reason it cannot. Pure.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from typing import Any

from routing.actors import Actor, ActorKind
from routing.addresses import is_valid_address, normalize_address
from routing.context import PRIORITY_NAMES, TicketState, World
from routing.quota import OFFER_STATES, parse_duration, show_minutes
from routing.workflow import (
    Workflow,
    customer_approval,
    customer_may_close,
    customer_may_reopen,
    may_move,
    slug,
)

PRIORITIES = {"1": 1, "low": 1, "2": 2, "normal": 2, "3": 3, "high": 3,
              # the words our German and Danish users write
              "niedrig": 1, "hoch": 3, "lav": 1, "høj": 3, "hoej": 3}


class Invalid(ValueError):
    """An argument a verb cannot read; the message is for the sender."""


class Verb:
    name = ""
    arg = "required"                 # required | none
    customers_may = False            # customers may use it (the workflow still decides)

    def parse(self, arg: str) -> Any:
        return arg

    def permitted(self, t: TicketState, wf: Workflow) -> str:
        """Why a customer may not use it on this ticket now ("" = may)."""
        return ""

    def apply(self, value: Any, t: TicketState, wf: Workflow, world: World,
              actor: Actor) -> tuple[TicketState, str] | str:
        raise NotImplementedError


class Status(Verb):
    name = "status"

    def parse(self, arg: str) -> tuple[str, str]:
        main, _, sub = arg.partition(",")
        return main.strip(), sub.strip()

    def apply(self, value, t, wf, world, actor):
        main, sub = value
        target = wf.find_status(main)
        if target is None:
            return (f"unknown status {main!r}; valid: "
                    + ", ".join(f"{s.name} ({s.label})" for s in wf.statuses.values()))
        why = may_move(wf, t.status, target.name)
        if why:
            return why
        new = replace(t, status=target.name)
        if sub:
            if not wf.substatuses:
                return "this workflow has no sub-statuses"
            found = wf.find_substatus(sub)
            if found is None:
                return f"unknown sub-status {sub!r}; valid: " + ", ".join(wf.substatuses)
            new = replace(new, substatus=found)
        return new, f"status is now {target.label}" + (f", {sub}" if sub else "")


class Close(Verb):
    name, arg, customers_may = "close", "none", True

    def permitted(self, t, wf):
        if customer_may_close(wf, t.status):
            return ""
        return (f"the ticket is {wf.status_label(t.status)}; it can be confirmed only when "
                + (" or ".join(wf.status_label(s) for s in wf.customer_close_from)
                   or "an agent closes it"))

    def apply(self, value, t, wf, world, actor):
        # a customer's /close confirms (customer_close); an agent's closes (close)
        confirms = actor.kind == ActorKind.CUSTOMER and t.status in wf.customer_close_from
        target = wf.customer_close if confirms else wf.close
        return replace(t, status=target), f"status is now {wf.status_label(target)}"


class Reopen(Verb):
    name, arg, customers_may = "reopen", "none", True

    def permitted(self, t, wf):
        if customer_may_reopen(wf, t.status):
            return ""
        return f"the ticket is {wf.status_label(t.status)}; customers cannot reopen it now"

    def apply(self, value, t, wf, world, actor):
        if wf.category(t.status) != "closed" and t.status not in wf.customer_close_from:
            return f"the ticket is {wf.status_label(t.status)}, not closed"
        new = replace(t, status=wf.reopen)
        if wf.urgent_on_reopen:
            new = replace(new, urgent=True, priority=3)
        return new, f"status is now {wf.status_label(wf.reopen)}" + (
            " (marked urgent)" if wf.urgent_on_reopen else "")


class Approve(Verb):
    """The customer's approval: the workflow's `customer_approve` says what it does in
    the ticket's (sub-)status: close it, or record a test version's acceptance."""

    name, arg, customers_may = "approve", "none", True

    def permitted(self, t, wf):
        if customer_approval(wf, t.status, t.substatus):
            return ""
        return f"the ticket is {wf.status_label(t.status)}; it waits for no approval now"

    def apply(self, value, t, wf, world, actor):
        target = customer_approval(wf, t.status, t.substatus)
        if target is None:
            return f"the ticket is {wf.status_label(t.status)}; it waits for no approval now"
        new = replace(t, status=target[0], substatus=target[1])
        return new, (f"approved: status is now {wf.status_label(new.status)}, "
                     f"{wf.substatus_labels.get(new.substatus, new.substatus)}")


class Priority(Verb):
    name, customers_may = "priority", True

    def permitted(self, t, wf):
        return "" if "priority" in wf.customer_may else \
            "customers may not set the priority in this workflow"

    def parse(self, arg: str) -> int:
        if arg.lower() not in PRIORITIES:
            raise Invalid("priority must be low, normal or high (or 1-3)")
        return PRIORITIES[arg.lower()]

    def apply(self, value, t, wf, world, actor):
        return replace(t, priority=value), f"priority is now {value} ({PRIORITY_NAMES[value]})"


class _AgentField(Verb):
    """Puts an agent of the ticket's project ("me" is the sender) into `field`."""

    field = ""
    done = ""                        # the transcript's sentence, with {email}

    def apply(self, value, t, wf, world, actor):
        wanted = actor.email if value.lower() in ("me", "myself") else value
        email = find_agent(wanted, world, t.project)
        if email is None:
            return f"no agent of project {t.project} matches {value!r}"
        return replace(t, **{self.field: email}), self.done.format(email=email)


class Assign(_AgentField):
    name, field, done = "assign", "assignee", "assigned to {email}"


class Owner(_AgentField):
    """The owner keeps the overview while the assignee (the handler) does the work."""

    name, field, done = "owner", "owner", "owner is now {email}"


class Group(Verb):
    name, customers_may = "group", True

    def permitted(self, t, wf):
        return "" if "group" in wf.customer_may else \
            "customers may not choose the group in this workflow"

    def parse(self, arg: str) -> str:
        return slug(arg)

    def apply(self, value, t, wf, world, actor):
        if value not in world.groups:
            return f"unknown group {value!r}; valid: " + (", ".join(world.groups) or "(none)")
        new = replace(t, group=value)
        owner = world.groups[value]
        if owner not in world.agents:
            return new, f"group is now {value}"
        # the group's owner takes the ticket over; the handler stays if there is one
        new = replace(new, owner=owner)
        if not t.assignee:
            return replace(new, assignee=owner), f"group is now {value}; assigned to its " \
                                                 f"owner {owner}"
        return new, f"group is now {value}; its owner {owner} owns the ticket"


class Type(Verb):
    name = "type"

    def parse(self, arg: str) -> str:
        return slug(arg)

    def apply(self, value, t, wf, world, actor):
        if wf.types and value not in wf.types:
            return f"unknown type {value!r}; valid: " + ", ".join(wf.types)
        return replace(t, type=value), f"type is now {value}"


class Due(Verb):
    name = "due"

    def parse(self, arg: str) -> dt.date | None:
        if arg.lower() in ("none", "-"):
            return None
        try:
            return dt.date.fromisoformat(arg)
        except ValueError:
            raise Invalid("due date must look like 2026-12-31 (or none)") from None

    def apply(self, value, t, wf, world, actor):
        if value is None:
            return replace(t, due=None), "due date removed"
        return replace(t, due=value), f"due date is now {value.isoformat()}"


class Time(Verb):
    """Books time: against the ticket's accepted offer, else its project's contingent."""

    name = "time"

    def parse(self, arg: str) -> int:
        try:
            return parse_duration(arg)
        except ValueError as exc:
            raise Invalid(str(exc)) from None

    def apply(self, value, t, wf, world, actor):
        new = replace(t, booked=t.booked + value)
        if t.offer_state == "accepted":
            return replace(new, offer_used=t.offer_used + value), \
                f"{show_minutes(value)} booked against the accepted offer " \
                f"({show_minutes(t.offer_used + value)} of {show_minutes(t.offer_minutes)})"
        if t.quota is None:
            return new, f"{show_minutes(value)} booked (project {t.project} has no contingent)"
        quota = replace(t.quota, used=t.quota.used + value)
        return replace(new, quota=quota), \
            f"{show_minutes(value)} booked against the contingent of project {t.project} " \
            f"({show_minutes(quota.left)} left)"


class Offer(Verb):
    """`/offer 6h` records an offer sent; `/offer accepted` gives the ticket that budget."""

    name = "offer"

    def parse(self, arg: str) -> tuple[str, int]:
        word = arg.strip().lower()
        if word in OFFER_STATES[1:]:
            return word, 0
        try:
            minutes = parse_duration(word)
        except ValueError:
            raise Invalid("use /offer 6h (an offer sent), /offer accepted or "
                          "/offer declined") from None
        if minutes < 0:
            raise Invalid("an offer is a positive duration, such as /offer 6h")
        return "sent", minutes

    def apply(self, value, t, wf, world, actor):
        state, minutes = value
        if state == "sent":
            return replace(t, offer_state="sent", offer_minutes=minutes), \
                f"offer of {show_minutes(minutes)} recorded as sent"
        if not t.offer_minutes:
            return "no offer is recorded on this ticket; record one first with /offer 6h"
        if state == "accepted":
            return replace(t, offer_state="accepted"), \
                f"offer accepted: the ticket has its own budget of {show_minutes(t.offer_minutes)}"
        return replace(t, offer_state="declined"), "offer declined"


class Note(Verb):
    name, arg = "note", "none"

    def apply(self, value, t, wf, world, actor):
        return t, "this mail is kept as an internal note"


class Cc(Verb):
    name = "cc"

    def parse(self, arg: str) -> tuple[str, str]:
        action, _, address = arg.partition(" ")
        if action.lower() not in ("add", "remove") or not is_valid_address(address.strip()):
            raise Invalid("use /cc add EMAIL or /cc remove EMAIL")
        return action.lower(), normalize_address(address.strip())

    def apply(self, value, t, wf, world, actor):
        action, address = value
        if action == "add":
            return replace(t, cc=t.cc | {address}), f"{address} added to the ticket"
        if address not in t.cc:
            return f"{address} is not on the ticket"
        return replace(t, cc=t.cc - {address}), f"{address} removed from the ticket"


class Project(Verb):
    name = "project"

    def parse(self, arg: str) -> str:
        return arg.strip().lower()

    def apply(self, value, t, wf, world, actor):
        if value not in world.projects:
            return f"unknown project {value!r}"
        return replace(t, project=value), f"moved to project {value}"


_REPLY_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def valid_reply_name(name: str) -> bool:
    """A canned reply's name is a file name stem: never a path."""
    return bool(_REPLY_NAME.fullmatch(name))


class Template(Verb):
    """`/template NAME` puts canned reply NAME above the agent's text. Only the name is
    checked here; the handler renders it (see mailgate.handlers.canned)."""

    name = "template"

    def parse(self, arg: str) -> str:
        name = arg.strip().lower()
        if not valid_reply_name(name):
            raise Invalid("use /template NAME (see: mailgate template list --replies)")
        return name

    def apply(self, value, t, wf, world, actor):
        if value not in world.replies:
            return f"no canned reply {value!r}; known: " + (", ".join(sorted(world.replies))
                                                             or "(none)")
        if world.replies[value]:
            return f"canned reply {value!r} cannot be used: {world.replies[value]}"
        return t, f"canned reply {value} inserted above your text"


REGISTRY: dict[str, Verb] = {v.name: v for v in (
    Status(), Priority(), Assign(), Owner(), Group(), Type(), Due(), Close(), Reopen(),
    Note(), Cc(), Project(), Time(), Offer(), Approve(), Template())}


def find_agent(text: str, world: World, project: str) -> str | None:
    wanted = text.strip().lower()
    candidates = [(email, name) for email, (name, projects) in world.agents.items()
                  if projects is None or project in projects]
    for email, _name in candidates:
        if wanted == email:
            return email
    by_name = [email for email, name in candidates
               if wanted == name.lower() or wanted == name.lower().split(" ")[0]
               or wanted == email.split("@")[0]]
    return by_name[0] if len(by_name) == 1 else None
