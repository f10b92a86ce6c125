"""Several processes on one SQLite file: a second `Database` in a process that already has
the file open must not drop that process's locks (closing any descriptor of a file drops
all of a process's POSIX locks on it). Without its shared lock, another process closing
its last connection took itself for the last user and deleted the -wal and -shm; this
process then went on alone, its commits invisible to the others and theirs to it."""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy import text

from store.db import Database

WRITE = """
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("INSERT INTO t VALUES (2)")
c.close()
"""


def test_a_second_database_in_the_process_keeps_the_others_commits_visible(tmp_path):
    path = tmp_path / "mailgate.db"
    first = Database(f"sqlite:///{path}")
    with first.unit() as s:
        s.execute(text("CREATE TABLE t (x INTEGER)"))
        s.execute(text("INSERT INTO t VALUES (1)"))
    with first.unit(write=False) as s:
        assert s.execute(text("SELECT count(*) FROM t")).scalar() == 1   # a connection open
    second = Database(f"sqlite:///{path}")   # as the CLI, run in-process, does
    subprocess.run([sys.executable, "-c", WRITE, str(path)], check=True, timeout=60)
    assert (tmp_path / "mailgate.db-wal").exists()
    with first.unit(write=False) as s:
        assert s.execute(text("SELECT count(*) FROM t")).scalar() == 2
    second.dispose()
    first.dispose()
