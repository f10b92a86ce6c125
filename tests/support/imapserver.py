"""A private, unprivileged Dovecot for IMAP tests: its own config, mail store and port.

Tests deliver mail with IMAP APPEND and watch mailgate fetch it. `restart()` keeps the
port (a server that went away mid-poll comes back); `reset_uidvalidity()` makes the
server hand out a new UIDVALIDITY for a folder while keeping its messages.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.relay import free_port


class DovecotUnavailable(Exception):
    pass


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if os.access("/usr/sbin/dovecot", os.X_OK) else None)


CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
protocols = imap
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
first_valid_uid = 100
mail_location = maildir:{root}/mail/%u
default_login_user = dovenull
default_internal_user = dovecot
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root}/passwd
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""


class Dovecot:
    def __init__(self, *, tls: bool = False) -> None:
        """With `tls`, a self-signed certificate (`cert_file`) serves IMAPS on
        `imaps_port` and STARTTLS on `port`."""
        binary = dovecot_binary()
        if binary is None:
            raise DovecotUnavailable("dovecot is not installed (Debian package dovecot-imapd)")
        self.binary = binary
        self.root = Path(tempfile.mkdtemp(prefix="mailgate-dovecot-"))
        self.root.chmod(0o755)
        for sub in ("run", "state", "mail"):
            (self.root / sub).mkdir()
        shutil.chown(self.root / "mail", "dovecot", "dovecot")
        self.host = "127.0.0.1"
        self.port = free_port()
        self.users: dict[str, str] = {}
        self.imaps_port = 0
        self.cert_file = ""
        ssl_conf = "ssl = no"
        if tls:
            self.imaps_port = free_port()
            key, cert = self.root / "key.pem", self.root / "cert.pem"
            made = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                                   "-keyout", str(key), "-out", str(cert), "-days", "2",
                                   "-subj", "/CN=127.0.0.1",
                                   "-addext", "subjectAltName=IP:127.0.0.1"],
                                  capture_output=True, text=True)
            if made.returncode != 0:
                raise DovecotUnavailable(f"openssl failed: {made.stderr[-200:]}")
            self.cert_file = str(cert)
            ssl_conf = f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}"
        self.conf = self.root / "dovecot.conf"
        self.conf.write_text(CONFIG.format(root=self.root, port=self.port, ssl=ssl_conf,
                                           imaps_port=self.imaps_port))
        self._write_passwd()

    # --- life cycle ------------------------------------------------------------------------

    def start(self) -> Dovecot:
        # the daemonized master keeps its stdio: never hand it a pipe we wait on
        errors = self.root / "start.err"
        with errors.open("wb") as err:
            result = subprocess.run([self.binary, "-c", str(self.conf)], stdin=subprocess.DEVNULL,
                                    stdout=err, stderr=err, timeout=20)
        if result.returncode != 0:
            raise DovecotUnavailable(f"dovecot did not start: {errors.read_text().strip()} "
                                     f"{self.log_text()[-500:]}")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(
                    (self.host, self.port), timeout=1) as s:
                if s.recv(100).startswith(b"* OK"):
                    return self
            time.sleep(0.05)
        self.stop()
        raise DovecotUnavailable(f"dovecot did not answer on {self.port}: "
                                 f"{self.log_text()[-500:]}")

    def stop(self) -> None:
        subprocess.run([self.binary, "-c", str(self.conf), "stop"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=20)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection((self.host, self.port), timeout=0.5).close()
            except OSError:
                pidfile = self.root / "run" / "master.pid"
                if not pidfile.exists():
                    return
            time.sleep(0.05)
        pidfile = self.root / "run" / "master.pid"
        if pidfile.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pidfile.read_text().strip()), 9)

    def kill(self) -> None:
        """Kill the master and every process under it at once. A graceful `stop` takes
        ~3 s (the master waits out its log process): this is for the end of a test."""
        pidfile = self.root / "run" / "master.pid"
        try:
            master = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        doomed, todo = [], [master]
        while todo:
            pid = todo.pop()
            doomed.append(pid)
            with contextlib.suppress(OSError, ValueError):
                todo.extend(int(c) for c in
                            Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
        for pid in doomed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        pidfile.unlink(missing_ok=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection((self.host, self.port), timeout=0.5).close()
            except OSError:
                return
            time.sleep(0.01)

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()

    def log_text(self) -> str:
        log = self.root / "dovecot.log"
        return log.read_text(errors="replace") if log.exists() else ""

    # --- users and mail ----------------------------------------------------------------------

    def add_user(self, user: str, password: str) -> None:
        self.users[user] = password
        self._write_passwd()

    def _write_passwd(self) -> None:
        path = self.root / "passwd"
        path.write_text("".join(f"{u}:{{PLAIN}}{p}\n" for u, p in self.users.items()))
        path.chmod(0o644)

    def client(self, user: str) -> imaplib.IMAP4:
        imap = imaplib.IMAP4(self.host, self.port, timeout=10)
        imap.login(user, self.users[user])
        return imap

    def append(self, user: str, raw: bytes, folder: str = "INBOX", flags: str = "") -> None:
        imap = self.client(user)
        try:
            if folder != "INBOX":
                imap.create(folder)
            typ, data = imap.append(folder, flags or None, None, raw)
            if typ != "OK":
                raise AssertionError(f"APPEND failed: {data!r}")
        finally:
            imap.logout()

    def uids(self, user: str, folder: str = "INBOX") -> list[int]:
        imap = self.client(user)
        try:
            typ, _ = imap.select(f'"{folder}"', readonly=True)
            if typ != "OK":
                return []
            _, data = imap.uid("search", None, "ALL")
            return [int(u) for u in data[0].split()]
        finally:
            imap.logout()

    def flags(self, user: str, folder: str = "INBOX") -> dict[int, str]:
        imap = self.client(user)
        try:
            imap.select(f'"{folder}"', readonly=True)
            _, data = imap.uid("fetch", "1:*", "(FLAGS)")
            out = {}
            for item in data:
                if isinstance(item, bytes) and b"UID" in item:
                    uid = int(item.split(b"UID ")[1].split(b" ")[0].rstrip(b")"))
                    out[uid] = item.decode()
            return out
        finally:
            imap.logout()

    def uidvalidity(self, user: str, folder: str = "INBOX") -> int:
        imap = self.client(user)
        try:
            _, data = imap.status(f'"{folder}"', "(UIDVALIDITY)")
            return int(data[0].split(b"UIDVALIDITY ")[1].rstrip(b")"))
        finally:
            imap.logout()

    def reset_uidvalidity(self, user: str, folder: str = "INBOX") -> None:
        """Forget the folder's UID list and indexes: the server renumbers its mail under a
        new UIDVALIDITY (as after a server migration or restore)."""
        old = self.uidvalidity(user, folder)
        self.kill()
        base = self.root / "mail" / user / "Maildir"
        if not base.exists():
            base = self.root / "mail" / user
        folder_dir = base if folder == "INBOX" else base / f".{folder}"
        for pattern in ("dovecot-uidlist", "dovecot.index*", "dovecot-uidvalidity*"):
            for path in folder_dir.glob(pattern):
                path.unlink()
        # UIDVALIDITY is a timestamp: make sure the new one differs
        while int(time.time()) <= old:
            time.sleep(0.05)
        self.start()
