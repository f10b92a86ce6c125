"""`routing.decide.decide`: what a routed mail causes, as one `Effects` value. Fixtures: three
projects on the preset workflows, agents with different notification choices, ticket #7."""

from __future__ import annotations

import pytest

from routing.actors import AgentInfo, Person, Staff
from routing.context import Policy, ProjectInfo, Site, TicketContext, TicketState
from routing.decide import COMMANDS_NEED_TOKEN, Incoming, decide
from routing.effects import Audience, Change, Direction, MailKind, OpenTicket, Outcome
from routing.guards import GuardFacts
from routing.loops import AutoClass
from routing.rules import MailFacts, RouteDecision, Rule, Target
from routing.trust import Verdict
from routing.workflow_config import build_workflows

WORKFLOWS = build_workflows({})
ANNA = AgentInfo("anna@example.com", "Anna Agent", projects=frozenset({"acme", "web", "two"}),
                 notify=frozenset({"new_ticket", "customer_reply"}))
BEN = AgentInfo("ben@example.com", "Ben", projects=frozenset({"acme"}),
                notify=frozenset({"file_uploaded", "status_change", "assigned"}))
ADA = AgentInfo("ada@example.com", "Ada Admin", admin=True)               # wants no mail
OTTO = AgentInfo("otto@example.com", "Otto", projects=frozenset({"other"}),
                 notify=frozenset({"customer_reply"}))
PROJECTS = {slug: ProjectInfo(slug, slug.title(), slug, wf)
            for slug, wf in (("acme", "support"), ("web", "website"), ("two", "twolevel"))}
CARL, DORA = Person("carl@customer.example", "Carl"), Person("dora@customer.example")
UNVERIFIED = Verdict(False, "no Authentication-Results from mx.example.com")
OUT_OF_OFFICE = AutoClass(True, True, ("Auto-Submitted: auto-replied",))
BULK = AutoClass(True, False, ("Precedence: bulk",))


def site(groups: dict[str, str] | None = None) -> Site:
    staff = Staff({a.email: a for a in (ANNA, BEN, ADA, OTTO)})
    groups = {"accounting": "billing@example.com"} if groups is None else groups
    return Site(staff, PROJECTS, WORKFLOWS, Policy("support@example.com", groups=groups))


def ticket(project: str = "acme", status: str = "waiting", **state) -> TicketContext:
    wf = WORKFLOWS[PROJECTS[project].workflow]
    return TicketContext(TicketState(7, project, status, requester=CARL.email,
                                     cc=frozenset({DORA.email}), **state),
                         "Printer", PROJECTS[project], wf, customers=(CARL, DORA),
                         last_inbound="<last-in@customer.example>")


def mail(sender: str, text: str = "Hello", *, auto: AutoClass | None = None,
         verdict: Verdict | None = None, attachments: int = 0,
         subject: str = "Printer broken") -> Incoming:
    return Incoming(MailFacts(sender, "", (), subject, ()), sender_name="Sender",
                    message_id="<m1@sender.example>", text=text, attachments=attachments,
                    auto=auto or AutoClass.human(), verdict=verdict or Verdict.unchecked())


def to_ticket(project: str = "acme", rule: str = Rule.REPLY_TOKEN,
              purpose: str = "reply") -> RouteDecision:
    return RouteDecision(Target.TICKET, rule, "routed", ticket=7, project=project,
                         purpose=purpose)


def run(m: Incoming, route: RouteDecision, ctx: TicketContext | None, s: Site | None = None):
    s = s or site()
    return decide(m, route, ctx, s, GuardFacts(s.policy, frozenset({"support@example.com"})))


def sent(effects, *kinds: MailKind) -> list[tuple[str, str]]:
    return sorted((m.kind, m.to.email) for m in effects.mails if not kinds or m.kind in kinds)


def transcript_of(effects) -> str:
    (t,) = (m for m in effects.mails if m.kind is MailKind.TRANSCRIPT)
    return t.transcript


# --- unassigned and new tickets ---------------------------------------------------------


@pytest.mark.parametrize("route, ctx", [
    (RouteDecision(Target.UNASSIGNED, Rule.NONE, "nothing matched"), None),
    (to_ticket(), None),
], ids=["unassigned-route", "ticket-route-without-a-ticket"])
def test_unassigned_mail_is_stored_as_stranger_and_answered_by_nobody(route, ctx):
    e = run(mail(CARL.email, "Who are you?"), route, ctx)
    assert e.outcome is Outcome.UNASSIGNED
    assert (e.message.direction, e.message.author, e.message.text) == (
        Direction.IN, "stranger", "Who are you?")
    assert e.mails == () and e.open is None and e.disposition["actor"] == "stranger"


@pytest.mark.parametrize("rule, link", [
    (Rule.PROJECT_ADDRESS, True), (Rule.SENDER_PROJECT, False),
], ids=["project-address-links-the-contact", "sender-project-links-nothing"])
def test_new_ticket_is_opened_acknowledged_and_announced_to_new_ticket_agents(rule, link):
    route = RouteDecision(Target.NEW_TICKET, rule, "routed", project="acme")
    e = run(mail(CARL.email, "My printer is broken."), route, None)
    assert e.outcome is Outcome.DONE
    assert e.open == OpenTicket("acme", "Printer broken", "new", Person(CARL.email, "Sender"),
                                link_contact=link)
    assert (e.message.direction, e.message.author) == (Direction.IN, "customer")
    (ack,) = (m for m in e.mails if m.kind is MailKind.ACK)
    assert (ack.to.email, ack.audience, ack.auto, ack.in_reply_to) == (
        CARL.email, Audience.CUSTOMER, "auto-replied", "<m1@sender.example>")
    assert sent(e, MailKind.NOTIFY) == [(MailKind.NOTIFY, ANNA.email)]


def test_new_ticket_without_a_subject_is_named_no_subject():
    route = RouteDecision(Target.NEW_TICKET, Rule.PROJECT_ADDRESS, "routed", project="acme")
    assert run(mail(CARL.email, subject=""), route, None).open.subject == "(no subject)"


@pytest.mark.parametrize("auto, note", [
    (AutoClass(True, False, ("Auto-Submitted: auto-generated",)),
     "no acknowledgement: Auto-Submitted: auto-generated"),
    (AutoClass(False, True), "no acknowledgement: the sender asked for none"),
], ids=["automatic-mail-gets-no-ack", "suppress-reply-gets-no-ack"])
def test_new_ticket_from_mail_wanting_no_reply_is_not_acked_but_agents_hear(auto, note):
    route = RouteDecision(Target.NEW_TICKET, Rule.PROJECT_ADDRESS, "routed", project="acme")
    e = run(mail(CARL.email, auto=auto), route, None)
    assert e.open is not None
    assert sent(e) == [(MailKind.NOTIFY, ANNA.email)]
    assert e.disposition["notes"] == [note]


# --- a customer's mail on a ticket ------------------------------------------------------


@pytest.mark.parametrize("attachments, notified", [
    (0, [ANNA.email]), (2, [ANNA.email, BEN.email]),
], ids=["reply-tells-customer-reply-agents", "files-also-tell-file-uploaded-agents"])
def test_customer_reply_is_stored_inbound_and_notifies_agents(attachments, notified):
    e = run(mail(CARL.email, "Still broken.", attachments=attachments), to_ticket(),
            ticket(status="open"))
    assert (e.message.direction, e.message.author, e.message.text) == (
        Direction.IN, "customer", "Still broken.")
    assert sent(e) == [(MailKind.NOTIFY, a) for a in notified]


@pytest.mark.parametrize("sender, notified", [
    (CARL.email, [OTTO.email]), (OTTO.email, []),
], ids=["customer-mail-tells-the-assignee", "assignee-writing-is-not-told-of-own-mail"])
def test_customer_side_mail_never_notifies_its_own_sender(sender, notified):
    # Otto is assigned but no agent of the ticket's project: his mail takes the customer path.
    e = run(mail(sender, "News"), to_ticket(), ticket(status="open", assignee=OTTO.email))
    assert [m.to.email for m in e.mails if m.kind is MailKind.NOTIFY] == notified


CUSTOMER_REPLY_MOVES = [
    pytest.param("acme", "waiting", "", "open", "", id="support-waiting-to-open"),
    pytest.param("web", "waiting-for-data", "", "data-checked", "",
                 id="website-waiting-for-data-to-data-checked"),
    pytest.param("two", "in-progress", "normal", "in-progress", "waiting-for-supporter",
                 id="twolevel-in-progress-to-waiting-for-supporter"),
]


@pytest.mark.parametrize("project, status, sub, new_status, new_sub", [
    *CUSTOMER_REPLY_MOVES,
    pytest.param("acme", "resolved", "", "resolved", "", id="support-resolved-stays"),
    pytest.param("acme", "open", "", "open", "", id="support-open-stays"),
    pytest.param("web", "at-customer", "", "at-customer", "", id="website-at-customer-stays"),
])
def test_customer_reply_applies_the_workflows_on_customer_reply(project, status, sub,
                                                                new_status, new_sub):
    ctx = ticket(project, status, substatus=sub)
    e = run(mail(CARL.email, "Here it is."), to_ticket(project), ctx)
    assert (e.after.status, e.after.substatus) == (new_status, new_sub)
    rule = f"workflow: a customer's reply in {ctx.workflow.status_label(status)}"
    assert e.changes == tuple(
        Change(f, old, new, rule)
        for f, old, new in (("status", status, new_status), ("substatus", sub, new_sub))
        if old != new)


@pytest.mark.parametrize("project, status, sub, new_status, new_sub", CUSTOMER_REPLY_MOVES)
def test_automatic_customer_mail_does_not_move_the_status(project, status, sub, new_status,
                                                          new_sub):
    e = run(mail(CARL.email, auto=BULK), to_ticket(project), ticket(project, status,
                                                                     substatus=sub))
    assert (e.after.status, e.after.substatus, e.changes) == (status, sub, ())
    assert "status unchanged: automatic mail" in e.disposition["notes"]


# --- an agent's mail on a ticket --------------------------------------------------------


@pytest.mark.parametrize("text, customers", [
    ("Please restart it.", [CARL.email, DORA.email]),
    ("/cc add eve@customer.example\nPlease restart it.",
     [CARL.email, DORA.email, "eve@customer.example"]),
    ("/cc remove dora@customer.example\nPlease restart it.", [CARL.email]),
], ids=["to-requester-and-cc", "to-a-customer-added-by-cc", "not-to-a-customer-removed"])
def test_agent_reply_is_forwarded_as_a_human_mail_to_every_customer(text, customers):
    e = run(mail(ANNA.email, text), to_ticket(), ticket(status="open"))
    assert (e.message.direction, e.message.text) == (Direction.OUT, "Please restart it.")
    replies = [m for m in e.mails if m.kind is MailKind.REPLY]
    assert sorted(m.to.email for m in replies) == customers
    assert {(m.auto, m.in_reply_to, m.from_name, m.audience) for m in replies} == {
        (None, "<last-in@customer.example>", "Anna Agent", Audience.CUSTOMER)}


@pytest.mark.parametrize("text, changes", [
    ("/priority high", [("priority", "2", "3", "/priority high")]),
    ("/status open\n/priority low", [("status", "waiting", "open", "/status open"),
                                     ("priority", "2", "1", "/priority low")]),
    ("/status open\n/status resolved", [("status", "waiting", "resolved", "/status resolved")]),
    ("/assign ben", [("assignee", "", BEN.email, "/assign ben")]),
    ("/due 2026-12-31", [("due", "", "2026-12-31", "/due 2026-12-31")]),
], ids=["priority", "two-fields-two-changes", "one-change-per-field-last-line-wins",
        "assign", "due"])
def test_agent_commands_via_reply_token_change_fields_and_answer_with_a_transcript(text,
                                                                                    changes):
    e = run(mail(ANNA.email, text), to_ticket(), ticket())
    assert e.changes == tuple(Change(*c) for c in changes)
    assert e.disposition["commands"] and all(c["ok"] for c in e.disposition["commands"])
    assert all(f"> {line}\ndone: " in transcript_of(e) for line in text.splitlines())
    assert sent(e, MailKind.TRANSCRIPT) == [(MailKind.TRANSCRIPT, ANNA.email)]


@pytest.mark.parametrize("rule", [Rule.REFERENCES, Rule.SUBJECT_TAG])
def test_agent_commands_routed_without_the_reply_token_are_refused(rule):
    ctx = ticket()
    e = run(mail(ANNA.email, "/status open\nThanks"), to_ticket(rule=rule), ctx)
    assert (e.changes, e.after) == ((), ctx.state)
    assert e.disposition["commands"] == [{"line": "/status open", "ok": False,
                                          "result": COMMANDS_NEED_TOKEN}]
    # the agent is told why, with a proper reply address; nobody else gets anything
    assert [(m.kind, m.template, m.to.email) for m in e.mails] == [
        (MailKind.TRANSCRIPT, "agent_unverified", ANNA.email)]
    assert "not at a reply address issued to you" in e.mails[0].transcript
    assert (e.message.direction, e.message.author) == (Direction.INTERNAL, "unverified")


def test_a_line_not_applied_because_another_was_refused_is_not_reported_done():
    e = run(mail(ANNA.email, "/status open\n/priority urgent"), to_ticket(), ticket())
    assert e.changes == ()
    assert "done:" not in transcript_of(e)


@pytest.mark.parametrize("route, text", [
    pytest.param(to_ticket(purpose="note"), "The customer is on holiday.",
                 id="mail-to-the-note-address"),
    pytest.param(to_ticket(), "/note\nThe customer is on holiday.", id="note-command"),
    pytest.param(to_ticket(rule=Rule.SUBJECT_TAG), "/note\nThe customer is on holiday.",
                 id="note-command-routed-by-subject-tag"),
    pytest.param(to_ticket(), "/note\n/priority urgent\nThe customer is on holiday.",
                 id="note-command-beside-a-refused-command"),
])
def test_agent_note_is_stored_internally_and_never_sent_to_customers(route, text):
    e = run(mail(ANNA.email, text), route, ticket(status="open"))
    assert (e.message.direction, e.message.text) == (
        Direction.INTERNAL, "The customer is on holiday.")
    assert [m for m in e.mails if m.audience is Audience.CUSTOMER] == []


@pytest.mark.parametrize("text", ["I am out of the office until Monday.",
                                  "/close\nI am out of the office until Monday."],
                         ids=["out-of-office", "out-of-office-with-a-command-line"])
def test_agent_automatic_mail_stays_internal_and_runs_no_command(text):
    ctx = ticket(status="open")
    e = run(mail(ANNA.email, text, auto=OUT_OF_OFFICE), to_ticket(), ctx)
    assert e.message.direction is Direction.INTERNAL
    assert not [m for m in e.mails if m.kind is MailKind.REPLY]
    assert (e.changes, e.after, e.disposition["commands"]) == ((), ctx.state, [])
    assert ("commands not read: automatic mail" in e.disposition["notes"]) == ("/close" in text)


# --- verification and customers' commands ----------------------------------------------


def test_unverified_agent_reply_is_kept_internal_and_the_agent_is_told():
    e = run(mail(ANNA.email, "Please restart it.", verdict=UNVERIFIED), to_ticket(),
            ticket(status="open"))
    assert e.message.direction is Direction.INTERNAL
    assert sent(e) == [(MailKind.TRANSCRIPT, ANNA.email)]
    assert transcript_of(e).startswith(f"Your mail could not be verified ({UNVERIFIED.reason})")
    assert "not sent to the customer" in transcript_of(e)


@pytest.mark.parametrize("sender, status", [
    (ANNA.email, "open"), (CARL.email, "resolved"),
], ids=["agent-commands", "customer-close"])
def test_commands_of_an_unverified_sender_are_refused(sender, status):
    ctx = ticket(status=status)
    e = run(mail(sender, "/close", verdict=UNVERIFIED), to_ticket(), ctx)
    assert (e.changes, e.after) == ((), ctx.state)
    assert f"refused: your mail could not be verified: {UNVERIFIED.reason}" in transcript_of(e)
    assert sent(e, MailKind.TRANSCRIPT) == [(MailKind.TRANSCRIPT, sender)]


@pytest.mark.parametrize("status, text, new_status, answer", [
    # labels are the support document's (German) since issue 11
    ("resolved", "/close", "closed", "done: status is now Geschlossen"),
    ("waiting", "/close", "closed", "done: status is now Geschlossen"),
    ("open", "/close", "open", "refused: the ticket is Offen; it can be confirmed only when "
                               "Gelöst or Warten auf Rückmeldung"),
    # the support workflow lets customers choose the priority (issue 11)
    ("open", "/priority high", "open", "done: priority is now 3 (high)"),
    ("open", "/assign anna", "open",
     "refused: customers may only use /close, /reopen, /approve and what the workflow lets "
     "them set, not /assign"),
], ids=["close-when-resolved", "close-when-waiting", "no-close-when-open", "priority",
        "no-assign"])
def test_customer_commands(status, text, new_status, answer):
    e = run(mail(CARL.email, text), to_ticket(), ticket(status=status))
    assert e.after.status == new_status
    assert answer in transcript_of(e)
    # a status change is announced to the other customers, never to the one who made it
    assert sent(e, MailKind.STATUS) == [(MailKind.STATUS, DORA.email)] * (new_status != status)
    (t,) = (m for m in e.mails if m.kind is MailKind.TRANSCRIPT)
    assert (t.to.email, t.audience) == (CARL.email, Audience.CUSTOMER)


# --- status changes and who hears of them ----------------------------------------------


@pytest.mark.parametrize("text, to_customers", [
    ("/status waiting", [(MailKind.STATUS, CARL.email), (MailKind.STATUS, DORA.email)]),
    ("/status waiting\nPlease send the logs.",
     [(MailKind.REPLY, CARL.email), (MailKind.REPLY, DORA.email)]),
    ("/status waiting-internal", []),
], ids=["command-only-sends-status-mails", "forwarded-text-replaces-status-mails",
        "invisible-status-tells-no-customer"])
def test_status_change_tells_customers_once(text, to_customers):
    e = run(mail(ANNA.email, text), to_ticket(), ticket(status="open"))
    assert sent(e, MailKind.STATUS, MailKind.REPLY) == to_customers


def test_website_live_notifies_the_accounting_group_address():
    e = run(mail(ANNA.email, "/status live"), to_ticket("web"), ticket("web", "going-live"))
    (note,) = (m for m in e.mails if m.kind is MailKind.STATUS_NOTIFY)
    assert (note.to, note.audience) == (Person("billing@example.com", "accounting"),
                                        Audience.OTHER)


def test_status_naming_a_group_without_address_is_dropped_by_the_no_address_guard():
    e = run(mail(ANNA.email, "/status live"), to_ticket("web"), ticket("web", "going-live"),
            site(groups={}))
    assert not [m for m in e.mails if m.kind is MailKind.STATUS_NOTIFY]
    (d,) = e.dropped
    assert (d.mail.kind, d.mail.to.email, d.guard) == (MailKind.STATUS_NOTIFY, "", "no-address")
    assert [ev.kind for ev in e.events if ev.kind == "mail-suppressed"] == ["mail-suppressed"]


def test_agent_close_at_customer_approval_takes_the_website_live():
    e = run(mail(ANNA.email, "/close"), to_ticket("web"), ticket("web", "at-customer"))
    assert e.after.status == "live"


# --- [trust] agents: an agent's address alone proves nothing ----------------------------

VERIFIED = Verdict(True, "dkim=pass for example.com")


def trusting(mode: str) -> Site:
    s = site()
    return Site(s.staff, s.projects, s.workflows,
                Policy("support@example.com", groups={}, agent_trust=mode))


@pytest.mark.parametrize("mode, rule, verdict, forwarded", [
    ("token", Rule.REPLY_TOKEN, Verdict.unchecked(), True),
    ("token", Rule.REPLY_TOKEN, VERIFIED, True),
    ("token", Rule.REFERENCES, VERIFIED, False),
    ("token", Rule.SUBJECT_TAG, Verdict.unchecked(), False),
    ("token", Rule.SENDER, Verdict.unchecked(), False),
    ("verified", Rule.REPLY_TOKEN, VERIFIED, True),
    ("verified", Rule.REPLY_TOKEN, Verdict.unchecked(), False),
    ("verified", Rule.REPLY_TOKEN, UNVERIFIED, False),
    ("verified", Rule.SUBJECT_TAG, VERIFIED, False),
], ids=lambda v: str(getattr(v, "reason", v)))
def test_agent_reply_reaches_the_customer_only_with_proof(mode, rule, verdict, forwarded):
    ctx = ticket(status="open")
    e = run(mail(ANNA.email, "We replaced the toner.", verdict=verdict),
            to_ticket(rule=rule), ctx, trusting(mode))
    replies = [m.to.email for m in e.mails if m.kind is MailKind.REPLY]
    assert replies == ([CARL.email, DORA.email] if forwarded else [])
    if not forwarded:
        assert e.message.direction is Direction.INTERNAL
        assert e.after == ctx.state and e.changes == ()
        assert [m.to.email for m in e.mails] == [ANNA.email]      # only the agent is told


@pytest.mark.parametrize("mode, verdict", [("verified", Verdict.unchecked()),
                                           ("token", UNVERIFIED)])
def test_agent_commands_with_a_token_but_no_verification_change_nothing(mode, verdict):
    ctx = ticket(status="open")
    e = run(mail(ANNA.email, "/status resolved\n/cc add eve@attacker.example", verdict=verdict),
            to_ticket(), ctx, trusting(mode))
    assert (e.changes, e.after) == ((), ctx.state)
    assert e.disposition["commands"] and not any(c["ok"] for c in e.disposition["commands"])
    assert not [m for m in e.mails if m.audience is Audience.CUSTOMER]


def test_unproven_agent_mail_is_logged_unverified_and_automatic_mail_gets_no_answer():
    e = run(mail(ANNA.email, "Hi", auto=OUT_OF_OFFICE), to_ticket(rule=Rule.REFERENCES),
            ticket(status="open"))
    assert e.mails == ()
    assert [(ev.kind, ev.actor) for ev in e.events] == [("unverified", ANNA.email)]


def test_customer_commands_still_need_the_customers_own_token():
    ctx = ticket(status="resolved")
    e = run(mail(CARL.email, "/reopen"), to_ticket(rule=Rule.SUBJECT_TAG), ctx)
    assert e.disposition["commands"] == [{"line": "/reopen", "ok": False,
                                          "result": COMMANDS_NEED_TOKEN}]
    assert e.after.status == "resolved"
