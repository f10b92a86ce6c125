"""Prometheus metrics: the `/metrics` page of one `mailgate serve` ([metrics] listen).

Why most figures are read from the database at scrape time: an instance is several
processes (the accepting `serve` process, the worker that processes and sends, its parse
pool), and with PostgreSQL several instances share the work, so the process that counted
an event is rarely the one being scraped. prometheus-client's multiprocess mode would
need a hook in every handler, a shared directory cleaned at each start, and still miss
mail stored by `mailgate ingest`. The database already holds every outcome as a state
(inbound, outbox, ticket, the commands in each message's decision): a few GROUP BY
queries per scrape are exact, survive restarts, and cost nothing on the mail path.
Those families describe the shared database, so every instance reports the same values:
aggregate them with `max without(instance)`, not `sum`.

What only the accepting process knows (the reply each SMTP/LMTP transaction got, IMAP
fetch errors) are in-process counters there: per instance, so `sum` them.

This module never changes a row and never runs on the mail path except to increment a
counter.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
from collections import Counter as Tally
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from sqlalchemy import func
from sqlmodel import select

from store.db import Database
from store.models import Inbound, InboundState, Message, Outbox, OutboxState, Ticket

# accepted -> final, in seconds: from "parsed at once" to "waited out a relay outage"
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
WAITING = (InboundState.PENDING, InboundState.PROCESSING)


def instance_name(configured: str, smtp_port: int) -> str:
    return configured or f"{socket.gethostname()}:{smtp_port}"


# --- the accepting process ------------------------------------------------------------


class ListenerCounters:
    """What the SMTP and LMTP conversations ended with, counted as they happen."""

    def __init__(self, registry: CollectorRegistry, instance: str) -> None:
        self.instance = instance
        labels = ["instance", "listener"]
        self.received = Counter("mailgate_mails_received", "Mails whose data was "
                                "transmitted (DATA ended), accepted or not", labels,
                                registry=registry)
        self.accepted = Counter("mailgate_mails_accepted", "Mails stored and answered "
                                "2xx after DATA", labels, registry=registry)
        self.rejected = Counter("mailgate_mails_rejected", "Refusals by reply code: per "
                                "recipient at RCPT, per mail after DATA",
                                [*labels, "stage", "code"], registry=registry)
        self.imap_errors = Counter("mailgate_imap_fetch_errors", "IMAP fetch rounds that "
                                   "failed, per mailbox", ["instance", "mailbox"],
                                   registry=registry)

    def on_reply(self, listener: str) -> Callable[[str, str], None]:
        """The `IngestHandler.on_reply` hook of one listener ("smtp", "lmtp")."""
        def note(stage: str, reply: str) -> None:
            for name, labels in count_reply(stage, reply):
                getattr(self, name).labels(self.instance, listener, *labels).inc()
        return note

    def watch_fetcher(self, fetcher) -> None:
        """Count the errors a mailbox fetcher reports. Its status report is the one
        place every failed round passes through (edges.imap is not ours to hook)."""
        report = fetcher._report
        counter = self.imap_errors.labels(self.instance, fetcher.name)

        def counting(state: str, error: str) -> None:
            if state in ("error", "auth-failed"):
                counter.inc()
            report(state, error)
        fetcher._report = counting


def count_reply(stage: str, reply: str) -> list[tuple[str, tuple[str, ...]]]:
    """Which counters one reply increments, with their extra labels."""
    code = reply[:3]
    ok = code.startswith("2")
    if stage == "rcpt":
        return [] if ok else [("rejected", (stage, code))]
    return [("received", ()), ("accepted", ()) if ok else ("rejected", (stage, code))]


# --- the shared database --------------------------------------------------------------


@dataclass
class StoreFacts:
    inbound: dict[str, int] = field(default_factory=dict)      # state -> rows
    outbox: dict[str, int] = field(default_factory=dict)       # state -> rows
    dropped: dict[str, int] = field(default_factory=dict)      # guard -> automatic mails
    tickets: int = 0
    commands: dict[str, int] = field(default_factory=dict)     # applied | refused -> lines
    latency_buckets: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS))
    latency_count: int = 0
    latency_sum: float = 0.0


def families(facts: StoreFacts, instance: str) -> list[Metric]:
    """The database's figures as metric families (pure: facts in, families out)."""
    def counter(name: str, doc: str, value: float, **labels: str) -> CounterMetricFamily:
        fam = CounterMetricFamily(name, doc, labels=["instance", *labels])
        fam.add_metric([instance, *labels.values()], value)
        return fam

    inbound, outbox = facts.inbound, facts.outbox
    out: list[Metric] = [
        counter("mailgate_mails_quarantined", "Stored mails now in the quarantine",
                inbound.get(InboundState.QUARANTINED, 0)),
        counter("mailgate_mails_unassigned", "Stored mails routed to the unassigned queue",
                inbound.get(InboundState.UNASSIGNED, 0)),
        counter("mailgate_tickets_created", "Tickets created", facts.tickets),
    ]
    commands = CounterMetricFamily("mailgate_commands", "Mail command lines by result",
                                   labels=["instance", "result"])
    for result in ("applied", "refused"):
        commands.add_metric([instance, result], facts.commands.get(result, 0))
    mails = CounterMetricFamily("mailgate_outbox_mails", "Outgoing mails by what became "
                                "of them (a bounced mail was sent first)",
                                labels=["instance", "state"])
    queued = sum(n for s, n in outbox.items() if s != OutboxState.DROPPED)
    sent = outbox.get(OutboxState.SENT, 0) + outbox.get(OutboxState.BOUNCED, 0)
    for state, value in (("queued", queued), ("sent", sent),
                         ("failed", outbox.get(OutboxState.FAILED, 0)),
                         ("bounced", outbox.get(OutboxState.BOUNCED, 0))):
        mails.add_metric([instance, state], value)
    dropped = CounterMetricFamily("mailgate_auto_mails_dropped", "Automatic mails a guard "
                                  "stopped, by guard", labels=["instance", "reason"])
    for guard, value in sorted(facts.dropped.items()):
        dropped.add_metric([instance, guard], value)
    depth = GaugeMetricFamily("mailgate_queue_depth", "Mails waiting: inbound to be "
                              "processed, outbox to be sent", labels=["instance", "queue"])
    depth.add_metric([instance, "inbound"], sum(inbound.get(s, 0) for s in WAITING))
    depth.add_metric([instance, "outbox"], outbox.get(OutboxState.PENDING, 0)
                     + outbox.get(OutboxState.SENDING, 0))
    latency = HistogramMetricFamily("mailgate_processing_latency_seconds", "From stored "
                                    "to processed (final state)", labels=["instance"])
    cumulative = [(str(le), n) for le, n in zip(LATENCY_BUCKETS, facts.latency_buckets,
                                                 strict=True)]
    latency.add_metric([instance], [*cumulative, ("+Inf", facts.latency_count)],
                       facts.latency_sum)
    return [*out, commands, mails, dropped, depth, latency]


def command_results(decision: dict) -> Tally:
    return Tally("applied" if c.get("ok") else "refused"
                 for c in (decision or {}).get("commands", ()) if isinstance(c, dict))


class StoreCollector:
    """Reads `StoreFacts` at each scrape. Counts by state are one GROUP BY each; the
    two figures that need row contents (command results in each message's decision,
    processing latency) are read once per row and kept, from a high-water mark on."""

    def __init__(self, db: Database, instance: str) -> None:
        self.db = db
        self.instance = instance
        self._lock = threading.Lock()         # scrapes may overlap (threaded server)
        self._message_mark = 0
        self._commands: Tally = Tally()
        self._processed_mark = None
        self._at_mark: set[int] = set()
        self._latency = StoreFacts()

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            facts = self._read()
        return families(facts, self.instance)

    def _read(self) -> StoreFacts:
        with self.db.unit(write=False) as s:
            inbound = dict(s.exec(select(Inbound.state, func.count())
                                  .group_by(Inbound.state)).all())
            outbox = dict(s.exec(select(Outbox.state, func.count())
                                 .group_by(Outbox.state)).all())
            dropped: Tally = Tally()
            for reason, n in s.exec(select(Outbox.reason, func.count())
                                    .where(Outbox.state == OutboxState.DROPPED,
                                           Outbox.automatic)
                                    .group_by(Outbox.reason)).all():
                dropped[reason.split(":", 1)[0].strip() or "unknown"] += n
            tickets = s.exec(select(func.count()).select_from(Ticket)).one()
            for row_id, decision in s.exec(select(Message.id, Message.decision)
                                           .where(Message.id > self._message_mark)
                                           .order_by(Message.id)).all():
                self._commands.update(command_results(decision))
                self._message_mark = row_id
            self._read_latency(s)
        return dataclasses.replace(self._latency, inbound=inbound, outbox=outbox,
                                   dropped=dict(dropped), tickets=tickets,
                                   commands=dict(self._commands))

    def _read_latency(self, s) -> None:
        query = select(Inbound.id, Inbound.received_at, Inbound.processed_at).where(
            Inbound.processed_at.is_not(None), Inbound.state.not_in(WAITING))
        if self._processed_mark is not None:
            query = query.where(Inbound.processed_at >= self._processed_mark)
        facts = self._latency
        for row_id, received, processed in s.exec(query.order_by(Inbound.processed_at)):
            if processed == self._processed_mark and row_id in self._at_mark:
                continue                     # seen at the previous scrape
            if processed != self._processed_mark:
                self._processed_mark, self._at_mark = processed, set()
            self._at_mark.add(row_id)
            seconds = max((processed - received).total_seconds(), 0.0)
            facts.latency_count += 1
            facts.latency_sum += seconds
            for i, le in enumerate(LATENCY_BUCKETS):
                if seconds <= le:
                    facts.latency_buckets[i] += 1


# --- the endpoint ---------------------------------------------------------------------


class MetricsServer:
    """`start()` returns once the port answers, and raises if it cannot listen."""

    def __init__(self, listen: str, registry: CollectorRegistry) -> None:
        host, _, port = listen.rpartition(":")
        self.host, self.port = host.strip("[]"), int(port)
        self.registry = registry
        self._server = None
        self._thread = None

    def start(self) -> tuple[str, int]:
        self._server, self._thread = start_http_server(self.port, addr=self.host,
                                                       registry=self.registry)
        self.port = self._server.server_port
        return self.host, self.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
            self._server = None


@dataclass
class Metrics:
    """Everything [metrics] turns on, built by `build_metrics` for the serve process."""

    counters: ListenerCounters
    server: MetricsServer


def build_metrics(db: Database, listen: str, instance: str) -> Metrics:
    registry = CollectorRegistry(auto_describe=False)
    counters = ListenerCounters(registry, instance)
    registry.register(StoreCollector(db, instance))
    return Metrics(counters, MetricsServer(listen, registry))
