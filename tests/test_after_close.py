"""Follow-ups to closed tickets: `[workflows.NAME] after_close` and `reopen_within_days`.

The decision is a table over `routing.decide` (each policy × within or after the window ×
the support and two-level workflows); the config keys fail with the key named; end to end
over real SMTP a follow-up to a closed ticket under each policy, on both databases."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlmodel import select

from routing.actors import Staff
from routing.context import Policy, ProjectInfo, Site, TicketContext, TicketState
from routing.decide import Incoming, decide
from routing.effects import Direction, MailKind
from routing.followup import follow_up
from routing.guards import GuardFacts
from routing.loops import AutoClass
from routing.rules import MailFacts, RouteDecision, Rule, Target
from routing.workflow import WorkflowError
from routing.workflow_config import build_workflows
from store.models import Message, Outbox, Ticket
from tests.support.harness import SUPPORT, make_mail

NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)
CARL = "carl@customer.example"


def _site(preset: str, **keys) -> Site:
    wfs = build_workflows({"wf": {"extends": preset, **keys}})
    return Site(Staff({}), {"p": ProjectInfo("p", "P", "p", "wf")}, wfs,
                Policy(SUPPORT))


def _closed(site: Site, status: str, days_ago: float) -> TicketContext:
    wf = site.workflows["wf"]
    return TicketContext(TicketState(7, "p", status, substatus="normal" if wf.substatuses
                                     else "", requester=CARL), "Printer",
                         site.projects["p"], wf, last_inbound="<in@customer.example>",
                         closed_at=NOW - dt.timedelta(days=days_ago))


def _decide(site: Site, ctx: TicketContext, auto: AutoClass | None = None):
    mail = Incoming(MailFacts(CARL, "", (), "Re: [#7] Printer", ()), "Carl",
                    "<m1@customer.example>", "It broke again.", auto=auto or AutoClass.human())
    route = RouteDecision(Target.TICKET, Rule.SUBJECT_TAG, "subject tag [#7]", 7, "p")
    return decide(mail, route, ctx, site, GuardFacts(site.policy, frozenset({SUPPORT})), NOW)


# (preset, closed status, after_close, reopen_within_days, days since closing, expected)
TABLE = [
    ("support", "closed", None, None, 2, "append"),
    ("support", "closed", None, None, 400, "append"),
    ("support", "closed", "reopen", None, 2, "reopen"),
    ("support", "closed", "reopen", None, 400, "reopen"),
    ("support", "resolved", "reopen", None, 1, "reopen"),
    ("support", "closed", "new-ticket", 7, 2, "reopen"),
    ("support", "closed", "new-ticket", 7, 7, "reopen"),       # day N itself is within
    ("support", "closed", "new-ticket", 7, 8, "new-ticket"),
    ("support", "closed", "new-ticket", None, 1, "new-ticket"),
    ("support", "closed", "reject", 14, 3, "reopen"),
    ("support", "closed", "reject", 14, 30, "reject"),
    ("support", "closed", "reject", None, 1, "reject"),
    ("twolevel", "closed", None, None, 2, "append"),
    ("twolevel", "closed", "reopen", None, 30, "reopen"),
    ("twolevel", "closed", "new-ticket", 8, 3, "reopen"),
    ("twolevel", "closed", "new-ticket", 8, 9, "new-ticket"),
    ("twolevel", "closed", "reject", 8, 3, "reopen"),
    ("twolevel", "closed", "reject", 8, 9, "reject"),
]


@pytest.mark.parametrize(("preset", "status", "policy", "days", "age", "expected"), TABLE)
def test_a_customers_mail_to_a_closed_ticket_follows_the_workflows_policy(
        preset, status, policy, days, age, expected):
    keys = {k: v for k, v in (("after_close", policy), ("reopen_within_days", days))
            if v is not None}
    site = _site(preset, **keys)
    wf = site.workflows["wf"]
    ctx = _closed(site, status, age)
    effects = _decide(site, ctx)
    kinds = sorted(m.kind for m in effects.mails)
    if expected == "append":           # today's behaviour: stored, the status stays
        assert effects.ticket == 7 and effects.after.status == status
        assert MailKind.NOTICE not in kinds and effects.open is None
    elif expected == "reopen":
        assert effects.ticket == 7 and effects.after.status == wf.reopen
        assert effects.after.urgent is wf.urgent_on_reopen     # two-level: marked urgent
        assert any(c.field == "status" and "follow-up" in c.rule for c in effects.changes)
    elif expected == "new-ticket":
        assert effects.open is not None and effects.open.follows == 7
        assert effects.open.project == "p" and effects.ticket is None
        assert effects.open.subject == "Re: Printer"       # the old [#7] left out
        (ack,) = (m for m in effects.mails if m.kind is MailKind.ACK)
        assert ack.follows == 7 and ack.to.email == CARL
    else:                              # reject: kept on the old ticket, the sender told
        assert effects.ticket == 7 and effects.after == ctx.state and not effects.changes
        assert effects.message.direction is Direction.IN
        (notice,) = effects.mails
        assert notice.kind is MailKind.NOTICE and notice.template == "followup_rejected"
        assert notice.to.email == CARL and notice.automatic
    if expected != "append":
        assert effects.disposition["follow_up"]["action"] == expected


@pytest.mark.parametrize("policy", ["reopen", "new-ticket", "reject"])
def test_automatic_mail_to_a_closed_ticket_is_only_added_to_it(policy):
    site = _site("support", after_close=policy)
    ctx = _closed(site, "closed", 30)
    effects = _decide(site, ctx, AutoClass(True, True, ("Auto-Submitted: auto-replied",)))
    assert effects.ticket == 7 and effects.after.status == "closed" and not effects.mails


def test_a_ticket_that_is_not_closed_is_no_follow_up():
    assert follow_up("reject", None, closed=False, closed_at=None, now=NOW) is None
    # a closed ticket whose closing time is unknown counts as closed long ago
    assert follow_up("reject", 30, closed=True, closed_at=None, now=NOW).action == "reject"


@pytest.mark.parametrize(("keys", "message"), [
    ({"after_close": "archive"}, "after_close: expected one of 'reopen', 'new-ticket', "
                                 "'reject', got 'archive'"),
    ({"after_close": "reject", "reopen_within_days": -1}, "reopen_within_days: expected a "
                                                          "whole number of days"),
    ({"after_close": "reject", "reopen_within_days": "7"}, "reopen_within_days: expected"),
    ({"after_close": "reopen", "reopen_within_days": 7}, "reopen_within_days: only with "
                                                         "after_close = 'new-ticket' or"),
    ({"reopen_within_days": 7}, "got after_close = 'unset'"),
])
def test_wrong_after_close_settings_name_the_key_and_what_it_may_be(keys, message):
    with pytest.raises(WorkflowError) as err:
        build_workflows({"mine": {"extends": "support", **keys}})
    assert err.value.args[0].startswith("[workflows.mine] ") and message in str(err.value)


def test_the_presets_keep_adding_mail_to_closed_tickets():
    for wf in build_workflows({}).values():
        assert wf.after_close == "" and wf.reopen_within_days is None


# --- end to end -------------------------------------------------------------------------

POLICIES = {"reopen": {"after_close": "reopen"},
            "newticket": {"after_close": "new-ticket", "reopen_within_days": 7},
            "reject": {"after_close": "reject"}}
CARLA = "carla@client.example"


def test_a_follow_up_to_a_closed_ticket_under_each_policy(harness_factory, db_url):
    """Each project's workflow has another after_close: a mail to its closed ticket
    reopens it; opens a new ticket linked both ways whose ack names the old number; or is
    kept on the closed ticket while the sender gets the notice (in the project's
    language, through the outbox)."""
    h = harness_factory(db_url, workflows={name: {"extends": "support", **keys}
                                           for name, keys in POLICIES.items()}).start()
    for name in POLICIES:
        assert h.cli("project", "add", name, "--name", name.title(), "--workflow", name,
                     "--customer", CARLA, *(("--language", "de") if name == "reject"
                                            else ())).code == 0
        h.send(make_mail(sender=CARLA, to=f"support+{name}@example.com",
                         subject=f"Printer {name}", body="The printer is broken."),
               rcpt=f"support+{name}@example.com")
    h.settle()
    numbers = {t.subject.split()[-1]: t.id for t in h.tickets()}
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    with h.app.db.unit() as s:             # every ticket closed a month ago
        for t in s.exec(select(Ticket)):
            t.status, t.closed_at = "closed", long_ago
            s.add(t)
    h.relay.messages.clear()
    for name, number in numbers.items():
        h.send(make_mail(sender=CARLA, subject=f"Re: [#{number}] Printer {name}",
                         body="It is broken again."))
    h.settle()
    tickets = {t.id: t for t in h.tickets()}
    assert tickets[numbers["reopen"]].status == "open"
    assert tickets[numbers["reject"]].status == "closed"
    assert tickets[numbers["newticket"]].status == "closed"
    (new,) = set(tickets) - set(numbers.values())
    assert tickets[new].subject == "Re: Printer newticket"      # the old tag left out
    with h.app.db.unit(write=False) as s:
        kept = s.exec(select(Message).where(Message.ticket_id == numbers["reject"])).all()
        assert [m.text for m in kept][-1] == "It is broken again."
        (notice_row,) = s.exec(select(Outbox).where(Outbox.kind == "notice")).all()
    # the new ticket's ack names the old ticket; the notice is German, guarded like any
    acks = [m for m in h.relay.messages if f"[#{new}]" in m.subject]
    assert acks and f"#{numbers['newticket']}" in acks[0].text
    notices = [m for m in h.relay.messages if "Anfrage abgeschlossen" in m.subject]
    assert len(notices) == 1 and notices[0].header("Auto-Submitted") == "auto-replied"
    assert f"#{numbers['reject']}" in notices[0].text
    assert notice_row.ticket_id == numbers["reject"] and notice_row.rcpt == CARLA
    # the link is shown on both tickets
    old_show = h.cli("ticket", "show", str(numbers["newticket"]))
    new_show = h.cli("ticket", "show", str(new))
    assert re.search(rf"followed up by\s+#{new}", old_show.out), old_show.out
    assert re.search(rf"follows up\s+#{numbers['newticket']}", new_show.out), new_show.out
