"""Outgoing guards: an ordered chain of small checks every planned mail passes first.

Each guard is `(mail, facts) -> reason | None`, in the manner of structlog's processors;
the first reason stops the mail, and the handler records it (an event on the ticket, a
row in the outbox marked dropped) instead of sending. They run on `MailIntent` values,
before anything is rendered or composed.

The per-recipient cap protects outside addresses from loops between autoresponders.
Agents are never silenced by it: a working agent may get hundreds of notifications a
day. What stops an agent's badly behaved autoresponder from ping-ponging with a
customer's is a cap per agent *and ticket*, plus the rule that no automatic mail ever
answers an automatic one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from routing.addresses import is_valid_address
from routing.context import Policy
from routing.effects import Audience, Dropped, Effects, LogEvent, MailIntent


@dataclass(frozen=True)
class Counts:
    """Automatic mails already queued, as the cap sees them."""

    recent: Mapping[str, int] = field(default_factory=dict)    # address, in the window
    day: Mapping[str, int] = field(default_factory=dict)       # address, in 24 hours
    agent: Mapping[tuple[str, int], int] = field(default_factory=dict)  # (agent, ticket)

    def bump(self, address: str, ticket: int | None, audience: Audience) -> Counts:
        if audience is Audience.AGENT:
            if ticket is None:
                return self
            key = (address, ticket)
            return replace(self, agent={**self.agent, key: self.agent.get(key, 0) + 1})
        return replace(self, recent={**self.recent, address: self.recent.get(address, 0) + 1},
                       day={**self.day, address: self.day.get(address, 0) + 1})


@dataclass(frozen=True)
class GuardFacts:
    policy: Policy
    own_addresses: frozenset[str] = frozenset()
    suppressed: Mapping[str, dt.datetime] = field(default_factory=dict)
    counts: Counts = Counts()
    ticket: int | None = None
    answers: str = ""                    # sender of the automatic mail that caused these


Guard = Callable[[MailIntent, GuardFacts], str | None]


def no_address(mail: MailIntent, f: GuardFacts) -> str | None:
    if not mail.to.email or not is_valid_address(mail.to.email):
        return f"no usable address ({mail.to.email or 'null sender'})"
    return None


def own_address(mail: MailIntent, f: GuardFacts) -> str | None:
    if mail.to.email in f.own_addresses:
        return f"{mail.to.email} is an address of mailgate itself"
    return None


def suppressed(mail: MailIntent, f: GuardFacts) -> str | None:
    until = f.suppressed.get(mail.to.email)
    if mail.automatic and until is not None:
        return (f"{mail.to.email} bounced; automatic mail suppressed until "
                f"{until:%Y-%m-%d %H:%M}")
    return None


def automatic_answer(mail: MailIntent, f: GuardFacts) -> str | None:
    if mail.automatic and f.answers and mail.to.email == f.answers:
        return f"{f.answers} sent an automatic mail; an automatic mail never answers one"
    return None


def agent_ticket_cap(mail: MailIntent, f: GuardFacts) -> str | None:
    if mail.audience is not Audience.AGENT or not mail.automatic or f.ticket is None:
        return None
    p = f.policy
    sent = f.counts.agent.get((mail.to.email, f.ticket), 0)
    if sent >= p.agent_ticket_limit:
        return (f"{mail.to.email} got {sent} automatic mails about ticket #{f.ticket} "
                f"within {p.agent_ticket_window_minutes:g} minutes (limit "
                f"{p.agent_ticket_limit}): a loop?")
    return None


def recipient_cap(mail: MailIntent, f: GuardFacts) -> str | None:
    if mail.audience is Audience.AGENT or not mail.automatic:
        return None
    p = f.policy
    recent = f.counts.recent.get(mail.to.email, 0)
    day = f.counts.day.get(mail.to.email, 0)
    if recent >= p.auto_reply_limit or day > p.auto_reply_limit:
        return (f"{mail.to.email} got {day} automatic mails in 24 hours (limit "
                f"{p.auto_reply_limit} per {p.auto_reply_window_minutes:g} minutes, then "
                "one a day)")
    return None


GUARDS: tuple[tuple[str, Guard], ...] = (
    ("no-address", no_address),
    ("own-address", own_address),
    ("suppressed", suppressed),
    ("automatic-answer", automatic_answer),
    ("agent-ticket-cap", agent_ticket_cap),
    ("recipient-cap", recipient_cap),
)


def screen(mails: tuple[MailIntent, ...], facts: GuardFacts,
           guards: tuple[tuple[str, Guard], ...] = GUARDS,
           ) -> tuple[tuple[MailIntent, ...], tuple[Dropped, ...], Counts]:
    """Run every mail through the chain in order. Returns the mails that may go, the
    ones stopped with the guard and reason, and the counts including what passed (so the
    next mail planned in the same batch sees them)."""
    passed: list[MailIntent] = []
    dropped: list[Dropped] = []
    counts = facts.counts
    for mail in mails:
        f = replace(facts, counts=counts)
        stop = next(((name, why) for name, guard in guards if (why := guard(mail, f))), None)
        if stop is not None:
            dropped.append(Dropped(mail, stop[0], stop[1]))
            continue
        passed.append(mail)
        if mail.automatic:
            counts = counts.bump(mail.to.email, facts.ticket, mail.audience)
    return tuple(passed), tuple(dropped), counts


def guarded(effects: Effects, facts: GuardFacts, ticket: int | None) -> Effects:
    """`effects` with its mails screened: what a guard stopped moves to `dropped`, and
    the ticket's log says so."""
    passed, dropped, _ = screen(effects.mails, replace(facts, ticket=ticket))
    events = effects.events + tuple(
        LogEvent("mail-suppressed", "system", f"{d.mail.kind} to {d.mail.to.email or '?'}: "
                                              f"{d.reason}") for d in dropped)
    return replace(effects, mails=passed, dropped=dropped, events=events)
