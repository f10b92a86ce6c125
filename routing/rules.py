"""Routing: which ticket or project a mail belongs to, as an ordered table of small rules.

`route(facts, directory, now)` runs the rules in order; the first one that decides wins,
and every rule leaves a `RuleHit` saying what it saw, so `unassigned show` and the logs
can tell an admin why a mail went where it went. Rules are pure: everything they need
about tickets, projects and the sender was looked up beforehand into `Directory`.

Order (see the README): a valid reply token; In-Reply-To/References naming a Message-ID
we stored or sent; a `[#N]` subject tag; a project key in a plus-address; the sender's
registered project; otherwise the unassigned queue. A mail that points at a ticket its
sender does not take part in goes to the unassigned queue and is never appended: that is
how the "Ticket Trick" is stopped.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from routing.addresses import Recipient, RecipientKind
from routing.tokens import TicketFacts, TokenKey, verify_token

SUBJECT_TAG_RE = re.compile(r"\[#([1-9][0-9]{0,11})\]")


class Rule(StrEnum):
    """Which rule decided; the first six are the routing table, in order."""

    SENDER = "sender"
    REPLY_TOKEN = "reply-token"
    REFERENCES = "references"
    SUBJECT_TAG = "subject-tag"
    PROJECT_ADDRESS = "project-address"
    SENDER_PROJECT = "sender-project"
    NONE = "none"
    # decided before the table runs
    DUPLICATE = "duplicate"
    LOOP = "loop"
    BOUNCE = "bounce"


class Target(StrEnum):
    TICKET = "ticket"            # append to an existing ticket
    NEW_TICKET = "new_ticket"    # open a ticket in a project
    UNASSIGNED = "unassigned"    # wait for an admin


@dataclass(frozen=True)
class TicketView:
    number: int
    project: str
    deleted: bool = False
    participants: frozenset[str] = frozenset()   # everyone allowed to write to it


@dataclass(frozen=True)
class MailFacts:
    """The facts of one mail that routing looks at (all addresses normalized)."""

    sender: str | None
    sender_problem: str
    recipients: tuple[Recipient, ...]
    subject: str
    thread_ids: tuple[str, ...]    # In-Reply-To first, then References newest first


@dataclass(frozen=True)
class Directory:
    """Everything routing may know about the world, gathered for one mail."""

    tickets: Mapping[int, TicketView] = field(default_factory=dict)
    thread_index: Mapping[str, int] = field(default_factory=dict)   # Message-ID -> ticket
    projects_by_key: Mapping[str, str] = field(default_factory=dict)  # key -> slug
    sender_projects: tuple[str, ...] = ()
    sender_tickets: tuple[int, ...] = ()
    token_keys: tuple[TokenKey, ...] = ()
    token_max_age_days: int = 365
    group_keys: Mapping[str, str] = field(default_factory=dict)     # key -> group


@dataclass(frozen=True)
class RuleHit:
    rule: str
    matched: bool
    detail: str


@dataclass(frozen=True)
class RouteDecision:
    target: Target
    rule: str
    reason: str
    ticket: int | None = None
    project: str | None = None
    purpose: str = "reply"       # "note" when the mail came to a note address
    hits: tuple[RuleHit, ...] = ()
    group: str = ""              # a new ticket's group, when it came to a group's address


@dataclass(frozen=True)
class _Step:
    hit: RuleHit
    decision: RouteDecision | None = None


RuleFn = Callable[[MailFacts, Directory, dt.datetime], _Step]


def _unassigned(rule: str, reason: str, **kw) -> RouteDecision:
    return RouteDecision(Target.UNASSIGNED, rule, reason, **kw)


def rule_sender(facts: MailFacts, d: Directory, now: dt.datetime) -> _Step:
    if facts.sender:
        return _Step(RuleHit(Rule.SENDER, True, f"sender is {facts.sender}"))
    reason = facts.sender_problem or "no usable sender"
    return _Step(RuleHit(Rule.SENDER, False, reason), _unassigned(Rule.SENDER, reason))


def rule_token(facts: MailFacts, d: Directory, now: dt.datetime) -> _Step:
    name = Rule.REPLY_TOKEN
    tokens = [r for r in facts.recipients if r.kind is RecipientKind.TOKEN]
    if not tokens:
        return _Step(RuleHit(name, False, "no reply token among the recipients"))
    verdicts = []
    for rcpt in tokens:
        number = _token_ticket(rcpt.detail)
        view = d.tickets.get(number) if number else None
        facts_for = TicketFacts(view is not None, view.deleted if view else False,
                                view.participants if view else frozenset())
        verdicts.append(verify_token(rcpt.detail, sender=facts.sender, keys=d.token_keys,
                                     today=now.date(), max_age_days=d.token_max_age_days,
                                     ticket=facts_for, sender_tickets=d.sender_tickets))
    good = [v for v in verdicts if v.ok]
    if not good:
        v = verdicts[0]
        return _Step(RuleHit(name, False, v.reason), _unassigned(name, v.reason, ticket=v.ticket))
    if len({v.ticket for v in good}) > 1:
        reason = "reply tokens of several tickets: " + ", ".join(f"#{v.ticket}" for v in good)
        return _Step(RuleHit(name, False, reason), _unassigned(name, reason))
    v = good[0]
    return _participant_step(name, facts, d, v.ticket, f"valid reply token for #{v.ticket}",
                             purpose=v.purpose or "reply")


def _token_ticket(detail: str) -> int | None:
    m = re.match(r"^[rn]([1-9][0-9]{0,11})\.", detail)
    return int(m.group(1)) if m else None


def rule_references(facts: MailFacts, d: Directory, now: dt.datetime) -> _Step:
    name = Rule.REFERENCES
    for msgid in facts.thread_ids:
        number = d.thread_index.get(msgid)
        if number is None:
            continue
        view = d.tickets.get(number)
        if view is None or view.deleted:
            continue
        return _participant_step(name, facts, d, number, f"replies to <{msgid}> of #{number}")
    detail = "no known Message-ID" if facts.thread_ids else "no In-Reply-To or References"
    return _Step(RuleHit(name, False, detail))


def rule_subject_tag(facts: MailFacts, d: Directory, now: dt.datetime) -> _Step:
    name = Rule.SUBJECT_TAG
    m = SUBJECT_TAG_RE.search(facts.subject)
    if not m:
        return _Step(RuleHit(name, False, "no [#N] tag in the subject"))
    number = int(m.group(1))
    view = d.tickets.get(number)
    if view is None or view.deleted:
        return _Step(RuleHit(name, False, f"subject tag [#{number}] names no open ticket"))
    return _participant_step(name, facts, d, number, f"subject tag [#{number}]")


def _participant_step(name: str, facts: MailFacts, d: Directory, number: int, what: str,
                      purpose: str = "reply") -> _Step:
    view = d.tickets[number]
    if view.number != number:       # a merged ticket: its mail lands where it went
        what = f"{what} (merged into #{view.number})"
    if facts.sender in view.participants:
        return _Step(RuleHit(name, True, what),
                     RouteDecision(Target.TICKET, name, what, ticket=view.number,
                                   project=view.project, purpose=purpose))
    reason = f"{what}, but {facts.sender} is not a participant of ticket #{number}"
    return _Step(RuleHit(name, False, reason), _unassigned(name, reason, ticket=number))


def rule_project_key(facts: MailFacts, d: Directory, now: dt.datetime) -> _Step:
    name = Rule.PROJECT_ADDRESS
    keys = [r.detail for r in facts.recipients if r.kind is RecipientKind.PROJECT
            and r.detail not in d.group_keys]
    if not keys:
        return _Step(RuleHit(name, False, "no project plus-address among the recipients"))
    known = sorted({d.projects_by_key[k] for k in keys if k in d.projects_by_key})
    unknown = [k for k in keys if k not in d.projects_by_key]
    if len(known) == 1:
        reason = f"sent to the address of project {known[0]}"
        return _Step(RuleHit(name, True, reason),
                     RouteDecision(Target.NEW_TICKET, name, reason, project=known[0]))
    if known:
        reason = "sent to the addresses of several projects: " + ", ".join(known)
        return _Step(RuleHit(name, False, reason), _unassigned(name, reason))
    return _Step(RuleHit(name, False, "unknown project key " + ", ".join(map(repr, unknown))))


def rule_sender_project(facts: MailFacts, d: Directory, now: dt.datetime) -> _Step:
    name = Rule.SENDER_PROJECT
    projects = sorted(set(d.sender_projects))
    if len(projects) == 1:
        reason = f"{facts.sender} is a contact of project {projects[0]}"
        return _Step(RuleHit(name, True, reason),
                     RouteDecision(Target.NEW_TICKET, name, reason, project=projects[0]))
    if projects:
        return _Step(RuleHit(name, False, f"{facts.sender} is a contact of several projects: "
                                          + ", ".join(projects)))
    return _Step(RuleHit(name, False, f"{facts.sender} is not a contact of any project"))


RULES: tuple[RuleFn, ...] = (rule_sender, rule_token, rule_references, rule_subject_tag,
                           rule_project_key, rule_sender_project)


def route(facts: MailFacts, directory: Directory, now: dt.datetime) -> RouteDecision:
    hits: list[RuleHit] = []
    for rule in RULES:
        step = rule(facts, directory, now)
        hits.append(step.hit)
        if step.decision is not None:
            decision = step.decision
            if decision.target is Target.NEW_TICKET:
                decision = _with_group(facts, directory, decision, hits)
            return _with_hits(decision, hits)
    reason = "; ".join(h.detail for h in hits if not h.matched) or "nothing matched"
    return _unassigned(Rule.NONE, reason, hits=tuple(hits))


def _with_hits(decision: RouteDecision, hits: list[RuleHit]) -> RouteDecision:
    return replace(decision, hits=tuple(hits))


def _with_group(facts: MailFacts, d: Directory, decision: RouteDecision,
                hits: list[RuleHit]) -> RouteDecision:
    """A group's address (support+web@) chooses the topic, not the project: the project
    still comes from a project key or the sender. Several group addresses choose none."""
    groups = sorted({d.group_keys[r.detail] for r in facts.recipients
                     if r.kind is RecipientKind.PROJECT and r.detail in d.group_keys})
    if len(groups) != 1:
        if groups:
            hits.append(RuleHit("group-address", False, "sent to the addresses of several "
                                                        "groups: " + ", ".join(groups)))
        return decision
    hits.append(RuleHit("group-address", True, f"sent to the address of group {groups[0]}"))
    return replace(decision, reason=f"{decision.reason}; group {groups[0]} (its address)",
                   group=groups[0])


@dataclass(frozen=True)
class Lookups:
    """What the edge must look up before routing a mail."""

    ticket_numbers: frozenset[int]
    thread_ids: tuple[str, ...]
    project_keys: frozenset[str]


def lookups_for(facts: MailFacts) -> Lookups:
    numbers: set[int] = set()
    for r in facts.recipients:
        if r.kind is RecipientKind.TOKEN and (n := _token_ticket(r.detail)):
            numbers.add(n)
    numbers.update(int(m) for m in SUBJECT_TAG_RE.findall(facts.subject)[:5])
    keys = frozenset(r.detail for r in facts.recipients if r.kind is RecipientKind.PROJECT)
    return Lookups(frozenset(numbers), facts.thread_ids[:50], keys)
