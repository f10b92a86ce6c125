"""Shared fixtures: both databases, the relay sink, a running mailgate.

Tests that need a service this machine lacks are skipped with the reason, unless
MAILGATE_REQUIRE_SERVICES=1 (CI), where the same situation is a failure.
"""

from __future__ import annotations

import gc
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.relay import RelaySink


def _find_corpus() -> Path:
    """../shared/corpus next to the checkout, or next to any folder above it
    ($MAILGATE_CORPUS overrides)."""
    if os.environ.get("MAILGATE_CORPUS"):
        return Path(os.environ["MAILGATE_CORPUS"])
    for parent in Path(__file__).resolve().parents[1:]:
        if (parent / "shared" / "corpus").is_dir():
            return parent / "shared" / "corpus"
    return Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"


CORPUS = _find_corpus()
PG_ENV = "MAILGATE_TEST_DATABASE_URL"


def require_service(reason: str) -> None:
    if os.environ.get("MAILGATE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required service missing: {reason}")
    pytest.skip(reason)


def corpus_dir() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS}")
    return CORPUS


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh schema on the PostgreSQL server for this test, dropped afterwards."""
    base = os.environ.get(PG_ENV)
    if not base:
        require_service(f"{PG_ENV} is not set (PostgreSQL tests)")
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(base)
    schema = f"mgt_{uuid.uuid4().hex[:12]}"
    conninfo = (f"host={url.host or '127.0.0.1'} port={url.port or 5432} "
                f"user={url.username or 'postgres'} dbname={url.database or 'test'}")
    if url.password:
        conninfo += f" password={url.password}"
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as exc:
        require_service(f"PostgreSQL at {url.host}:{url.port} unreachable: {exc}")
    full = url.update_query_dict({"options": f"-csearch_path={schema}"})
    yield full.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/mailgate.db"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/mailgate.db"


@pytest.fixture
def relay() -> Iterator[RelaySink]:
    sink = RelaySink().start()
    yield sink
    sink.stop()


@pytest.fixture
def harness_factory(tmp_path, relay):
    from tests.support.harness import Harness

    made: list[Harness] = []

    def make(db_url: str, **overrides) -> Harness:
        h = Harness(tmp_path / f"h{len(made)}", db_url, relay, **overrides)
        made.append(h)
        return h

    yield make
    for h in made:
        h.stop()


@pytest.fixture
def mg(harness_factory, db_url):
    """A running mailgate on each database, with the acme project, a customer, an agent."""
    h = harness_factory(db_url).start()
    assert h.cli("project", "add", "acme", "--name", "ACME Corp",
                 "--customer", "carla@client.example").code == 0
    assert h.cli("agent", "add", "anna@agency.example", "--name", "Anna Agent").code == 0
    return h


@pytest.fixture(autouse=True)
def _collect_leaks_in_the_test_that_made_them() -> Iterator[None]:
    """Collect garbage at each test's end, so an unclosed socket fails the test that
    left it open instead of whichever test happens to run when the collector does."""
    yield
    gc.collect()
    # What survived is kept out of later collections: each test's collection then scans
    # only what was made since, instead of the whole heap of every earlier test (which
    # had made the suite several minutes slower). Refcounting still frees it as usual.
    gc.freeze()


@pytest.fixture
def dovecot():
    """A private Dovecot with the mailbox `support` (password secret-pw)."""
    from tests.support.imapserver import Dovecot, DovecotUnavailable

    try:
        server = Dovecot()
        server.add_user("support", "secret-pw")
        server.start()
    except DovecotUnavailable as exc:
        require_service(str(exc))
    yield server
    server.cleanup()
