"""`routing.guards`: each outgoing guard on its own, then `screen` over whole batches.

The policy is small on purpose: 3 automatic mails per external address and window (then
one a day), 2 automatic mails per agent and ticket.
"""

from __future__ import annotations

import datetime as dt

import pytest

from routing.actors import Person
from routing.context import Policy
from routing.effects import Audience, Effects, LogEvent, MailIntent, MailKind, Outcome
from routing.guards import (
    Counts,
    GuardFacts,
    agent_ticket_cap,
    automatic_answer,
    guarded,
    no_address,
    own_address,
    recipient_cap,
    screen,
    suppressed,
)

POLICY = Policy("support@example.com", auto_reply_limit=3, auto_reply_window_minutes=10,
                agent_ticket_limit=2, agent_ticket_window_minutes=60)
SUPPORT = "support@example.com"
ANNA = "anna@example.com"                    # an agent
CARL, DORA = "carl@customer.example", "dora@customer.example"
UNTIL = dt.datetime(2030, 1, 2, 3, 4)


def auto(to: str, audience: Audience = Audience.CUSTOMER,
         kind: MailKind = MailKind.STATUS) -> MailIntent:
    """An automatic mail (Auto-Submitted: auto-generated)."""
    if audience is Audience.AGENT:
        kind = MailKind.NOTIFY
    return MailIntent(kind, Person(to), "t", "test", audience)


def human(to: str) -> MailIntent:
    """An agent's reply forwarded to a customer: no Auto-Submitted."""
    return MailIntent(MailKind.REPLY, Person(to), "agent_reply", "test", Audience.CUSTOMER,
                      auto=None)


def facts(**kw) -> GuardFacts:
    return GuardFacts(POLICY, frozenset({SUPPORT}), **kw)


def counts(recent: int = 0, day: int = 0, agent: int = 0, ticket: int = 7) -> Counts:
    return Counts({CARL: recent, ANNA: recent}, {CARL: day, ANNA: day},
                  {(ANNA, ticket): agent})


# --- each guard -------------------------------------------------------------------------


@pytest.mark.parametrize("mail, reason", [
    (auto(""), "no usable address (null sender)"),
    (human(""), "no usable address (null sender)"),
    (auto("accounting"), "no usable address (accounting)"),
    (auto("carl@@customer.example"), "no usable address (carl@@customer.example)"),
    (auto(CARL), None),
], ids=["empty-automatic", "empty-human", "a-bare-group-name", "malformed", "valid-passes"])
def test_no_address(mail, reason):
    assert no_address(mail, facts()) == reason


@pytest.mark.parametrize("mail, reason", [
    (auto(SUPPORT), f"{SUPPORT} is an address of mailgate itself"),
    (human(SUPPORT), f"{SUPPORT} is an address of mailgate itself"),
    (auto(CARL), None),
], ids=["automatic-to-own-address", "even-a-human-mail-to-own-address", "other-passes"])
def test_own_address(mail, reason):
    assert own_address(mail, facts()) == reason


@pytest.mark.parametrize("mail, reason", [
    (auto(CARL), f"{CARL} bounced; automatic mail suppressed until 2030-01-02 03:04"),
    (auto(CARL, Audience.AGENT), f"{CARL} bounced; automatic mail suppressed until "
                                 "2030-01-02 03:04"),
    (human(CARL), None),
    (auto(DORA), None),
], ids=["automatic-to-bounced-address", "automatic-to-bounced-agent-too",
        "human-reply-still-goes", "other-address-passes"])
def test_bounce_suppression_stops_automatic_mail_only(mail, reason):
    assert suppressed(mail, facts(suppressed={CARL: UNTIL})) == reason


@pytest.mark.parametrize("answers, mail, stopped", [
    (CARL, auto(CARL), True),
    (CARL, auto(CARL, kind=MailKind.TRANSCRIPT), True),
    (CARL, human(CARL), False),
    (CARL, auto(DORA), False),
    ("", auto(CARL), False),
], ids=["automatic-to-the-automatic-sender", "no-transcript-either", "human-reply-goes",
        "automatic-to-someone-else-goes", "cause-was-human"])
def test_an_automatic_mail_never_answers_the_automatic_sender(answers, mail, stopped):
    reason = automatic_answer(mail, facts(answers=answers))
    assert (reason is not None) is stopped
    if stopped:
        assert reason == f"{CARL} sent an automatic mail; an automatic mail never answers one"


@pytest.mark.parametrize("mail, ticket, sent, stopped", [
    (auto(ANNA, Audience.AGENT), 7, 1, False),
    (auto(ANNA, Audience.AGENT), 7, 2, True),
    (auto(ANNA, Audience.AGENT), 8, 2, False),
    (auto(ANNA, Audience.AGENT), None, 99, False),
    (auto(CARL), 7, 99, False),
], ids=["under-the-limit", "at-the-limit", "another-ticket-counts-apart", "no-ticket-yet",
        "customers-are-not-counted-per-ticket"])
def test_agent_ticket_cap(mail, ticket, sent, stopped):
    reason = agent_ticket_cap(mail, facts(ticket=ticket, counts=Counts(agent={
        (mail.to.email, 7): sent})))
    assert (reason is not None) is stopped
    if stopped:
        assert reason == (f"{ANNA} got 2 automatic mails about ticket #7 within 60 minutes "
                          "(limit 2): a loop?")


@pytest.mark.parametrize("mail, recent, day, stopped", [
    (auto(CARL), 2, 2, False),
    (auto(CARL), 3, 3, True),
    (auto(CARL), 0, 3, False),
    (auto(CARL), 0, 4, True),
    (auto(CARL, Audience.OTHER, MailKind.STATUS_NOTIFY), 3, 3, True),
    (human(CARL), 99, 99, False),
    (auto(ANNA, Audience.AGENT), 99, 99, False),
], ids=["under-the-limit", "limit-reached-in-the-window", "then-one-more-after-the-window",
        "then-nothing-more-that-day", "group-addresses-are-capped-too",
        "human-mail-never-capped", "agents-never-capped-per-address"])
def test_recipient_cap_per_address_then_one_a_day(mail, recent, day, stopped):
    reason = recipient_cap(mail, facts(counts=Counts({mail.to.email: recent},
                                                     {mail.to.email: day})))
    assert (reason is not None) is stopped
    if stopped:
        assert reason == (f"{mail.to.email} got {day} automatic mails in 24 hours (limit 3 "
                          "per 10 minutes, then one a day)")


# --- screen ----------------------------------------------------------------------------


def test_screen_passes_good_mail_and_names_the_guard_of_each_drop():
    mails = (auto(CARL), auto(""), human(SUPPORT), auto(DORA), auto(ANNA, Audience.AGENT))
    passed, dropped, _ = screen(mails, facts(suppressed={DORA: UNTIL}, answers=ANNA,
                                             ticket=7))
    assert passed == (auto(CARL),)
    assert [(d.mail.to.email, d.guard) for d in dropped] == [
        ("", "no-address"), (SUPPORT, "own-address"), (DORA, "suppressed"),
        (ANNA, "automatic-answer")]


def test_screen_reports_the_first_guard_that_stops_a_mail():
    (d,) = screen((auto(SUPPORT),), facts(suppressed={SUPPORT: UNTIL}, answers=SUPPORT))[1]
    assert d.guard == "own-address"


@pytest.mark.parametrize("mail, ticket, passes", [
    (auto(CARL), 7, 3),
    (auto(CARL, Audience.OTHER, MailKind.STATUS_NOTIFY), None, 3),
    (auto(ANNA, Audience.AGENT), 7, 2),
    (auto(ANNA, Audience.AGENT), None, 5),
    (human(CARL), 7, 5),
], ids=["customer-capped-at-auto-reply-limit", "group-address-capped-at-auto-reply-limit",
        "agent-capped-at-agent-ticket-limit", "agent-uncapped-without-a-ticket",
        "human-mail-uncapped"])
def test_screen_counts_what_it_passes_so_the_nth_mail_in_one_call_is_capped(mail, ticket,
                                                                            passes):
    passed, dropped, _ = screen((mail,) * 5, facts(ticket=ticket))
    assert (len(passed), len(dropped)) == (passes, 5 - passes)
    assert {d.guard for d in dropped} <= {"recipient-cap", "agent-ticket-cap"}


def test_screen_returns_counts_including_what_passed_but_not_dropped_or_human_mail():
    start = Counts({CARL: 1}, {CARL: 1}, {(ANNA, 7): 1})
    mails = (auto(CARL), auto(ANNA, Audience.AGENT), human(CARL), auto(DORA), auto(""))
    _, dropped, after = screen(mails, facts(counts=start, ticket=7))
    assert [d.guard for d in dropped] == ["no-address"]
    assert after == Counts({CARL: 2, DORA: 1}, {CARL: 2, DORA: 1}, {(ANNA, 7): 2})


def test_screen_starts_from_the_counts_in_the_facts():
    passed, dropped, _ = screen((auto(CARL),), facts(counts=counts(recent=3, day=3)))
    assert (passed, [d.guard for d in dropped]) == ((), ["recipient-cap"])


@pytest.mark.parametrize("to, audience, delivered", [
    (ANNA, Audience.AGENT, 300),
    (CARL, Audience.CUSTOMER, 3),
], ids=["agent-gets-all-300", "customer-address-capped"])
def test_one_day_of_notifications_about_300_different_tickets(to, audience, delivered):
    running, total = Counts(), 0
    for number in range(1, 301):
        passed, _, running = screen((auto(to, audience),), facts(counts=running,
                                                                ticket=number))
        total += len(passed)
    assert total == delivered


# --- guarded ---------------------------------------------------------------------------


def test_guarded_moves_stopped_mail_to_dropped_and_logs_it_on_the_ticket():
    effects = Effects(Outcome.DONE, "r", mails=(auto(CARL), auto("")),
                      events=(LogEvent("reply", ANNA),))
    out = guarded(effects, facts(), 7)
    assert out.mails == (auto(CARL),)
    assert [(d.mail.to.email, d.guard) for d in out.dropped] == [("", "no-address")]
    assert out.events == (LogEvent("reply", ANNA), LogEvent(
        "mail-suppressed", "system", "status to ?: no usable address (null sender)"))


def test_guarded_caps_per_agent_and_the_ticket_it_is_given():
    effects = Effects(Outcome.DONE, "r", mails=(auto(ANNA, Audience.AGENT),))
    assert guarded(effects, facts(counts=counts(agent=2, ticket=7)), 7).mails == ()
    assert guarded(effects, facts(counts=counts(agent=2, ticket=7)), 8).mails == (
        auto(ANNA, Audience.AGENT),)
