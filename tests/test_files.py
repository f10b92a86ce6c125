"""Private files: the SQLite database and its side files are owner-only, and a secret file
that others may read is refused before anything starts.

Each test runs the real CLI or `mailgate serve` as a subprocess under the usual umask
022, under which a file created without care is readable by every local user.
"""

from __future__ import annotations

import os
import signal
import smtplib
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.harness import SUPPORT, make_mail, toml_dumps
from tests.support.relay import free_port

ROOT = Path(__file__).resolve().parent.parent
CARLA = "carla@client.example"


@pytest.fixture(autouse=True)
def loose_umask():
    old = os.umask(0o022)
    yield
    os.umask(old)


def env() -> dict:
    out = {k: v for k, v in os.environ.items() if not k.startswith("MAILGATE_")}
    out["PYTHONPATH"] = str(ROOT)
    return out


def cli(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mailgate", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=60, env=env(),
                          cwd=config.parent)


def mode(path: Path) -> str:
    return f"{stat.S_IMODE(path.stat().st_mode):04o}"


def test_a_fresh_database_and_its_wal_and_shm_are_owner_only(tmp_path, relay):
    db = tmp_path / "mailgate.db"
    config = tmp_path / "mailgate.toml"
    port = free_port()
    config.write_text(toml_dumps({
        "database": {"url": f"sqlite:///{db}"},
        "smtp": {"port": port, "shutdown_timeout_seconds": 2.0},
        "outbound": {"port": relay.port, "retry_min_seconds": 0.2},
        "processing": {"poll_seconds": 0.2},
        "log": {"level": "warning"}}))
    assert not db.exists()
    added = cli(config, "project", "add", "acme", "--name", "ACME", "--customer", CARLA)
    assert added.returncode == 0, added.stderr
    proc = subprocess.Popen([sys.executable, "-m", "mailgate", "--config", str(config),
                             "serve"], env=env(), cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert "SMTP on" in proc.stdout.readline(), proc.stderr.read()
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.sendmail(CARLA, [SUPPORT], make_mail(sender=CARLA, subject="Drucker"))
        relay.wait_for(CARLA)       # processed, answered: every file has been written
        files = {p.name: mode(p) for p in tmp_path.glob("mailgate.db*")}
        assert {"mailgate.db", "mailgate.db-wal", "mailgate.db-shm"} <= set(files), files
        assert set(files.values()) == {"0600"}, files
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        proc.stdout.close()
        proc.stderr.close()


def test_a_database_left_readable_by_others_is_made_private_and_the_admin_told(tmp_path):
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:   # as an older mailgate left it, under umask 022
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE leftover (x)")
        keep_open = sqlite3.connect(db)     # keeps -wal and -shm on disk
        keep_open.execute("SELECT * FROM leftover").fetchall()
    try:
        assert {mode(db), mode(Path(f"{db}-wal")), mode(Path(f"{db}-shm"))} == {"0644"}
        config = tmp_path / "mailgate.toml"
        config.write_text(toml_dumps({"database": {"url": f"sqlite:///{db}"}}))
        done = cli(config, "check-config")
        assert "0600" not in done.stderr
        assert "open to other users" in done.stderr and "old.db (0644)" in done.stderr
        assert {mode(db), mode(Path(f"{db}-wal")), mode(Path(f"{db}-shm"))} == {"0600"}
    finally:
        keep_open.close()


# where a secret file can be named, and how the error names that place
SECRET_KEYS = {
    "mail": ('[mail]\nsecret_file = "{file}"\n', "[mail] secret_file"),
    "retired": ('[[mail.retired_secrets]]\nsecret_file = "{file}"\nvalid_until = 2099-01-01\n',
                "[mail.retired_secrets[0]] secret_file"),
    "outbound": ('[outbound]\npassword_file = "{file}"\n', "[outbound] password_file"),
    "imap": ('[[imap]]\nname = "inbox"\nuser = "u"\npassword_file = "{file}"\n',
             "[imap inbox] password_file"),
}


def secret_config(tmp_path: Path, which: str, file_mode: int) -> tuple[Path, Path, str]:
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t\n")
    secret.chmod(file_mode)
    snippet, key = SECRET_KEYS[which]
    config = tmp_path / "mailgate.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/db.sqlite"\n\n'
                      + snippet.format(file=secret))
    return config, secret, key


@pytest.mark.parametrize("which", list(SECRET_KEYS))
def test_a_secret_file_others_may_read_is_refused_with_one_line(tmp_path, which):
    config, secret, key = secret_config(tmp_path, which, 0o644)
    done = cli(config, "check-config")
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for words in (str(config), key, str(secret), "0600 or stricter", "got 0644"):
        assert words in lines[0], (words, lines[0])


@pytest.mark.parametrize("which", ["mail", "retired"])
def test_an_owner_only_secret_file_is_accepted(tmp_path, which):
    config, _secret, _key = secret_config(tmp_path, which, 0o600)
    done = cli(config, "check-config")
    assert done.returncode == 0, done.stderr
