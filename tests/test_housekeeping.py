"""Housekeeping an admin does from the command line: every alarm can be cleared, people
and projects can be removed or renamed, and a wrong name or id is a one-line error.

Each scenario sends real mail over SMTP into a running mailgate (both databases), then
runs a table of CLI steps against the same database: arguments, exit status, a fragment
of what is printed; and checks the rows that result.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout

import pytest
from sqlmodel import select

from mailgate.cli import main as cli_main
from store.models import Inbound, Outbox
from tests.support.harness import make_mail, reply_to

CARLA = "carla@client.example"
ANNA = "anna@agency.example"
JUNK = b"\xd0\xcf\x11\xe0" + bytes(b for b in range(32, 127)) * 4 + b"\r\n"  # an Outlook .msg


def run_steps(h, steps, **ids) -> None:
    """Run (args, exit status, fragment of stdout+stderr) rows in order; `{name}` in an
    argument or fragment is filled from `ids`. (`status` says exit 1 on stdout.)"""
    for args, code, fragment in steps:
        args = [a.format(**ids) for a in args]
        result = h.cli(*args)
        said = result.out + result.err
        assert result.code == code, (args, said)
        assert fragment.format(**ids) in said, (args, said)
        if code and args[0] != "status":   # a refusal: one line on stderr, no traceback
            assert result.out == "" and result.err.count("\n") == 1, (args, said)
            assert "Traceback" not in said and "internal error" not in said


def outbox(h) -> list[Outbox]:
    with h.app.db.unit(write=False) as s:
        return list(s.exec(select(Outbox).order_by(Outbox.id)))


def inbound(h, row_id: int) -> Inbound:
    with h.app.db.unit(write=False) as s:
        return s.get(Inbound, row_id)


def show(h, n: int) -> dict:
    return json.loads(h.cli("ticket", "show", str(n), "--json").out)


def open_ticket(h, subject: str = "Drucker") -> int:
    h.send(make_mail(sender=CARLA, subject=subject), mail_from=CARLA)
    h.settle()
    return h.tickets()[-1].id


def hard_bounce(to: str, failed: str) -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.client.example>\r\n"
        f"To: {to}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn-7@mx.client.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered."
        "\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.client.example\r\n\r\n"
        f"Final-Recipient: rfc822; {failed}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "\r\n--B--\r\n").encode()


# --- quarantine drop --------------------------------------------------------------------

DROP_STEPS = [
    (["status"], 1, "1 quarantined incoming mail(s)"),
    (["quarantine", "drop", "{done}"], 1, "not in quarantine: {done} (done)"),
    (["quarantine", "drop", "{q}", "99999"], 1, "99999 (no such mail)"),   # all or nothing
    (["quarantine", "list"], 0, "Outlook .msg"),
    (["quarantine", "drop", "{q}"], 0, "dropped from the quarantine: {q}"),
    (["quarantine", "drop", "{q}"], 1, "not in quarantine: {q} (dropped)"),
    (["quarantine", "show", "{q}"], 1, "no quarantined mail with id {q}"),
    (["quarantine", "retry", "{q}"], 1, "not in quarantine: {q}"),
    (["quarantine", "list"], 0, "the quarantine is empty"),
    (["status"], 0, "attention:    nothing"),
]


def test_quarantine_drop_deletes_the_mail_and_clears_the_alarm(mg):
    open_ticket(mg)
    mg.send(JUNK)
    mg.settle()
    done, q = (r.id for r in mg.inbound())
    assert inbound(mg, q).state == "quarantined"
    run_steps(mg, DROP_STEPS, done=done, q=q)
    row = inbound(mg, q)
    assert (row.state, row.raw) == ("dropped", b"")
    assert row.reason.startswith("dropped from the quarantine by an admin (was: ")
    assert json.loads(mg.cli("status", "--json").out)["inbound"] == {"done": 1, "dropped": 1}


# --- outbox cancel ----------------------------------------------------------------------

CANCEL_STEPS = [
    (["status"], 1, "1 outgoing mail(s) refused by the relay"),
    (["outbox", "cancel", "{sent}"], 1, "{sent} (sent already; sent mail cannot be cancelled)"),
    (["outbox", "cancel", "{failed}", "99999"], 1, "99999 (no such mail)"),
    (["outbox", "cancel", "{failed}"], 0, "1 mail(s) cancelled: {failed}"),
    (["outbox", "cancel", "{failed}"], 1, "cannot cancel: {failed} (cancelled)"),
    (["outbox", "retry", "{failed}"], 1, "only failed, bounced or pending mail is sent again"),
    (["outbox", "list", "--state", "cancelled"], 0, "cancelled by an admin; before: 550"),
    (["status"], 0, "attention:    nothing"),
]


def test_outbox_cancel_stops_a_failed_mail_and_clears_the_alarm(mg):
    mg.relay.fail("RCPT", "550 5.1.1 no such user", times=1)
    open_ticket(mg)
    (failed,) = [r.id for r in outbox(mg) if r.state == "failed"]
    (sent,) = [r.id for r in outbox(mg) if r.state == "sent"]
    run_steps(mg, CANCEL_STEPS, failed=failed, sent=sent)
    states = {r.id: r.state for r in outbox(mg)}
    assert states == {failed: "cancelled", sent: "sent"}


# --- a hard bounce: outbox retry, suppression list and remove ---------------------------

BOUNCE_STEPS = [
    (["suppression", "list"], 0, "hard bounce 5.1.1 of outbox {ack}"),
    (["status"], 1, "stopped by a loop or bounce guard"),
    (["outbox", "retry", "{notify}"], 1, "{notify} (sent; only failed, bounced or pending"),
    (["outbox", "retry", "{ack}"], 0, "1 mail(s) will be sent"),
    (["suppression", "list"], 0, CARLA),                  # only that one mail went again
]
LIFT_STEPS = [
    (["suppression", "remove", "Carla@client.example"], 0,
     "automatic mail to Carla@client.example is sent again"),
    (["suppression", "remove", CARLA], 1, f"{CARLA} is not suppressed"),
    (["suppression", "list"], 0, "no address is suppressed"),
]
CLEAR_STEPS = [
    (["outbox", "cancel", "{dropped}"], 0, "1 mail(s) cancelled"),   # "seen" for a dropped mail
    (["status"], 0, "attention:    nothing"),
]


def test_a_bounced_address_is_listed_retried_and_lifted_and_gets_mail_again(mg):
    open_ticket(mg, "Drucker")
    (ack,) = mg.relay.wait_for(CARLA)
    ack_row, notify_row = outbox(mg)
    mg.send(hard_bounce(ack.mail_from, CARLA), rcpt=ack.mail_from, mail_from="")
    mg.settle()
    assert [r.state for r in outbox(mg)] == ["bounced", "sent"]
    (listed,) = json.loads(mg.cli("suppression", "list", "--json").out)
    assert listed["address"] == CARLA and "5.1.1" in listed["reason"]
    assert set(listed) == {"address", "reason", "since", "until"}
    open_ticket(mg, "Zweiter")                           # its acknowledgement is dropped
    dropped = next(r.id for r in outbox(mg) if r.state == "dropped")
    run_steps(mg, BOUNCE_STEPS, ack=ack_row.id, notify=notify_row.id)
    again = mg.relay.wait_for(CARLA, 2)[1]               # the bounced mail, sent again
    assert again.raw == ack.raw
    mg.settle()
    assert outbox(mg)[0].state == "sent"
    run_steps(mg, LIFT_STEPS)
    open_ticket(mg, "Dritter")
    third = mg.relay.wait_for(CARLA, 3)[2]               # acknowledged again
    assert "Dritter" in third.subject
    run_steps(mg, CLEAR_STEPS, dropped=dropped)


# --- agents -------------------------------------------------------------------------------

AGENT_STEPS = [
    (["agent", "remove", "nobody@agency.example"], 1, "no agent nobody@agency.example"),
    (["agent", "remove", ANNA], 0, f"agent {ANNA} removed; unassigned: #{{n}}"),
    (["agent", "remove", ANNA], 1, f"no agent {ANNA}"),
    (["agent", "list"], 0, "(none)"),
]


def test_agent_remove_unassigns_her_tickets_and_takes_her_authority(mg):
    """As handler and as owner: the ticket keeps no reference to a removed agent."""
    n = open_ticket(mg)
    notification = mg.relay.wait_for(ANNA)[0]
    token = notification.message["Reply-To"].addresses[0].addr_spec
    mg.send(reply_to(notification.message, sender=ANNA, body="/assign me\n/owner me\nIch schaue."),
            rcpt=token, mail_from=ANNA)
    mg.settle()
    before = show(mg, n)
    assert (before["assignee"], before["owner"]) == (ANNA, ANNA)
    run_steps(mg, AGENT_STEPS, n=n)
    after = show(mg, n)
    assert (after["assignee"], after["owner"]) == (None, None)
    assert any((e["kind"], e["old"], e["new"], e["detail"]) == (
        "assignee", ANNA, "", "agent removed") for e in after["events"])
    # her reply address still reaches the ticket, but she may no longer change it
    mg.send(reply_to(notification.message, sender=ANNA, body="/status closed\nErledigt."),
            rcpt=token, mail_from=ANNA)
    mg.settle()
    assert show(mg, n)["status"] == before["status"]


NOTIFY_STEPS = [
    (["agent", "notify", ANNA, "--off", "new_ticket", "--off", "customer_reply"], 0,
     "is mailed about: assigned, reminder"),
    (["agent", "notify", ANNA, "--on", "status_change", "--on", "file_uploaded", "new_ticket"],
     0, "is mailed about: new_ticket, assigned, status_change, file_uploaded, reminder"),
    (["agent", "notify", ANNA, "--on", "assigned", "--off", "reminder", "--off", "assigned"],
     1, "event assigned is both --on and --off"),
]


def test_agent_notify_adds_up_repeated_flags(mg):
    run_steps(mg, NOTIFY_STEPS)


# --- contacts and agent add --force ---------------------------------------------------------

CONTACT_STEPS = [
    (["agent", "add", CARLA, "--name", "Carla"], 1,
     f"{CARLA} is a customer contact (of acme); as an agent it would work on every project; "
     "add --force if that is intended"),
    (["contact", "add", "dora@client.example", "--project", "acme"], 0, "now a contact"),
    (["contact", "remove", "dora@client.example"], 0,
     "dora@client.example is no longer a contact of acme; removed"),
    (["contact", "remove", CARLA, "--project", "nosuch"], 1, "no project 'nosuch'"),
    (["contact", "remove", CARLA, "--project", "acme"], 0, f"{CARLA} is no longer a contact "
                                                           "of acme"),
    (["contact", "remove", CARLA, "--project", "acme"], 1, f"{CARLA} is not a contact of acme"),
    (["contact", "remove", CARLA], 1, f"{CARLA} is not a contact of any project"),
    (["contact", "remove", "nobody@client.example"], 1, "no contact nobody@client.example"),
    (["agent", "add", CARLA, "--name", "Carla"], 1, "a known customer address"),
    (["agent", "add", CARLA, "--name", "Carla", "--force"], 0, f"agent {CARLA} added"),
]


def test_contact_remove_and_agent_add_of_a_customer(mg):
    open_ticket(mg)
    run_steps(mg, CONTACT_STEPS)
    contacts = {c["email"]: c["projects"] for c in json.loads(mg.cli("contact", "list",
                                                                     "--json").out)}
    assert contacts == {CARLA: []}                 # kept: her ticket names her
    assert [a["email"] for a in json.loads(mg.cli("agent", "list", "--json").out)] == [
        ANNA, CARLA]


def test_a_removed_contact_no_longer_opens_tickets_by_her_address(mg):
    assert mg.cli("contact", "remove", CARLA).code == 0
    mg.send(make_mail(sender=CARLA, subject="Wohin?"), mail_from=CARLA)
    mg.settle()
    assert [r.state for r in mg.inbound()] == ["unassigned"]
    assert mg.tickets() == []


# --- projects -------------------------------------------------------------------------------

PROJECT_STEPS = [
    (["project", "rename", "acme", "--name", "ACME Inc"], 0,
     "project acme: name 'ACME Corp' -> 'ACME Inc'"),
    (["project", "rename", "nosuch", "--name", "X"], 1, "no project 'nosuch'"),
    (["project", "rename", "acme", "--name", " "], 1, "project name must be one non-empty line"),
    (["project", "workflow", "acme", "website"], 1,
     "project acme: tickets are in statuses workflow website lacks: new (1); move them with "
     "--map OLD=NEW"),
    (["project", "workflow", "acme", "nosuch"], 1, "unknown workflow 'nosuch'"),
    (["project", "workflow", "acme", "website", "--map", "new=bogus"], 1,
     "workflow website has no status 'bogus'"),
    (["project", "workflow", "acme", "website", "--map", "bogus=backlog"], 1,
     "no ticket of the project is in a status 'bogus'"),
    (["project", "workflow", "acme", "website", "--map", "garbage"], 2, "expected OLD=NEW"),
    (["project", "workflow", "acme", "website", "--map", "New=Backlog"], 0,
     "1 ticket(s) moved new -> backlog"),
    (["ticket", "list", "--status", "Backlog"], 0, "#{n}"),
    (["project", "workflow", "acme", "twolevel"], 1, "lacks: backlog (1)"),
    (["project", "list"], 0, "ACME Inc"),
]


def test_project_rename_and_workflow_change_moves_or_refuses(mg):
    n = open_ticket(mg)
    run_steps(mg, PROJECT_STEPS, n=n)
    (project,) = json.loads(mg.cli("project", "list", "--json").out)
    assert (project["name"], project["workflow"]) == ("ACME Inc", "website")
    shown = show(mg, n)
    assert shown["status"] == "backlog"
    move = shown["events"][-1]
    assert (move["kind"], move["old"], move["new"], move["detail"]) == (
        "status", "new", "backlog", "workflow support -> website")


# --- filters and ids ------------------------------------------------------------------------

BIG = "99999999999999999999"
LOOKUPS = [
    (["ticket", "list", "--project", "nosuch"], 2, "unknown project 'nosuch' (known: acme)"),
    (["ticket", "list", "--status", "bogus"], 2, "unknown status 'bogus' (known: "),
    (["ticket", "list", "--project", "acme", "--status", "live"], 2,
     "unknown status 'live' in project acme (known: closed, in-progress, new, open, resolved, "
     "waiting, waiting-internal)"),
    (["ticket", "list", "--status", "New"], 0, "#{n}"),                     # the label
    (["ticket", "list", "--status", "NEW", "--project", "acme"], 0, "#{n}"),
    (["ticket", "list", "--status", "Waiting for customer"], 0, "(none)"),
    (["ticket", "list", "--status", "waiting-int"], 0, "(none)"),           # a prefix
    (["ticket", "show", BIG], 2, f"argument number: not a ticket number: '{BIG}'"),
    (["ticket", "show", "-1"], 2, "not a ticket number: '-1'"),
    (["ticket", "show", "2147483648"], 2, "not a ticket number"),
    (["ticket", "show", "2147483647"], 1, "no ticket #2147483647"),
    (["ticket", "delete", BIG], 2, "not a ticket number"),
    (["template", "preview", "ack", "--ticket", BIG], 2, "not a ticket number"),
    (["unassigned", "show", BIG], 2, "not an id"),
    (["unassigned", "show", "2147483647"], 1, "no unassigned mail with id 2147483647"),
    (["unassigned", "assign", "1", "--ticket", BIG], 2, "not a ticket number"),
    (["unassigned", "spam", "-7"], 2, "not an id"),
    (["quarantine", "show", "0"], 2, "not an id"),
    (["quarantine", "drop", BIG], 2, "not an id"),
    (["quarantine", "retry", "2147483647"], 1, "not in quarantine: 2147483647"),
    (["outbox", "retry", BIG], 2, "not an id"),
    (["outbox", "cancel", "2147483647"], 1, "2147483647 (no such mail)"),
]


def test_unknown_names_and_ids_out_of_range_are_one_line_errors(mg):
    n = open_ticket(mg)
    run_steps(mg, LOOKUPS, n=n)


USAGE = [
    (["ticket", "list", "--bogus"],
     "mailgate ticket list: unrecognized arguments: --bogus (see --help)\n"),
    (["ticket", "show", "x1"],
     "mailgate ticket show: argument number: not a ticket number: 'x1' (expected a number "
     "from 1 to 2147483647) (see --help)\n"),
    (["outbox", "cancel"],
     "mailgate outbox cancel: the following arguments are required: id (see --help)\n"),
    (["suppression"],
     "mailgate suppression: the following arguments are required: VERB (see --help)\n"),
    (["bogus"], "mailgate: argument COMMAND: invalid choice: 'bogus' (choose from "),
]


@pytest.mark.parametrize(("args", "said"), USAGE, ids=[" ".join(a) for a, _ in USAGE])
def test_usage_errors_name_the_command_once(args, said):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli_main(args)
    assert code == 2 and out.getvalue() == ""
    assert err.getvalue().startswith(said) and err.getvalue().count("\n") == 1
    assert "mailgate: mailgate" not in err.getvalue()
