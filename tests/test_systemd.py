"""systemd: the unit, its user and folders, and the notify protocol `mailgate serve` speaks.

The notify tests run the real `mailgate serve` with $NOTIFY_SOCKET pointing at a datagram
socket of the test's, the way systemd runs a Type=notify service; the unit files are
checked by systemd's own tools where they are installed.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from mailgate.edges.serve import notify_target, watchdog_interval
from tests.conftest import require_service
from tests.support.harness import toml_dumps
from tests.support.relay import free_port

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "mailgate.service"
SYSUSERS = ROOT / "systemd" / "mailgate.sysusers"
TMPFILES = ROOT / "systemd" / "mailgate.tmpfiles"
MAX_EXPOSURE = 2.5


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        require_service(f"{name} is not installed (Debian package systemd)")
    return path


# --- the notify protocol -------------------------------------------------------------------


@pytest.mark.parametrize(("usec", "for_pid", "expected"), [
    ("2000000", "", 1.0),           # half of what systemd allows
    ("30000000", "4242", 15.0),     # armed for this very process
    ("30000000", "1", None),        # armed for another process: not ours to ping
    ("0", "", None),
    ("", "", None),
    ("soon", "", None),
])
def test_watchdog_pings_at_half_the_interval_and_only_for_its_own_pid(usec, for_pid, expected):
    assert watchdog_interval(usec, for_pid, pid=4242) == expected


def test_an_at_sign_names_a_socket_in_the_abstract_namespace():
    assert notify_target("@mailgate/notify") == "\0mailgate/notify"
    assert notify_target("/run/systemd/notify") == "/run/systemd/notify"


class NotifyListener:
    """What systemd does with $NOTIFY_SOCKET: receive datagrams and the sender's pid."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(notify_target(address))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.address = address

    def receive(self, timeout: float) -> tuple[list[str], int] | None:
        self.sock.settimeout(timeout)
        try:
            data, ancdata, _flags, _addr = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        except TimeoutError:
            return None
        pid = next(struct.unpack("3i", d[:12])[0] for level, kind, d in ancdata
                   if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS)
        return data.decode().split("\n"), pid

    def close(self) -> None:
        self.sock.close()


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            conn.settimeout(5)
            return conn.recv(512).startswith(b"220")
    except OSError:
        return False


@pytest.fixture(params=["path", "abstract"])
def notify_address(request):
    if request.param == "abstract":
        yield f"@mailgate-test-{uuid.uuid4().hex}"
        return
    # sockaddr_un holds 108 bytes: pytest's tmp_path can be longer than that
    folder = tempfile.mkdtemp(prefix="mg-notify-")
    yield f"{folder}/notify"
    shutil.rmtree(folder)


def test_serve_reports_ready_only_once_smtp_answers_pings_the_watchdog_and_says_stopping(
        tmp_path, notify_address):
    port = free_port()
    config = tmp_path / "mailgate.toml"
    config.write_text(toml_dumps({
        "database": {"url": f"sqlite:///{tmp_path}/mailgate.db"},
        "smtp": {"port": port, "shutdown_timeout_seconds": 2.0},
        "outbound": {"port": free_port()},
        "log": {"level": "warning"}}))
    listener = NotifyListener(notify_address)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILGATE_")}
    env.update(PYTHONPATH=str(ROOT), NOTIFY_SOCKET=notify_address, WATCHDOG_USEC="2000000")
    proc = subprocess.Popen([sys.executable, "-m", "mailgate", "--config", str(config),
                             "serve"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while "READY=1" not in seen:
            assert time.monotonic() < deadline and proc.poll() is None, \
                (seen, proc.poll(), proc.stderr.read() if proc.poll() is not None else "")
            got = listener.receive(0.5)
            if got is not None:
                lines, pid = got
                if "READY=1" in lines:
                    # the moment systemd hears READY, the port must already answer
                    assert _answers(port), "READY=1 before the SMTP port answers"
                assert pid == proc.pid, "only the serve process may notify (NotifyAccess=main)"
                seen += lines
        assert any(line.startswith("STATUS=SMTP on ") for line in seen)

        pings = 0
        deadline = time.monotonic() + 10
        while pings < 2 and time.monotonic() < deadline:
            got = listener.receive(max(0.01, deadline - time.monotonic()))
            if got is not None:
                assert got[1] == proc.pid
                pings += got[0].count("WATCHDOG=1")
        assert pings >= 2, "expected a WATCHDOG=1 about every second (WATCHDOG_USEC=2s)"

        proc.send_signal(signal.SIGTERM)
        after: list[str] = []
        deadline = time.monotonic() + 30
        while "STOPPING=1" not in after and time.monotonic() < deadline:
            got = listener.receive(1.0)
            if got is not None:
                after += got[0]
        assert "STOPPING=1" in after
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
        listener.close()


# --- the unit -------------------------------------------------------------------------------


def unit_for_test(tmp_path: Path) -> Path:
    """The unit as shipped, with ExecStart on a program that exists here (verify checks
    that it does; /opt/mailgate is where an admin installs, not this machine)."""
    program = Path(sys.executable).parent / "mailgate"
    assert program.exists(), program
    text = UNIT.read_text().replace("/opt/mailgate/.venv/bin/mailgate", str(program))
    path = tmp_path / "mailgate.service"
    path.write_text(text)
    return path


def test_unit_is_notify_with_watchdog_private_umask_and_no_capabilities():
    text = UNIT.read_text()
    settings = dict(re.findall(r"^(\w+)=(.*)$", text, re.M))
    assert settings["Type"] == "notify" and settings["NotifyAccess"] == "main"
    assert settings["WatchdogSec"]
    assert settings["UMask"] == "0077"
    assert settings["CapabilityBoundingSet"] == "" and settings["AmbientCapabilities"] == ""


def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    analyze = tool("systemd-analyze")
    unit = unit_for_test(tmp_path)
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    ours = [line for line in done.stderr.splitlines() if "mailgate" in line]
    assert done.returncode == 0 and not ours, done.stderr


def test_systemd_analyze_security_rates_the_unit_at_most_2_5(tmp_path):
    analyze = tool("systemd-analyze")
    unit = unit_for_test(tmp_path)
    done = subprocess.run([analyze, "security", "--offline=true", "--no-pager", str(unit)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    if "--offline" in done.stderr and done.returncode != 0:
        require_service(f"this systemd-analyze has no --offline: {done.stderr.strip()}")
    found = re.search(r"Overall exposure level for mailgate\.service: ([\d.]+)", done.stdout)
    assert found, done.stdout + done.stderr
    exposure = float(found.group(1))
    assert exposure <= MAX_EXPOSURE, done.stdout


# --- the user and the folders ---------------------------------------------------------------


def test_sysusers_and_tmpfiles_create_the_user_and_private_folders(tmp_path):
    """Both tools run against a root of the test's own (--root): the host is untouched."""
    sysusers, tmpfiles = tool("systemd-sysusers"), tool("systemd-tmpfiles")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    done = subprocess.run([sysusers, f"--root={root}", str(SYSUSERS)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    passwd = {line.split(":")[0]: line.split(":") for line in
              (root / "etc" / "passwd").read_text().splitlines()}
    user = passwd["mailgate"]
    assert user[5] == "/var/lib/mailgate" and user[6].endswith("/nologin")
    assert int(user[2]) < 1000, "a system user"

    done = subprocess.run([tmpfiles, f"--root={root}", "--create", str(TMPFILES)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for folder, mode in (("var/lib/mailgate", 0o700), ("run/mailgate", 0o750)):
        st = (root / folder).stat()
        assert (st.st_mode & 0o777, st.st_uid) == (mode, int(user[2])), folder
