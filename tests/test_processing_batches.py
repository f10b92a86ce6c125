"""A backlog is processed in batches whose size follows the database unless configured:
32 mails per transaction on SQLite (its one write lock is shared with the accepting
side), 64 on PostgreSQL. The rows of one batch are finished in one transaction, at one
`processed_at`."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlmodel import select

from mailgate.edges.spool import Arrival, store_arrivals
from store.models import Inbound
from tests.support.harness import SUPPORT, make_mail

BACKLOG = 70


def backlog(h) -> None:
    """Mail stored the way the SMTP spool stores it, before the daemon runs."""
    store_arrivals(h.app.db, [
        Arrival(make_mail(sender=f"stranger{i}@elsewhere.example", subject=f"Frage {i}"),
                f"stranger{i}@elsewhere.example", (SUPPORT,)) for i in range(BACKLOG)])


@pytest.mark.parametrize("configured", [None, 20])
def test_a_backlog_is_processed_in_batches_of_the_databases_size(harness_factory, db_url,
                                                                   configured):
    overrides = {} if configured is None else {"processing": {"batch_size": configured}}
    h = harness_factory(db_url, **overrides)
    backlog(h)
    h.start()
    h.settle()
    with h.app.db.unit(write=False) as session:
        rows = session.exec(select(Inbound.state, Inbound.processed_at)).all()
    assert Counter(state for state, _ in rows) == {"unassigned": BACKLOG}
    batches = Counter(at for _, at in rows)
    expected = configured or (32 if db_url.startswith("sqlite") else 64)
    assert max(batches.values()) == expected
    assert sum(batches.values()) == BACKLOG
