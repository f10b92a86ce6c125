"""IMAP ingest: fetch from configured mailboxes into the same durable inbox as SMTP.

Exactly once: messages are fetched with BODY.PEEK (nothing is marked on fetch), a batch
is stored and committed, and only then moved or flagged on the server. A crash between
the commit and the move fetches the batch again, and the inbox row key (mailbox,
UIDVALIDITY, UID) makes the second store a no-op; the pipeline's content key collapses
the same mail arriving by another path (SMTP, a second mailbox, a new UIDVALIDITY).

Each mailbox runs in its own thread (imaplib blocks), with reconnect and backoff; its
state goes to the `setting` table so `mailgate imap status` can show it from any
process. A wrong password in one mailbox never stops the others.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.parser
import email.policy
import imaplib
import json
import re
import select
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from imap_tools import MailBox, MailBoxStartTls, MailBoxUnencrypted
from imap_tools.errors import MailboxLoginError

from mailgate import faults
from mailgate.bootstrap import App
from mailgate.config import ImapConfig
from mailgate.edges.imap_wake import StopEvent
from mailgate.edges.spool import Arrival, store_arrivals
from routing.addresses import RecipientKind, classify_recipient, parse_address_list
from store import settings
from store.db import StoreUnavailable
from store.leases import Lease

_FETCH_UID = re.compile(rb"UID (\d+)")
_RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "To", "Cc")
MAX_BACKOFF = 300.0


class ImapProblem(Exception):
    """A mailbox cannot be used; the message is for the admin."""


def box_name(box: ImapConfig) -> str:
    return box.name or f"{box.user}@{box.host}/{box.folder}"


def password_of(box: ImapConfig) -> str:
    if box.password_file:
        return Path(box.password_file).read_text(encoding="utf-8").strip()
    return box.password


def connect(box: ImapConfig):
    """A logged-in mailbox with `box.folder` selected, or ImapProblem."""
    try:
        if box.tls == "none":
            mailbox = MailBoxUnencrypted(box.host, box.port, timeout=box.timeout_seconds)
        else:
            context = ssl.create_default_context(cafile=box.tls_ca_file or None)
            cls = MailBox if box.tls == "ssl" else MailBoxStartTls
            mailbox = cls(box.host, box.port, timeout=box.timeout_seconds,
                          ssl_context=context)
    except (OSError, imaplib.IMAP4.error) as exc:
        raise ImapProblem(f"cannot connect to {box.host}:{box.port}: {exc}") from None
    try:
        mailbox.login(box.user, password_of(box), initial_folder=None)
    except MailboxLoginError:
        _logout(mailbox)
        raise ImapProblem(f"login refused for {box.user} at {box.host}:{box.port} "
                          "(wrong user or password?)") from None
    except BaseException:
        _logout(mailbox)          # the server went away mid-login: never leave the socket
        raise
    try:
        mailbox.folder.set(box.folder)
    except Exception as exc:
        _logout(mailbox)
        raise ImapProblem(f"cannot open folder {box.folder!r}: {exc}") from None
    return mailbox


def _logout(mailbox) -> None:
    """Say goodbye if the server still listens; close the socket either way (a LOGOUT on a
    dropped connection raises before imaplib closes anything)."""
    with contextlib.suppress(Exception):
        mailbox.logout()
    with contextlib.suppress(Exception):
        mailbox.client.shutdown()


def recipient_for(raw_headers: bytes, box: ImapConfig, app: App) -> str:
    """The mailbox's address, unless a header names one of our plus-addresses."""
    default = box.address or app.config.mail.support_address
    msg = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw_headers)
    for name in _RECIPIENT_HEADERS:
        for address in parse_address_list([str(v) for v in msg.get_all(name) or []]):
            r = classify_recipient(address, app.recipient_rules)
            if getattr(r, "kind", None) in (RecipientKind.PROJECT, RecipientKind.TOKEN):
                return address
    return default


def _envelope_sender(raw_headers: bytes) -> str:
    m = re.search(rb"^Return-Path:\s*<([^>\r\n]*)>", raw_headers, re.MULTILINE | re.IGNORECASE)
    return m.group(1).decode("utf-8", "replace") if m else ""   # SMTPUTF8: jürgen@…


@dataclass
class BoxState:
    name: str
    state: str = "starting"        # starting | ok | idle | error | auth-failed | stopped
    error: str = ""
    last_ok_at: str = ""
    last_error_at: str = ""
    stored: int = 0
    uidvalidity: int = 0
    extra: dict = field(default_factory=dict)

    def as_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)


class MailboxFetcher:
    """Fetches one mailbox in a thread until stopped."""

    def __init__(self, app: App, box: ImapConfig,
                 on_stored: Callable[[list[int]], None] | None = None) -> None:
        self.app = app
        self.box = box
        self.name = box_name(box)
        self.on_stored = on_stored or (lambda ids: None)
        self.status = BoxState(self.name)
        self.stop_event = StopEvent()
        self.thread = threading.Thread(target=self._run, name=f"imap-{self.name}", daemon=True)
        self.log = app.log.bind(mailbox=self.name)
        # several instances on one database: one fetches this mailbox, the others stand by
        self.lease = Lease(app.db, f"imap:{self.name}")

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        self.thread.join(timeout)

    # --- the loop ------------------------------------------------------------------------

    def _run(self) -> None:
        backoff = 1.0
        while not self.stop_event.is_set():
            if not self._leased():
                continue
            try:
                mailbox = connect(self.box)
            except Exception as exc:  # ImapProblem, TLS failures, anything: never die
                auth = isinstance(exc, ImapProblem) and "login refused" in str(exc)
                problem = str(exc) if isinstance(exc, ImapProblem) else \
                    f"cannot connect to {self.box.host}:{self.box.port}: {exc}"
                self._report("auth-failed" if auth else "error", problem)
                self.log.error("imap mailbox unusable", error=problem)
                self.stop_event.wait(max(backoff, self.box.poll_seconds) if auth else backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            try:
                self._session(mailbox)
                backoff = 1.0
            except StoreUnavailable as exc:
                self._report("error", f"store unavailable: {exc}")
                self.log.warning("imap batch not stored; will fetch again", error=str(exc))
                self.stop_event.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
            except (TimeoutError, OSError, imaplib.IMAP4.error, imaplib.IMAP4.abort) as exc:
                self._report("error", f"connection lost: {exc}")
                self.log.warning("imap connection lost; reconnecting", error=str(exc),
                                 after_seconds=backoff)
                self.stop_event.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
            except Exception as exc:  # never let one mailbox kill the daemon
                self._report("error", f"{type(exc).__name__}: {exc}")
                self.log.exception("imap fetch failed")
                self.stop_event.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
            finally:
                _logout(mailbox)
        if self.lease.held():      # a standby instance leaves the holder's state alone
            self._report("stopped", "")
        self.lease.release()

    def _leased(self) -> bool:
        """Hold this mailbox's lease, or stand by (waiting a poll interval) while another
        instance holds it."""
        try:
            if self.lease.acquire():
                return True
            # the state shown by `imap status` is the holder's: not overwritten here
            self.log.debug("imap mailbox fetched by another instance; standing by")
        except Exception as exc:       # the database is down: try again later
            self.log.warning("imap mailbox lease not taken", error=f"{exc}"[:300])
        self.stop_event.wait(min(self.box.poll_seconds, 30))
        return False

    def _session(self, mailbox) -> None:
        """Drain the folder, then wait (IDLE or poll) for more, until stopped or an error."""
        idle = self.box.idle and "IDLE" in (mailbox.client.capabilities or ())
        while not self.stop_event.is_set():
            if not self.lease.held():
                raise StoreUnavailable("the mailbox's lease was lost with its connection")
            self.fetch_all(mailbox)
            self._report("idle" if idle else "ok", "")
            if idle:
                self._idle(mailbox)
            else:
                self.stop_event.wait(self.box.poll_seconds)
                mailbox.client.noop()

    def _idle(self, mailbox) -> None:
        """IDLE until the server reports something, `poll_seconds` pass (re-issued at
        least every 25 minutes) or the fetcher is stopped (woken at once, not polled)."""
        deadline = time.monotonic() + min(self.box.poll_seconds, 1500)
        mailbox.idle.start()
        try:
            with self.stop_event.wakeup() as wake_fd:
                poller = select.poll()
                sock_fd = mailbox.client.sock.fileno()
                poller.register(sock_fd, select.POLLIN)
                poller.register(wake_fd, select.POLLIN)
                while not self.stop_event.is_set():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    events = poller.poll(left * 1000)
                    if any(fd == sock_fd for fd, _ in events) and mailbox.idle.poll(timeout=0):
                        break
        finally:
            mailbox.idle.stop()

    # --- one pass --------------------------------------------------------------------------

    def fetch_all(self, mailbox) -> int:
        """Store every message waiting in the folder, batch by batch; returns how many."""
        uidvalidity = int(mailbox.folder.status(self.box.folder, ["UIDVALIDITY"])["UIDVALIDITY"])
        self.status.uidvalidity = uidvalidity
        criteria = "UNSEEN" if self.box.after == "flag" else "ALL"
        uids = [int(u) for u in mailbox.uids(criteria)]
        moved_target_ready = False
        total = 0
        for start in range(0, len(uids), self.box.batch_size):
            if self.stop_event.is_set():
                break
            batch = uids[start:start + self.box.batch_size]
            arrivals, fetched = self._fetch_batch(mailbox, batch, uidvalidity)
            if arrivals:
                # committed here
                ids = store_arrivals(self.app.db, arrivals, instance=self.app.instance)
                self.on_stored(ids)
            faults.hit("imap.after_commit")
            if fetched:
                if self.box.after == "move":
                    if not moved_target_ready:
                        self._ensure_folder(mailbox, self.box.move_to)
                        moved_target_ready = True
                    mailbox.move([str(u) for u in fetched], self.box.move_to)
                else:
                    mailbox.flag([str(u) for u in fetched], "\\Seen", True)
            total += len(arrivals)
            self.status.stored += len(arrivals)
            self.log.info("imap batch stored", count=len(arrivals), uidvalidity=uidvalidity)
        return total

    def _fetch_batch(self, mailbox, batch: list[int], uidvalidity: int):
        typ, data = mailbox.client.uid("fetch", ",".join(map(str, batch)), "(UID BODY.PEEK[])")
        if typ != "OK":
            raise imaplib.IMAP4.error(f"FETCH failed: {data!r}")
        arrivals, fetched = [], []
        for item in data:
            if not isinstance(item, tuple) or len(item) < 2:
                continue
            m = _FETCH_UID.search(item[0])
            if not m:
                continue
            uid, raw = int(m.group(1)), item[1]
            head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
            arrivals.append(Arrival(
                raw=raw, mail_from=_envelope_sender(head),
                rcpt_tos=(recipient_for(head, self.box, self.app),),
                source=f"imap:{self.name}"[:200], peer=f"{self.box.host}:{self.box.port}",
                imap_key=f"{self.name}\x1f{uidvalidity}\x1f{uid}"))
            fetched.append(uid)
        return arrivals, fetched

    @staticmethod
    def _ensure_folder(mailbox, folder: str) -> None:
        if not mailbox.folder.exists(folder):
            mailbox.folder.create(folder)

    # --- status ------------------------------------------------------------------------

    def _report(self, state: str, error: str) -> None:
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self.status.state = state
        if error:
            self.status.error = error
            self.status.last_error_at = now
        else:
            self.status.last_ok_at = now
            if state in ("ok", "idle"):
                self.status.error = ""
        try:
            with self.app.db.unit() as session:
                settings.set_setting(session=session, key=f"imap.status.{self.name}",
                                    value=self.status.as_json())
        except Exception as exc:  # status is best effort; fetching goes on
            self.log.warning("imap status not saved", error=str(exc))


def check_mailbox(box: ImapConfig) -> dict:
    """`mailgate imap test`: log in, open the folder, look at the move target."""
    result = {"host": box.host, "port": box.port, "user": box.user, "folder": box.folder,
              "ok": False, "messages": None, "problem": ""}
    try:
        mailbox = connect(box)
    except ImapProblem as exc:
        result["problem"] = str(exc)
        return result
    try:
        status = mailbox.folder.status(box.folder, ["MESSAGES", "UIDVALIDITY"])
        result["messages"] = int(status["MESSAGES"])
        if box.after == "move" and not mailbox.folder.exists(box.move_to):
            result["note"] = f"folder {box.move_to!r} does not exist yet; it will be created"
        result["ok"] = True
    except Exception as exc:
        result["problem"] = f"{type(exc).__name__}: {exc}"
    finally:
        _logout(mailbox)
    return result
