"""One `mailgate serve` per SQLite file: a second refuses to start; the CLI still works."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.harness import toml_dumps
from tests.support.relay import free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def site(tmp_path, relay):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILGATE_")}
    env["PYTHONPATH"] = str(ROOT)
    procs: list[subprocess.Popen] = []

    def config(name: str) -> Path:
        """The same database, each config with its own SMTP port."""
        path = tmp_path / f"{name}.toml"
        path.write_text(toml_dumps({
            "database": {"url": f"sqlite:///{tmp_path}/mg.db"},
            "smtp": {"port": free_port()},
            "mail": {"secret": "s3cret"},
            "outbound": {"port": relay.port},
            "processing": {"parse_workers": 0, "in_process": True},
        }))
        return path

    def run(conf: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "mailgate", "--config", str(conf), *args],
                              env=env, capture_output=True, text=True, timeout=timeout)

    def serve(conf: Path) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "mailgate", "--config", str(conf),
                                 "serve"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        procs.append(proc)
        assert "SMTP on" in proc.stdout.readline()
        return proc

    yield config, run, serve, tmp_path
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        proc.stdout.close()


def test_a_second_serve_on_the_same_sqlite_file_refuses_with_one_line(site):
    config, run, serve, tmp_path = site
    first = serve(config("first"))
    second = run(config("second"), "serve")
    assert second.returncode != 0
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert "another mailgate serve" in lines[0] and f"(pid {first.pid})" in lines[0]
    assert str(tmp_path / "mg.db") in lines[0]
    lock = tmp_path / "mg.db-instance.lock"
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600
    assert first.poll() is None                       # the first one is untouched


def test_cli_verbs_keep_working_while_a_daemon_runs(site):
    config, run, serve, _ = site
    conf = config("first")
    serve(conf)
    added = run(conf, "project", "add", "acme", "--name", "ACME")
    assert added.returncode == 0, added.stderr
    listed = run(conf, "ticket", "list")
    assert listed.returncode == 0, listed.stderr


def test_the_lock_goes_with_the_daemon_that_held_it(site):
    """After a clean stop, and after a SIGKILL, the next serve starts."""
    config, _run, serve, _ = site
    conf = config("first")
    proc = serve(conf)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    proc = serve(conf)
    proc.kill()
    proc.wait(10)
    serve(conf)
