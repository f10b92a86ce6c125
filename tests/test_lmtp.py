"""The LMTP edge: SMTP's checks and codes, and after DATA one reply per recipient."""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import smtplib
import socket
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from mailgate import faults
from tests.conftest import require_service
from tests.support.harness import SUPPORT, make_mail, wait_until
from tests.support.relay import free_port

CARLA = "carla@client.example"
PLUS = "support+acme@example.com"


@pytest.fixture
def short_dir():
    """A unix socket path must fit in 108 bytes; pytest's tmp_path may not."""
    path = tempfile.mkdtemp(prefix="mg-lmtp-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def h(harness_factory, sqlite_url, short_dir):
    h = harness_factory(sqlite_url, smtp={"max_message_bytes": 200_000},
                        lmtp={"socket": f"{short_dir}/lmtp.sock"}).start()
    assert h.cli("project", "add", "acme", "--name", "ACME Corp",
                 "--customer", CARLA).code == 0
    return h


def lmtp(h) -> smtplib.LMTP:
    s = smtplib.LMTP(h.config.lmtp.socket, timeout=30)
    s.ehlo("mx.example")         # smtplib.LMTP sends LHLO for this
    return s


def send_to_two(s: smtplib.LMTP, raw: bytes) -> list[tuple[int, bytes]]:
    """MAIL, two RCPTs, DATA, and then every reply LMTP owes: one per recipient."""
    assert s.mail(CARLA)[0] == 250
    assert s.rcpt(SUPPORT)[0] == 250
    assert s.rcpt(PLUS)[0] == 250
    return [s.data(raw), s.getreply()]


def test_the_socket_is_group_writable_for_the_mta_and_removed_at_stop(h):
    path = h.config.lmtp.socket
    mode = os.stat(path).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o660
    h.stop()
    assert not os.path.exists(path)


def test_a_mail_for_two_recipients_gets_two_250s_and_is_stored_once_with_both(h):
    with lmtp(h) as s:
        replies = send_to_two(s, make_mail(sender=CARLA))
    assert [code for code, _ in replies] == [250, 250]
    (row,) = h.inbound()
    assert row.source == "lmtp" and row.rcpt_tos == [SUPPORT, PLUS]
    assert all(f"queued as {row.id}".encode() in text for _, text in replies)


def test_helo_and_ehlo_are_not_lmtp(h):
    with smtplib.LMTP(h.config.lmtp.socket, timeout=30) as s:
        assert s.docmd("EHLO", "mx.example")[0] == 500
        assert s.docmd("HELO", "mx.example")[0] == 500
        assert s.docmd("LHLO", "mx.example")[0] == 250


def test_an_unknown_domain_is_refused_at_rcpt_with_550(h):
    with lmtp(h) as s:
        s.mail(CARLA)
        code, text = s.rcpt("someone@other.example")
    assert code == 550 and b"5.1.1" in text


def test_an_oversize_mail_gets_552_for_each_recipient_and_nothing_is_stored(h):
    with lmtp(h) as s:
        replies = send_to_two(s, make_mail(sender=CARLA, body="x" * 250_000))
        assert s.noop()[0] == 250           # the conversation is still in step
    assert [code for code, _ in replies] == [552, 552]
    assert h.inbound() == []


def test_a_failed_commit_gets_451_for_each_recipient(h):
    faults.arm("spool.before_commit=raise-once")
    try:
        with lmtp(h) as s:
            replies = send_to_two(s, make_mail(sender=CARLA))
    finally:
        faults.arm("")
    assert [(code, text[:5]) for code, text in replies] == [(451, b"4.3.0")] * 2
    assert h.inbound() == []


def test_mail_over_lmtp_on_tcp_is_routed_like_smtp_mail(harness_factory, sqlite_url):
    """A customer's mail via LMTP on host/port opens a ticket and is acknowledged."""
    port = free_port()
    h = harness_factory(sqlite_url, lmtp={"host": "127.0.0.1", "port": port}).start()
    assert h.cli("project", "add", "acme", "--name", "ACME Corp",
                 "--customer", CARLA).code == 0
    with smtplib.LMTP("127.0.0.1", port, timeout=30) as s:
        refused = s.sendmail(CARLA, [SUPPORT], make_mail(sender=CARLA, subject="Printer"))
    assert refused == {}
    h.settle()
    (ticket,) = json.loads(h.cli("ticket", "list", "--json").out)
    (ack,) = h.relay.wait_for(CARLA)
    assert ack.subject == f"[#{ticket['number']}] Printer"


# --- a real Postfix in front ----------------------------------------------------------
# Postfix is not a Python package: the test runs the binaries of an installed Postfix, or
# of a postfix .deb unpacked anywhere (no install scripts, no users created, nothing
# system-wide touched), as a private instance: its own config and queue directories,
# SMTP on a loopback port, the existing users nobody/daemon and group mail.
POSTFIX_ROOT_ENV = "MAILGATE_TEST_POSTFIX_ROOT"
QUEUE_DIRS = ("incoming", "active", "bounce", "defer", "deferred", "flush", "hold", "corrupt",
              "trace", "saved", "private", "maildrop", "public")
MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
mailgate unix - - n - 4 lmtp
"""


def postfix_root() -> Path:
    root = Path(os.environ.get(POSTFIX_ROOT_ENV, "/"))
    if not (root / "usr/lib/postfix/sbin/master").exists():
        # CI (.ci/run) unpacks Postfix and sets the variable: there, a miss is a failure
        require_service(f"no Postfix binaries under {root} (set {POSTFIX_ROOT_ENV} to a "
                        "folder holding `dpkg -x postfix_*.deb` to run this test)")
    if os.geteuid() != 0:
        pytest.skip("a private Postfix master must start as root")
    try:
        pwd.getpwnam("nobody"), pwd.getpwnam("daemon"), grp.getgrnam("mail")
    except KeyError as exc:
        pytest.skip(f"Postfix needs existing users nobody, daemon and group mail: {exc}")
    return root


@pytest.fixture
def postfix(short_dir):
    root = postfix_root()
    base = Path(tempfile.mkdtemp(prefix="mg-postfix-", dir="/tmp"))
    os.chmod(base, 0o755)      # Postfix's processes run as nobody and must get in
    conf, queue, data = base / "conf", base / "queue", base / "data"
    owner, mail_gid = pwd.getpwnam("nobody"), grp.getgrnam("mail").gr_gid
    for d in (conf, queue, data):
        d.mkdir(parents=True)
    os.chown(data, owner.pw_uid, owner.pw_gid)
    for name in QUEUE_DIRS:
        (queue / name).mkdir(mode=0o700)
        os.chown(queue / name, owner.pw_uid, mail_gid)
    (queue / "pid").mkdir()
    port = free_port()
    sock = f"{short_dir}/lmtp.sock"
    (conf / "main.cf").write_text(f"""\
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
daemon_directory = {root}/usr/lib/postfix/sbin
command_directory = {root}/usr/sbin
shlib_directory = {root}/usr/lib/postfix
meta_directory = {root}/etc/postfix
mail_owner = nobody
default_privs = daemon
setgid_group = mail
import_environment = MAIL_CONFIG LD_LIBRARY_PATH TZ
myhostname = mx.test.example
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
maillog_file = {base}/maillog
maillog_file_prefixes = {base}
relay_domains = example.com
transport_maps = inline:{{ example.com=mailgate:unix:{sock} }}
mailgate_destination_recipient_limit = 100
""")
    (conf / "master.cf").write_text(MASTER_CF.format(port=port))
    master = subprocess.Popen([f"{root}/usr/lib/postfix/sbin/master", "-c", str(conf), "-d"],
                              env={"LD_LIBRARY_PATH": f"{root}/usr/lib/postfix",
                                   "PATH": "/usr/bin:/bin"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: port_answers(port) or master.poll() is not None,
                   f"Postfix on port {port}", timeout=30)
        assert master.poll() is None, f"Postfix did not start: {master.stderr.read()}"
        yield port, base / "maillog", owner.pw_gid
    finally:
        master.terminate()
        master.wait(30)
        master.stderr.close()
        shutil.rmtree(base, ignore_errors=True)


def port_answers(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_postfix_delivers_over_the_lmtp_socket_once_with_a_reply_per_recipient(
        postfix, harness_factory, sqlite_url, short_dir):
    port, maillog, postfix_gid = postfix
    h = harness_factory(sqlite_url, lmtp={"socket": f"{short_dir}/lmtp.sock"}).start()
    assert h.cli("project", "add", "acme", "--name", "ACME Corp",
                 "--customer", CARLA).code == 0
    # what the admin does: Postfix's user joins mailgate's group (see docs)
    os.chown(short_dir, 0, postfix_gid)
    os.chmod(short_dir, 0o750)
    os.chown(h.config.lmtp.socket, 0, postfix_gid)
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.sendmail(CARLA, [SUPPORT, PLUS], make_mail(sender=CARLA, subject="Via Postfix"))

    def delivered() -> list[str]:
        text = maillog.read_text() if maillog.exists() else ""
        return [line for line in text.splitlines() if "postfix/lmtp" in line]
    wait_until(lambda: len([x for x in delivered() if "status=sent" in x]) == 2,
               "two deliveries in the Postfix log", timeout=30)
    assert all("250 2.0.0 OK queued as" in line for line in delivered())
    (row,) = h.inbound()                          # one transaction, stored once
    assert row.source == "lmtp" and sorted(row.rcpt_tos) == sorted([SUPPORT, PLUS])
    h.settle()
    (ticket,) = json.loads(h.cli("ticket", "list", "--json").out)
    (ack,) = h.relay.wait_for(CARLA)
    assert ack.subject == f"[#{ticket['number']}] Via Postfix"
