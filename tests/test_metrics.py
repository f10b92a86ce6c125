"""The metrics page: after known SMTP traffic, GET /metrics shows exactly that traffic."""

from __future__ import annotations

import smtplib
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mailgate.edges.metrics import StoreFacts, command_results, count_reply, families
from tests.support.harness import make_mail
from tests.support.relay import free_port

CARLA = "carla@client.example"
INSTANCE = "mx1:2525"


def scrape(port: int) -> dict[tuple[str, frozenset], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(page, name: str, **labels: str) -> float:
    return page[(name, frozenset({"instance": INSTANCE, **labels}.items()))]


@pytest.mark.parametrize(("stage", "reply", "counted"), [
    ("rcpt", "250 2.1.5 OK", []),
    ("rcpt", "550 5.1.1 No such user", [("rejected", ("rcpt", "550"))]),
    ("data", "250 2.0.0 OK queued as 7", [("received", ()), ("accepted", ())]),
    ("data", "552 Error: Too much mail data", [("received", ()),
                                              ("rejected", ("data", "552"))]),
    ("data", "451 4.3.0 Temporary local problem", [("received", ()),
                                                  ("rejected", ("data", "451"))]),
])
def test_each_reply_counts_where_it_belongs(stage, reply, counted):
    assert count_reply(stage, reply) == counted


def test_command_lines_count_as_applied_or_refused_from_the_stored_decision():
    decision = {"commands": [{"line": "/status done", "ok": True, "result": "done"},
                             {"line": "/assign x", "ok": False, "result": "no agent"}]}
    assert command_results(decision) == {"applied": 1, "refused": 1}
    assert command_results({}) == {}


def test_database_figures_become_families_with_the_instance_label():
    facts = StoreFacts(inbound={"pending": 2, "processing": 1, "quarantined": 3},
                       outbox={"pending": 1, "sent": 4, "bounced": 1, "dropped": 2},
                       dropped={"rate-limit": 2}, tickets=5, commands={"applied": 2})
    got = {(s.name, tuple(sorted(s.labels.items()))): s.value
           for fam in families(facts, "x") for s in fam.samples}
    assert got[("mailgate_queue_depth", (("instance", "x"), ("queue", "inbound")))] == 3
    assert got[("mailgate_mails_quarantined_total", (("instance", "x"),))] == 3
    assert got[("mailgate_outbox_mails_total", (("instance", "x"), ("state", "queued")))] == 6
    assert got[("mailgate_outbox_mails_total", (("instance", "x"), ("state", "sent")))] == 5
    assert got[("mailgate_auto_mails_dropped_total",
                (("instance", "x"), ("reason", "rate-limit")))] == 2
    assert got[("mailgate_commands_total", (("instance", "x"), ("result", "refused")))] == 0


def test_metrics_page_counts_known_smtp_traffic_exactly(harness_factory, db_url):
    port = free_port()
    h = harness_factory(db_url, metrics={"listen": f"127.0.0.1:{port}",
                                             "instance": INSTANCE}).start()
    assert h.cli("project", "add", "acme", "--name", "ACME Corp",
                 "--customer", CARLA).code == 0
    h.send(make_mail(sender=CARLA, subject="Printer"), mail_from=CARLA)    # -> ticket
    h.send(make_mail(sender="who@stranger.example"), mail_from="who@stranger.example")
    with smtplib.SMTP("127.0.0.1", h.port, timeout=30) as s:                # -> 550
        s.ehlo("client.example")
        s.mail("a@client.example")
        assert s.rcpt("nobody@other.example")[0] == 550
    h.settle()
    h.relay.wait_for(CARLA)

    page = scrape(port)
    assert value(page, "mailgate_mails_received_total", listener="smtp") == 2
    assert value(page, "mailgate_mails_accepted_total", listener="smtp") == 2
    assert value(page, "mailgate_mails_rejected_total", listener="smtp", stage="rcpt",
                 code="550") == 1
    assert value(page, "mailgate_tickets_created_total") == 1
    assert value(page, "mailgate_mails_unassigned_total") == 1
    assert value(page, "mailgate_mails_quarantined_total") == 0
    assert value(page, "mailgate_queue_depth", queue="inbound") == 0
    assert value(page, "mailgate_processing_latency_seconds_count") == 2
    assert value(page, "mailgate_commands_total", result="applied") == 0
    # the customer's acknowledgement; the stranger is not answered
    assert value(page, "mailgate_outbox_mails_total", state="queued") == 1
    assert value(page, "mailgate_outbox_mails_total", state="sent") == 1
    assert value(page, "mailgate_outbox_mails_total", state="failed") == 0
    assert value(page, "mailgate_queue_depth", queue="outbox") == 0
    # a second scrape reads only new rows for latency and commands: the same figures
    again = scrape(port)
    assert value(again, "mailgate_processing_latency_seconds_count") == 2
    assert value(again, "mailgate_mails_accepted_total", listener="smtp") == 2
