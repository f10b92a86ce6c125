"""Retention and `jobs list`: with a fake clock the retention job prunes exactly what
[retention] names (raw bytes of processed mail, spam and dismissed quarantine, sent
outbox rows), leaves parsed messages readable, and its runs show in `jobs list`."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlmodel import select

from mailgate.config import ConfigError, config_from_dict
from mailgate.handlers.jobs import RunRecorder
from mailgate.handlers.retention import run_retention
from scheduler.jobs import Job, run_job
from store.models import Inbound, Message, Outbox
from tests.support.harness import make_mail, wait_until

CARLA = "carla@client.example"
JUNK = b"\xd0\xcf\x11\xe0" + bytes(b for b in range(256) if b not in b"\r\n") * 4 + b"\r\n"
DAYS = {"raw_after_days": 5, "spam_after_days": 7, "outbox_after_days": 9}


@pytest.mark.parametrize(("retention", "words"), [
    ({"raw_after_days": -1}, ["[retention] raw_after_days", "whole number of days"]),
    ({"spam_after_days": "7"}, ["[retention] spam_after_days", "expected an integer"]),
    ({"outbox_after_days": 1.5}, ["[retention] outbox_after_days", "expected an integer"]),
    ({"raw_days": 3}, ["[retention] raw_days", "did you mean 'raw_after_days'"]),
])
def test_a_wrong_retention_setting_is_a_clear_config_error(retention, words):
    with pytest.raises(ConfigError) as err:
        config_from_dict({"retention": retention})
    assert all(w in str(err.value) for w in words), str(err.value)


def test_retention_is_off_by_default():
    cfg = config_from_dict({}).retention
    assert (cfg.raw_after_days, cfg.spam_after_days, cfg.outbox_after_days) == (0, 0, 0)


def _rows(h):
    with h.app.db.unit(write=False) as s:
        inbound = {r.id: (r.state, len(s.exec(select(Inbound.raw).where(Inbound.id == r.id))
                                        .one())) for r in s.exec(select(Inbound))}
        outbox = {o.id: o.state for o in s.exec(select(Outbox))}
        messages = {m.inbound_id: m.text for m in s.exec(select(Message))}
    return inbound, outbox, messages


def test_retention_with_a_fake_clock_prunes_exactly_what_it_should(harness_factory, db_url):
    h = harness_factory(db_url, retention=DAYS, server={"instance": "mx-keep"}).start()
    assert h.cli("project", "add", "acme", "--name", "A", "--customer", CARLA).code == 0
    h.send(make_mail(sender=CARLA, subject="Keep me", body="The parsed text stays."),
           mail_from=CARLA)
    h.send(make_mail(sender="spammer@junk.example", subject="Cheap pills"))
    h.send(JUNK)
    h.settle()
    h.relay.wait_for(CARLA)
    h.settle()
    inbound, outbox, _ = _rows(h)
    done, spam, junk = sorted(inbound)
    assert h.cli("unassigned", "spam", str(spam)).code == 0
    assert h.cli("quarantine", "drop", str(junk)).code == 0
    now = h.app.now()

    early = run_retention(h.app, now=now + dt.timedelta(days=4))
    assert early.counts == {"raw": 0, "spam": 0, "outbox": 0}
    assert _rows(h)[0][done] == ("done", inbound[done][1])

    # day 8: the raw bytes (5) and spam (7) are due, the sent acknowledgement (9) is not
    mid = run_retention(h.app, now=now + dt.timedelta(days=8))
    assert mid.counts == {"raw": 1, "spam": 2, "outbox": 0}
    after, left_out, messages = _rows(h)
    assert after == {done: ("done", 0)}
    assert left_out == outbox
    assert messages == {done: "The parsed text stays."}
    shown = json.loads(h.cli("ticket", "show", "1", "--json").out)
    assert shown["messages"][0]["text"] == "The parsed text stays."

    late = run_retention(h.app, now=now + dt.timedelta(days=10))
    assert late.counts == {"raw": 0, "spam": 0, "outbox": len(outbox)}
    assert late.summary() == f"raw 0, spam 0, outbox {len(outbox)}"
    assert _rows(h)[1] == {}
    trace = json.loads(h.cli("trace", str(done), "--json").out)
    assert trace["received"]["raw_kept"] is False and trace["ticket"]["number"] == 1

    # its run, recorded as the daemon records it, is what `jobs list` shows
    clock = iter([now, now + dt.timedelta(seconds=2)])
    job = Job("retention", 3600, lambda: run_retention(h.app, now=now).summary(),
              blocking=True)
    run_job(job, on_error=lambda *_: None, on_run=RunRecorder(h.app, intervals={}),
            clock=lambda: next(clock))
    jobs = {j["name"]: j for j in json.loads(h.cli("jobs", "list", "--json").out)}
    r = jobs["retention"]
    assert (r["instance"], r["result"], r["error"]) == ("mx-keep", "ok", None)
    assert r["detail"] == "raw 0, spam 0, outbox 0"
    assert dt.datetime.fromisoformat(r["next_run"]) == now + dt.timedelta(hours=1)
    assert dt.datetime.fromisoformat(r["last_finished"]) == now + dt.timedelta(seconds=2)
    # and the daemon's own timers ran and were recorded by it
    assert jobs["process-poll"]["instance"] == "mx-keep"


def test_a_failing_job_shows_its_error_and_a_later_success_clears_it(harness_factory,
                                                                     sqlite_url):
    h = harness_factory(sqlite_url, server={"instance": "mx-2"})
    now = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC)
    errors = []
    record = RunRecorder(h.app, intervals={"workflow-timers": 900})

    def broken():
        raise RuntimeError("database gone")

    run_job(Job("workflow-timers", 900, broken), on_error=lambda n, e: errors.append(n),
            on_run=record, clock=lambda: now)
    (row,) = json.loads(h.cli("jobs", "list", "--json").out)
    assert errors == ["workflow-timers"]
    assert (row["result"], row["error"]) == ("failed", "RuntimeError: database gone")
    assert "database gone" in h.cli("jobs", "list").out
    run_job(Job("workflow-timers", 900, lambda: "2 moved"), on_error=errors.append,
            on_run=record, clock=lambda: now + dt.timedelta(minutes=15))
    (row,) = json.loads(h.cli("jobs", "list", "--json").out)
    assert (row["result"], row["error"], row["detail"]) == ("ok", None, "2 moved")
    assert dt.datetime.fromisoformat(row["next_run"]) == now + dt.timedelta(minutes=30)


def test_jobs_list_before_any_run_says_so(harness_factory, sqlite_url):
    got = harness_factory(sqlite_url).cli("jobs", "list")
    assert got.code == 0 and "no timed job has run yet" in got.out


def test_a_job_that_is_no_longer_run_leaves_jobs_list_when_the_daemon_starts(
        harness_factory, sqlite_url):
    """A job an older version ran (the worker watch, now done by the serving process
    itself) would show as overdue for ever: a starting daemon forgets it and keeps the
    runs of the jobs it has."""
    h = harness_factory(sqlite_url, server={"instance": "mx-3"})
    then = dt.datetime(2026, 11, 30, 3, 0, tzinfo=dt.UTC)
    record = RunRecorder(h.app, intervals={})
    for name in ("worker-watch", "retention"):
        run_job(Job(name, 2, lambda: "done"), on_error=lambda *_: None, on_run=record,
                clock=lambda: then)
    assert {r["name"] for r in json.loads(h.cli("jobs", "list", "--json").out)} == {
        "worker-watch", "retention"}
    h.start()           # the worker process starts the jobs

    def names() -> set[str]:
        return {r["name"] for r in json.loads(h.cli("jobs", "list", "--json").out)}
    wait_until(lambda: "worker-watch" not in names(), "the old job forgotten")
    assert "retention" in names()
