"""Mail commands as tables: finding them in replies, parsing lines, who may do what."""

from __future__ import annotations

import datetime as dt

import pytest

from mailgate.mail.htmltext import html_to_text
from routing.actors import Actor
from routing.commands import find_commands, parse_command, plan
from routing.context import TicketState, World
from routing.workflow import (
    WorkflowError,
    after_customer_reply,
    due_date_reminder,
    due_reminders,
    due_timer,
)
from routing.workflow_config import build_workflow, build_workflows

WF = build_workflows({})
SUPPORT = WF["support"]

# (reply text, command lines expected, text left after removing them)
REPLIES = [
    ("/status waiting\nPlease send a photo.", ["/status waiting"], "Please send a photo."),
    ("Thanks!\n/close", ["/close"], "Thanks!"),
    ("\n\n/priority high\n/assign anna\n\nOn it.", ["/priority high", "/assign anna"],
     "On it."),
    # quoted commands are history, not commands
    ("Fine.\n\n> /close\n> old text", [], None),
    ("Fine.\n\nOn Mon, 3 Nov 2025 at 10:02, Carla <c@client.example> wrote:\n> /close", [],
     None),
    ("Passt.\n\nAm 03.11.2025 um 10:02 schrieb Carla Client:\n/close\n", [], None),
    ("OK.\n\nDen 3. nov. 2025 kl. 10.02 skrev Carla Client <c@client.example>:\n/close\n", [],
     None),
    ("Ok\n\nVon: Carla <c@client.example>\nGesendet: Montag\nAn: support@example.com\n"
     "/close", [], None),
    ("Ok\n\n-----Original Message-----\n/close", [], None),
    # below the signature
    ("Done.\n-- \nAnna\n/close", [], None),
    # a path is not a command; a second slash disqualifies the line
    ("/usr/bin/python crashes\n", [], None),
    # only the first 20 lines are read
    ("\n".join(["text"] * 20) + "\n/close", [], None),
    ("\n".join(["text"] * 19) + "\n/close", ["/close"], None),
]


@pytest.mark.parametrize(("text", "lines", "rest"), REPLIES)
def test_find_commands(text, lines, rest):
    found = find_commands(text)
    assert [c.line for c in found.commands] == lines
    if rest is not None:
        assert found.text == rest


def test_html_only_reply_commands_are_found_and_quotes_ignored():
    html = ("<div>/status waiting</div><div>Bitte Foto schicken.</div>"
            '<div class="gmail_quote">Am Mo. schrieb Carla:<blockquote>/close</blockquote></div>')
    found = find_commands(html_to_text(html))
    assert [c.line for c in found.commands] == ["/status waiting"]


# (line, verb, arg, error fragment or "")
LINES = [
    ("/status waiting", "status", "waiting", ""),
    ("/STATUS Waiting for customer", "status", "Waiting for customer", ""),
    ("/priority 3", "priority", "3", ""),
    ("/priority urgent", "priority", "urgent", "priority must be"),
    ("/due 2026-12-24", "due", "2026-12-24", ""),
    ("/due tomorrow", "due", "tomorrow", "due date must look like"),
    ("/close now", "close", "now", "takes no argument"),
    ("/cc add dieter@client.example", "cc", "add dieter@client.example", ""),
    ("/cc dieter@client.example", "cc", "dieter@client.example", "use /cc add"),
    ("/frobnicate", "frobnicate", "", "unknown command /frobnicate"),
    ("/assign", "assign", "", "needs a value"),
]


@pytest.mark.parametrize(("line", "verb", "arg", "error"), LINES)
def test_parse_command(line, verb, arg, error):
    cmd = parse_command(line)
    assert (cmd.verb, cmd.arg) == (verb, arg)
    assert (error in cmd.error) if error else cmd.error == ""


TICKET = TicketState(number=7, project="acme", status="open", requester="carla@c.example")
WORLD = World(agents={"anna@a.example": ("Anna Agent", None),
                      "otto@a.example": ("Otto", frozenset({"other"}))},
              groups={"web": "anna@a.example"}, projects={"acme": "support"})
AGENT = Actor("anna@a.example", "agent")
OUTSIDER = Actor("otto@a.example", "agent", frozenset({"other"}))
ADMIN = Actor("root@a.example", "admin")
CUSTOMER = Actor("carla@c.example", "customer")
STRANGER = Actor("eve@evil.example", "stranger")

# (who, status before, command, applied?, fragment of the answer)
PERMISSIONS = [
    # labels are the support document's (German) since issue 11
    (AGENT, "open", "/status waiting", True, "Warten auf Rückmeldung"),
    (ADMIN, "open", "/status waiting", True, "Warten auf Rückmeldung"),
    (OUTSIDER, "open", "/status waiting", False, "not an agent of project acme"),
    (CUSTOMER, "open", "/status closed", False, "customers may only use /close, /reopen"),
    # the support workflow lets customers choose the priority (customer_may), issue 11
    (CUSTOMER, "open", "/priority high", True, "priority is now 3"),
    (CUSTOMER, "open", "/group web", True, "group is now web"),
    (CUSTOMER, "open", "/owner anna", False, "customers may only use"),
    (CUSTOMER, "open", "/time 1h", False, "customers may only use"),
    (CUSTOMER, "open", "/close", False, "can be confirmed only when"),
    (CUSTOMER, "resolved", "/close", True, "Geschlossen"),
    (CUSTOMER, "closed", "/reopen", True, "Offen"),
    (CUSTOMER, "open", "/reopen", False, "cannot reopen"),
    (STRANGER, "resolved", "/close", False, "only agents and the ticket's customers"),
    (AGENT, "open", "/assign anna", True, "anna@a.example"),
    (AGENT, "open", "/assign me", True, "anna@a.example"),
    (AGENT, "open", "/assign otto", False, "no agent of project acme"),
    (AGENT, "open", "/group web", True, "assigned to its owner"),
    (AGENT, "open", "/owner anna", True, "owner is now anna@a.example"),
    (AGENT, "open", "/owner otto", False, "no agent of project acme"),
    (AGENT, "open", "/offer 6h", True, "offer of 6h recorded as sent"),
    (AGENT, "open", "/offer accepted", False, "no offer is recorded"),
    (AGENT, "open", "/time 1h30", True, "1h30 booked"),
    (AGENT, "open", "/group sales", False, "unknown group"),
    (AGENT, "open", "/type incident", True, "incident"),
    (AGENT, "open", "/type gossip", False, "unknown type"),
    (AGENT, "open", "/project nowhere", False, "unknown project"),
    (AGENT, "open", "/cc remove nobody@c.example", False, "is not on the ticket"),
    (AGENT, "open", "/reopen", False, "not closed"),
]


@pytest.mark.parametrize(("actor", "status", "line", "applied", "answer"), PERMISSIONS)
def test_permissions(actor, status, line, applied, answer):
    from dataclasses import replace

    result = plan((parse_command(line),), replace(TICKET, status=status), actor, SUPPORT, WORLD)
    assert result.applied is applied
    assert answer in result.outcomes[0].message
    if not applied:
        assert result.after == result.before


def test_all_or_nothing():
    cmds = (parse_command("/priority high"), parse_command("/status nowhere"))
    result = plan(cmds, TICKET, AGENT, SUPPORT, WORLD)
    assert not result.applied and result.changes == []
    assert result.outcomes[0].message.startswith("not applied")


def test_plan_changes_are_reported_field_by_field():
    cmds = tuple(parse_command(c) for c in ("/priority high", "/due 2026-12-24", "/status "
                                                                                 "waiting"))
    result = plan(cmds, TICKET, AGENT, SUPPORT, WORLD)
    assert result.changes == [("status", "open", "waiting"), ("priority", "2", "3"),
                              ("due", "", "2026-12-24")]
    assert result.after.due == dt.date(2026, 12, 24)


def test_website_transitions_follow_the_workflow():
    web = WF["website"]
    t = TicketState(number=1, project="acme", status="backlog")
    ok = plan((parse_command("/status to-do"),), t, AGENT, web, WORLD)
    jump = plan((parse_command("/status live"),), t, AGENT, web, WORLD)
    assert ok.applied and ok.after.status == "to-do"
    assert jump.applied  # /close's target (live) is always reachable for agents
    refused = plan((parse_command("/status in-production"),), t, AGENT, web, WORLD)
    assert not refused.applied and "cannot move to" in refused.outcomes[0].message


def test_twolevel_reopen_marks_urgent_and_customers_cannot_change_anything():
    two = WF["twolevel"]
    closed = TicketState(number=1, project="acme", status="closed", requester="carla@c.example")
    result = plan((parse_command("/reopen"),), closed, AGENT, two, WORLD)
    assert (result.after.status, result.after.urgent, result.after.priority) == (
        "reopened", True, 3)
    for line in ("/close", "/reopen", "/status received"):
        assert not plan((parse_command(line),), closed, CUSTOMER, two, WORLD).applied


# (workflow, status, customer reply moves it to)
CUSTOMER_REPLIES = [
    ("support", "waiting", ("open", "")),
    ("support", "resolved", None),
    ("support", "closed", None),
    ("website", "waiting-for-data", ("data-checked", "")),
    ("twolevel", "in-progress", ("in-progress", "waiting-for-supporter")),
]


@pytest.mark.parametrize(("name", "status", "expected"), CUSTOMER_REPLIES)
def test_customer_reply_effect(name, status, expected):
    assert after_customer_reply(WF[name], status) == expected


def test_timers_close_tickets_waiting_for_approval_after_8_days():
    two = WF["twolevel"]
    assert due_timer(two, "in-progress", "waiting-for-customer-approval", 7.9) is None
    assert due_timer(two, "in-progress", "waiting-for-customer-approval", 8).to == "closed"


def test_a_reminder_never_moves_a_ticket():
    support = WF["support"]
    assert due_timer(support, "waiting", "", 400) is None


TWO_APPROVAL = "customer after 5 days in waiting-for-customer-approval"
# (workflow, status, sub-status, days without activity, reminders sent since, expected)
REMINDERS = [
    ("support", "waiting", "", 3.9, frozenset(), ()),
    ("support", "waiting", "", 4, frozenset(), ("customer after 4 days in waiting",)),
    ("support", "waiting", "", 9, frozenset({"customer after 4 days in waiting"}), ()),
    ("support", "open", "", 30, frozenset(), ()),
    ("support", "resolved", "", 30, frozenset(), ()),
    ("support", "waiting-internal", "", 3, frozenset(),
     ("agents after 3 days in waiting-internal",)),
    ("website", "waiting-for-data", "", 5, frozenset(),
     ("customer after 5 days in waiting-for-data",)),
    ("website", "in-production", "", 50, frozenset(), ()),
    ("twolevel", "in-progress", "waiting-for-customer-approval", 4.9, frozenset(), ()),
    ("twolevel", "in-progress", "waiting-for-customer-approval", 5, frozenset(),
     (TWO_APPROVAL,)),
    ("twolevel", "in-progress", "waiting-for-customer-approval", 7, frozenset({TWO_APPROVAL}),
     ()),
    ("twolevel", "in-progress", "waiting-for-development", 30, frozenset(), ()),
]


@pytest.mark.parametrize(("name", "status", "sub", "days", "sent", "expected"), REMINDERS)
def test_which_reminders_are_due(name, status, sub, days, sent, expected):
    assert tuple(t.key for t in due_reminders(WF[name], status, sub, days, sent)) == expected


XMAS, D = dt.date(2026, 12, 24), dt.timedelta(days=1)
# (due date, today, category of the status, dates reminded of before, remind now?)
DUE_DATES = [
    (None, XMAS, "open", frozenset(), False),
    (XMAS, XMAS - D, "open", frozenset(), False),
    (XMAS, XMAS, "open", frozenset(), True),
    (XMAS, XMAS + 10 * D, "waiting", frozenset(), True),      # overdue, never reminded
    (XMAS, XMAS, "closed", frozenset(), False),
    (XMAS, XMAS + D, "open", frozenset({"2026-12-24"}), False),
    (XMAS + 7 * D, XMAS + 7 * D, "open", frozenset({"2026-12-24"}), True),   # a new date
]


@pytest.mark.parametrize(("due", "today", "category", "reminded", "expected"), DUE_DATES)
def test_when_a_due_date_reminds(due, today, category, reminded, expected):
    assert due_date_reminder(due, today, category, reminded) is expected


# (table, error fragment)
BAD_WORKFLOWS = [
    ({"statuses": []}, "statuses: expected a non-empty list"),
    ({"statuses": [{"name": "a", "category": "done"}]}, "category: expected one of"),
    ({"statuses": [{"name": "a"}, {"name": "z", "category": "closed"}], "initial": "b"},
     "initial: expected one of the statuses"),
    ({"statuses": [{"name": "a", "next": ["zz"]}, {"name": "z", "category": "closed"}]},
     "'zz' is not a status"),
    ({"statuses": [{"name": "a"}]}, "close: expected one of the statuses .a.; there is no"),
    ({"statuses": [{"name": "a", "colour": "red"}]}, "colour: unknown key"),
    ({"statuses": [{"name": "a"}], "flavour": 1}, "flavour: unknown key"),
    ({"statuses": [{"name": "a"}, {"name": "z", "category": "closed"}],
      "timers": [{"when": "a", "days": 2, "to": "z", "remind": "customer"}]},
     r"timers\[0\]: expected either to .* or remind"),
    ({"statuses": [{"name": "a"}, {"name": "z", "category": "closed"}],
      "timers": [{"when": "a", "days": 2}]}, r"timers\[0\]: expected either to"),
    ({"statuses": [{"name": "a"}, {"name": "z", "category": "closed"}],
      "timers": [{"when": "a", "days": 2, "remind": "boss"}]},
     "remind: expected customer or agents, got 'boss'"),
    ({"statuses": [{"name": "a"}, {"name": "z", "category": "closed"}],
      "timers": [{"when": "a", "days": 0, "remind": "agents"}]}, "days: expected a whole"),
    ({"statuses": [{"name": "a"}, {"name": "z", "category": "closed"}],
      "timers": [{"when": "a", "days": 2, "remind": "agents", "hour": 9}]},
     "hour: unknown key"),
]


@pytest.mark.parametrize(("table", "error"), BAD_WORKFLOWS)
def test_bad_workflow_tables_name_the_key(table, error):
    with pytest.raises(WorkflowError, match=error):
        build_workflow("mine", table)
    assert "[workflows.mine]" in _message(table)


def _message(table) -> str:
    try:
        build_workflow("mine", table)
    except WorkflowError as exc:
        return str(exc)
    return ""


def test_a_config_workflow_may_extend_a_preset():
    mine = build_workflows({"agency": {"extends": "support", "types": ["bug", "wish"]}})
    assert mine["agency"].types == ("bug", "wish")
    assert list(mine["agency"].statuses) == list(SUPPORT.statuses)


def test_a_bad_workflow_in_the_config_file_names_file_and_key():
    from mailgate.config import ConfigError, config_from_dict

    with pytest.raises(ConfigError) as err:
        config_from_dict({"workflows": {"mine": {"extends": "support", "initial": "nowhere"}}},
                         source="/etc/mailgate.toml")
    assert str(err.value).startswith("/etc/mailgate.toml: [workflows.mine] initial: expected")
