"""Reminders: a customer who keeps us waiting, a ticket quiet in an internal status, a due
date that has come. End to end: the timer run (`mailgate timers run`) queues the mail, the
running daemon hands it to the relay. Time passes by moving a ticket's history back."""

from __future__ import annotations

import datetime as dt
import json

from sqlmodel import select

from mailgate.mail.dates import format_date
from store.models import Event, Ticket
from tests.test_mail_commands import ANNA, CARLA, latest, open_ticket, show, twolevel_site, write


def age(h, n: int, days: float) -> None:
    """Make ticket `n` and its whole log `days` older, as if that time had passed."""
    delta = dt.timedelta(days=days)
    with h.app.db.unit() as s:
        t = s.get(Ticket, n)
        t.created_at, t.updated_at = t.created_at - delta, t.updated_at - delta
        if t.status_changed_at is not None:
            t.status_changed_at -= delta
        for e in s.exec(select(Event).where(Event.ticket_id == n)):
            e.at -= delta


def run_timers(h) -> dict:
    result = h.cli("timers", "run", "--json")
    assert result.code == 0, result.err
    h.daemon.daemon.wake_sender()
    h.settle()
    return json.loads(result.out)


def reminders(h) -> list[tuple[int, str]]:
    return [(r["ticket"], r["reminder"]) for r in run_timers(h)["reminded"]]


def test_a_customer_who_keeps_us_waiting_is_reminded_once_per_quiet_spell(mg):
    n, _ack, notification = open_ticket(mg)
    write(mg, notification, ANNA, "/status waiting\nBitte schicken Sie ein Foto.")
    assert len(mg.relay.wait_for(CARLA, 2)) == 2
    age(mg, n, 3.9)
    assert reminders(mg) == []
    age(mg, n, 0.2)
    assert reminders(mg) == [(n, "customer after 4 days in waiting")]
    reminder = latest(mg, CARLA, 3)
    assert "(waiting for your answer)" in reminder.subject
    assert f"ticket #{n} has been waiting for your answer" in reminder.text
    assert reminder.header("Auto-Submitted") == "auto-generated"
    assert reminder.mail_from.startswith("support+")       # VERP, like all automatic mail
    # once: later runs, days later, send nothing more while the ticket stays quiet
    age(mg, n, 3)
    assert reminders(mg) == []
    assert len(mg.relay.to(CARLA)) == 3
    assert any(e["kind"] == "reminder" and e["actor"] == "system" for e in show(mg, n)["events"])
    # the customer answers the reminder: it lands on the ticket, which is open again
    write(mg, reminder, CARLA, "Foto anbei.")
    data = show(mg, n)
    assert (data["status"], data["messages"][-1]["text"]) == ("open", "Foto anbei.")
    # waiting again, quiet again: a new reminder
    write(mg, latest(mg, ANNA, 3), ANNA, "/status waiting\nDas Foto ist unscharf.")
    assert len(mg.relay.wait_for(CARLA, 4)) == 4
    age(mg, n, 4.1)
    assert reminders(mg) == [(n, "customer after 4 days in waiting")]
    assert "(waiting for your answer)" in latest(mg, CARLA, 5).subject


def test_a_ticket_quiet_in_waiting_internal_reminds_its_agents(mg):
    n, _ack, notification = open_ticket(mg)
    write(mg, notification, ANNA, "/status waiting-internal\nFrage beim Hersteller nach.")
    before = len(mg.relay.wait_for(ANNA, 2))
    told = len(mg.relay.wait_for(CARLA, 2))                 # ack and the agent's answer
    age(mg, n, 3.1)
    assert reminders(mg) == [(n, "agents after 3 days in waiting-internal")]
    reminder = latest(mg, ANNA, before + 1)
    # the support preset's labels are German since issue 11
    assert "(reminder: Warten intern since" in reminder.subject
    assert f"Ticket #{n} (ACME Corp) has been in \"Warten intern\"" in reminder.text
    assert len(mg.relay.to(CARLA)) == told                  # the customer hears nothing


def test_a_due_date_reminds_the_assignee_once_per_date(mg):
    today = dt.datetime.now(dt.UTC).date()
    n, _ack, notification = open_ticket(mg)
    write(mg, notification, ANNA, f"/assign anna\n/due {today + dt.timedelta(days=1)}\nMache ich.")
    mails = len(mg.relay.wait_for(ANNA, 2))
    assert reminders(mg) == []                              # not due yet
    write(mg, notification, ANNA, f"/due {today}")
    mails = len(mg.relay.wait_for(ANNA, mails + 1))         # the transcript
    assert reminders(mg) == [(n, f"due {today}")]
    due = latest(mg, ANNA, mails + 1)
    written = format_date(today)                            # 3 December 2026
    assert due.subject.endswith(f"(due {written})")
    assert f"Ticket #{n} (ACME Corp) is due today, {written}." in due.text
    assert reminders(mg) == []                              # once per date
    # a new date, already past: reminded again, as overdue
    yesterday = today - dt.timedelta(days=1)
    write(mg, notification, ANNA, f"/due {yesterday}")
    assert reminders(mg) == [(n, f"due {yesterday}")]
    assert "(1 day overdue)" in latest(mg, ANNA, mails + 3).text
    # an agent who turned reminders off gets none; closed tickets are never due
    assert mg.cli("agent", "notify", ANNA, "--off", "reminder").code == 0
    count = len(mg.relay.to(ANNA))
    write(mg, notification, ANNA, f"/due {today - dt.timedelta(days=2)}")
    assert reminders(mg) == [(n, f"due {today - dt.timedelta(days=2)}")]
    assert len(mg.relay.to(ANNA)) == count + 1              # only the transcript
    write(mg, notification, ANNA, f"/close\n/due {today - dt.timedelta(days=3)}")
    assert reminders(mg) == []


def test_twolevel_reminds_three_days_before_an_approval_closes_itself(
        harness_factory, sqlite_url):
    h = twolevel_site(harness_factory, sqlite_url)
    n, _ack, notification = open_ticket(h)
    write(h, notification, ANNA, "/status in progress, waiting for customer approval\nFertig.")
    sent = len(h.relay.wait_for(CARLA, 1))
    age(h, n, 5.1)
    assert run_timers(h) == {"moved": [], "reminded": [
        {"ticket": n, "reminder": "customer after 5 days in waiting-for-customer-approval"}]}
    reminder = latest(h, CARLA, sent + 1)
    assert "(Afventer godkendelse fra kunde)" in reminder.text     # the Danish label
    assert "/approve" in reminder.text and "/close" not in reminder.text
    age(h, n, 3)
    assert run_timers(h) == {"moved": [{"ticket": n, "status": "closed"}], "reminded": []}
    assert show(h, n)["status"] == "closed"


def test_timers_run_reports_nothing_due_in_words(mg):
    result = mg.cli("timers", "run")
    assert (result.code, result.out) == (0, "nothing due\n")


def test_the_timer_scan_pages_through_every_open_ticket(harness_factory, sqlite_url):
    """The scan goes through open tickets a page at a time: none is skipped however many
    there are (here with pages of one ticket)."""
    from mailgate.handlers.timers import run_reminders

    h = harness_factory(sqlite_url).start()
    assert h.cli("project", "add", "acme", "--name", "ACME Corp", "--customer", CARLA).code == 0
    assert h.cli("agent", "add", ANNA, "--name", "Anna Agent").code == 0
    numbers = []
    for subject in ("Eins", "Zwei", "Drei"):
        n, _ack, notification = open_ticket(h, subject=subject)
        write(h, notification, ANNA, "/status waiting\nBitte um Antwort.")
        numbers.append(n)
    write(h, open_ticket(h, subject="Vier")[2], ANNA, "/close")   # closed: never reminded
    for n in numbers:
        age(h, n, 5)
    assert run_reminders(h.app, now=h.app.now(), page=1) == [
        (n, "customer after 4 days in waiting") for n in numbers]
    assert run_reminders(h.app, now=h.app.now(), page=1) == []
