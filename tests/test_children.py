"""The daemon's child processes (`mailgate.edges.children`): fresh interpreters that share
the urgent-writer counter with the serve process and inherit none of its open files."""

from __future__ import annotations

import signal

from mailgate.edges import children
from mailgate.edges.children import SharedCounter
from store.db import Database


def test_a_child_shares_the_counter_and_inherits_no_database_file(tmp_path):
    db = Database(f"sqlite:///{tmp_path}/mailgate.db")
    with db.unit() as session:            # the parent holds the database open
        session.connection()
        counter = SharedCounter()
        counter.value = 3
        child, conn = children.start("tests.support.childprobe", "counter_and_fds",
                                     (counter.fd,), pass_fds=(counter.fd,))
        try:
            conn.send("look")
            seen, files = conn.recv()
            assert seen == 3
            assert not [f for f in files if "mailgate.db" in f]
            conn.send("add")
            assert conn.recv()[0] == 4 and counter.value == 4   # its change is seen here
        finally:
            conn.close()                  # end of input: the child returns
            child.join(30)
    assert child.exitcode == 0
    db.dispose()


def test_a_killed_child_reports_the_signal(tmp_path):
    counter = SharedCounter()
    child, conn = children.start("tests.support.childprobe", "counter_and_fds",
                                 (counter.fd,), pass_fds=(counter.fd,))
    assert child.is_alive()
    child.kill()
    child.join(30)
    assert not child.is_alive() and child.exitcode == -signal.SIGKILL
    conn.close()


def test_a_child_holds_malloc_to_two_arenas_unless_the_admin_set_it(monkeypatch):
    """Fewer glibc arenas keep the worker's threads from holding freed memory apart; an
    admin's own MALLOC_ARENA_MAX wins."""
    seen = []
    for admin in (None, "4"):
        if admin is None:
            monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
        else:
            monkeypatch.setenv("MALLOC_ARENA_MAX", admin)
        child, conn = children.start("tests.support.childprobe", "malloc_arenas")
        try:
            seen.append(conn.recv())
        finally:
            conn.close()
            child.join(30)
    assert seen == ["2", "4"]
