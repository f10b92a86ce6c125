"""Quota, owner and handler (issue 11): durations, the contingent rule and its thresholds
as tables; the planned commands over plain data."""

from __future__ import annotations

from dataclasses import replace

import pytest

from routing.actors import Actor
from routing.commands import parse_command, plan
from routing.context import TicketState, World
from routing.quota import Budget, crossed, may_enter, parse_duration, show_minutes
from routing.workflow_config import build_workflows

SUPPORT = build_workflows({})["support"]


@pytest.mark.parametrize(("text", "minutes"), [
    ("1h30", 90), ("1h", 60), ("90m", 90), ("90min", 90), ("1.5h", 90), ("1,5h", 90),
    ("1:30", 90), ("0:45", 45), ("2", 120), ("1h 15m", 75), ("10H", 600), ("-2h", -120),
])
def test_durations_people_write_are_read_as_minutes(text, minutes):
    assert parse_duration(text) == minutes


@pytest.mark.parametrize("text", ["", "h", "1:75", "abc", "0", "1h30x", "1.5.2h"])
def test_a_duration_that_is_no_duration_is_refused(text):
    with pytest.raises(ValueError, match="1h30"):
        parse_duration(text)


@pytest.mark.parametrize(("minutes", "shown"), [(90, "1h30"), (45, "45m"), (600, "10h"),
                                                (-120, "-2h"), (65, "1h05")])
def test_minutes_are_shown_as_people_write_them(minutes, shown):
    assert show_minutes(minutes) == shown


USED_UP, LEFT = Budget(600, 600), Budget(600, 540)

# (work status?, type, offer state, offer minutes, offer used, budget, allowed?)
QUOTA = [
    pytest.param(True, "change-request", "", 0, 0, USED_UP, False, id="used-up"),
    pytest.param(True, "change-request", "", 0, 0, Budget(600, 700), False, id="overbooked"),
    pytest.param(True, "change-request", "", 0, 0, LEFT, True, id="hours-left"),
    pytest.param(False, "change-request", "", 0, 0, USED_UP, True, id="not-a-work-status"),
    pytest.param(True, "bug", "", 0, 0, USED_UP, True, id="bug-exempt"),
    pytest.param(True, "change-request", "accepted", 360, 0, USED_UP, True,
                 id="accepted-offer"),
    pytest.param(True, "change-request", "sent", 360, 0, USED_UP, False, id="offer-only-sent"),
    pytest.param(True, "change-request", "declined", 360, 0, USED_UP, False,
                 id="offer-declined"),
    pytest.param(True, "change-request", "accepted", 360, 360, LEFT, False,
                 id="offer-budget-exhausted"),
    pytest.param(True, "change-request", "", 0, 0, None, True, id="no-quota-configured"),
]


@pytest.mark.parametrize(("work", "type_", "offer", "offer_min", "offer_used", "budget",
                          "allowed"), QUOTA)
def test_work_starts_only_with_contingent_or_accepted_offer_unless_bug(
        work, type_, offer, offer_min, offer_used, budget, allowed):
    why = may_enter(work, type_, offer, offer_min, offer_used, budget, "acme")
    assert (why is None) is allowed
    if not allowed:
        assert "used up" in why and "bug" in why


@pytest.mark.parametrize(("before", "after", "added", "hit"), [
    (0, 470, 600, None), (470, 480, 600, 80), (479, 500, 600, 80), (480, 500, 600, None),
    (500, 600, 600, 100), (400, 700, 600, 100), (600, 660, 600, None), (0, 60, 0, None),
    (500, 500, 600, None),
])
def test_a_booking_crosses_80_and_100_percent_once(before, after, added, hit):
    assert crossed(before, after, added) == hit


# --- the commands over plain data ---------------------------------------------------------

WORLD = World(agents={"anna@a.example": ("Anna Agent", None), "bob@a.example": ("Bob", None)},
              groups={"web": "anna@a.example"}, projects={"acme": "support"})
AGENT = Actor("anna@a.example", "agent")
TICKET = TicketState(number=7, project="acme", status="new", requester="carla@c.example",
                     type="change-request", quota=USED_UP)


def run(*lines: str, ticket: TicketState = TICKET):
    return plan(tuple(parse_command(line) for line in lines), ticket, AGENT, SUPPORT, WORLD)


def test_owner_and_assignee_are_separate_fields():
    result = run("/owner anna", "/assign bob")
    assert (result.after.owner, result.after.assignee) == ("anna@a.example", "bob@a.example")
    assert ("owner", "", "anna@a.example") in result.changes


def test_a_work_status_is_refused_when_the_contingent_is_used_up_and_says_why():
    result = run("/status open")
    assert not result.applied
    assert "contingent of project acme is used up" in result.outcomes[0].message


def test_an_accepted_offer_opens_the_work_status_and_takes_the_bookings():
    result = run("/offer 6h", "/offer accepted", "/status open", "/time 1h30")
    assert result.applied
    after = result.after
    assert (after.status, after.offer_state, after.offer_minutes) == ("open", "accepted", 360)
    assert (after.booked, after.offer_used, after.quota) == (90, 90, USED_UP)


def test_time_without_an_offer_counts_against_the_project_contingent():
    result = run("/time 1:30", ticket=replace(TICKET, quota=Budget(600, 0)))
    assert (result.after.booked, result.after.quota) == (90, Budget(600, 90))
    assert "8h30 left" in result.outcomes[0].message


def test_a_bug_may_be_worked_on_without_contingent():
    assert run("/status open", ticket=replace(TICKET, type="bug")).applied


def test_a_reopen_into_a_work_status_is_refused_like_a_status_when_the_contingent_is_used_up():
    result = run("/reopen", ticket=replace(TICKET, status="resolved"))
    assert not result.applied
    assert result.outcomes[0].message.startswith("Offen cannot be entered: the support")
    assert run("/reopen", ticket=replace(TICKET, status="resolved", quota=None)).applied


def test_a_customers_reopen_is_not_held_back_by_the_contingent():
    customer = Actor("carla@c.example", "customer")
    ticket = replace(TICKET, status="resolved", requester="carla@c.example")
    result = plan((parse_command("/reopen"),), ticket, customer, SUPPORT, WORLD)
    assert result.applied and result.after.status == "open"


# --- group addresses ---------------------------------------------------------------------

def _facts(*rcpts: str):
    from routing.addresses import RecipientRules, classify_recipient
    from routing.rules import MailFacts

    rules = RecipientRules("support", frozenset({"example.com"}))
    return MailFacts("carla@client.example", "", tuple(classify_recipient(r, rules)
                                                       for r in rcpts), "Hallo", ())


# (recipients, the sender's projects, expected target, project, group)
GROUP_ROUTES = [
    pytest.param(("support+web@example.com",), ("acme",), "new_ticket", "acme", "web",
                 id="group-address-sender-project"),
    pytest.param(("support+web@example.com", "support+beta@example.com"), (), "new_ticket",
                 "beta", "web", id="group-and-project-address"),
    pytest.param(("support+web@example.com",), (), "unassigned", None, "",
                 id="group-address-but-no-project"),
    pytest.param(("support+web@example.com", "support+shop@example.com"), ("acme",),
                 "new_ticket", "acme", "", id="two-groups-choose-none"),
    pytest.param(("support@example.com",), ("acme",), "new_ticket", "acme", "",
                 id="plain-address-no-group"),
]


@pytest.mark.parametrize(("rcpts", "sender_projects", "target", "project", "group"),
                         GROUP_ROUTES)
def test_a_group_address_chooses_the_group_while_the_project_comes_from_elsewhere(
        rcpts, sender_projects, target, project, group):
    import datetime as dt

    from routing.rules import Directory, route

    d = Directory(projects_by_key={"beta": "beta"}, sender_projects=sender_projects,
                  group_keys={"web": "web", "shop": "shop"})
    decision = route(_facts(*rcpts), d, dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    assert (decision.target, decision.project, decision.group) == (target, project, group)


@pytest.mark.parametrize(("groups", "error"), [
    ({"web": {"key": "web", "owner": "olga@a.example"}, "accounting": "b@a.example"}, ""),
    ({"web": {"key": "web"}, "shop": {"key": "WEB"}}, "is the key of group web already"),
    ({"web": {"key": "a.b"}}, "[groups.web] key: expected 1-40 lower-case"),
    ({"web": {"owner": "not an address"}}, "[groups.web] owner: expected the owner's"),
    ({"web": {"keys": "web"}}, "[groups.web] keys: unknown key"),
    ({"web": 3}, "[groups] web: expected the owner's address"),
])
def test_groups_in_the_config_take_an_address_or_a_table_with_owner_and_key(groups, error):
    from mailgate.config import ConfigError, config_from_dict
    from tests.support.harness import base_config

    data = base_config("sqlite:///unused.db", 25, groups=groups)
    if not error:
        cfg = config_from_dict(data, source="t")
        assert cfg.group_owners() == {"web": "olga@a.example", "accounting": "b@a.example"}
        assert cfg.group_keys() == {"web": "web"}
        return
    with pytest.raises(ConfigError) as exc:
        config_from_dict(data, source="t")
    assert error in str(exc.value)


@pytest.mark.parametrize(("customer_may", "allowed"), [(["priority"], True), ([], False)])
def test_a_customer_sets_the_priority_only_where_the_workflow_allows_it(customer_may, allowed):
    wf = build_workflows({"desk": {"extends": "support", "customer_may": customer_may}})["desk"]
    customer = Actor("carla@c.example", "customer")
    result = plan((parse_command("/priority hoch"),), TICKET, customer, wf, WORLD)
    assert result.applied is allowed
    assert result.after.priority == (3 if allowed else 2)
