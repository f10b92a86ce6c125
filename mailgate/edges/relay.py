"""Deliver queued mail to the relay.

A queued mail is rendered and composed just before its first attempt (see
`handlers.notify`) and the bytes are kept, so every retry sends the same bytes with the
same Message-ID. A mail leaves the outbox only when the relay answers 2xx after the
final dot. A 4xx,
a refused connection or a connection lost mid-transaction leaves it pending with
exponential backoff (the same bytes, so the same Message-ID, go again); a 5xx marks it
failed with the relay's answer, and mail that could not be delivered for
`give_up_after_hours` fails too. Blocking smtplib runs in a worker thread.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import smtplib
import socket
import ssl
from dataclasses import dataclass

from sqlalchemy import update

from mailgate import faults
from mailgate.bootstrap import App
from mailgate.config import OutboundConfig, read_secret_file
from mailgate.handlers.notify import Composed, compose_queued
from store import outbox
from store.db import StoreUnavailable
from store.models import Outbox, OutboxState

RECORD_EVERY = 16   # results written back per commit


@dataclass(frozen=True)
class _Mail:
    id: int
    mail_from: str
    rcpt: str
    raw: bytes
    attempts: int
    created: dt.datetime
    subject: str = ""
    last_error: str = ""
    next_attempt_at: dt.datetime | None = None
    composed: Composed | None = None
    error: str = ""


@dataclass(frozen=True)
class Delivery:
    outbox_id: int
    state: str        # sent | pending | failed
    detail: str = ""
    reply: str = ""   # the relay's answer to the mail's data ("250 2.0.0 Ok: queued as …")


class _Connection(smtplib.SMTP):
    """smtplib's client, keeping the relay's answer to the data of the last mail
    (`sendmail` drops it; `mailgate trace` shows it)."""

    last_reply = ""

    def data(self, msg):
        code, reply = super().data(msg)
        self.last_reply = f"{code} {reply.decode('utf-8', 'replace')}"[:500]
        return code, reply


class Relay:
    """One SMTP connection to the relay, reused for a batch."""

    def __init__(self, cfg: OutboundConfig, local_hostname: str | None = None) -> None:
        self.cfg = cfg
        self.local_hostname = local_hostname
        self.conn: smtplib.SMTP | None = None

    def open(self) -> None:
        conn = _Connection(self.cfg.host, self.cfg.port, timeout=self.cfg.timeout_seconds,
                           local_hostname=self.local_hostname)
        try:
            conn.ehlo()
            if self.cfg.starttls:
                conn.starttls(context=ssl.create_default_context(
                    cafile=self.cfg.tls_ca_file or None))
                conn.ehlo()
            password = self.cfg.password or (read_secret_file(self.cfg.password_file)
                                             if self.cfg.password_file else "")
            if self.cfg.username:
                conn.login(self.cfg.username, password)
        except BaseException:
            # a refused login or handshake must not leave the socket to the collector
            conn.close()
            raise
        self.conn = conn

    def send(self, mail_from: str, rcpt: str, raw: bytes) -> str:
        """Hand one mail over; returns the relay's reply to it."""
        if self.conn is None:
            self.open()
        options: list[str] = []
        if not (mail_from.isascii() and rcpt.isascii()):
            # an internationalised address (jürgen@…) travels only with SMTPUTF8; a relay
            # without it refuses this one mail for good, not the connection
            if not self.conn.has_extn("smtputf8"):
                raise smtplib.SMTPRecipientsRefused({rcpt: (
                    553, b"5.6.7 the relay does not offer SMTPUTF8, needed for this address")})
            options = ["SMTPUTF8"]
        self.conn.sendmail(mail_from, [rcpt], raw, mail_options=options)
        return self.conn.last_reply

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.quit()
            except (smtplib.SMTPException, OSError):
                self.conn.close()
            self.conn = None


def classify_smtp_error(exc: BaseException) -> tuple[str, str]:
    """('failed' | 'pending', readable detail) for an error from the relay."""
    code, text = None, str(exc)
    if isinstance(exc, smtplib.SMTPAuthenticationError | smtplib.SMTPNotSupportedError):
        # our credentials or the relay's setup, not this mail: keep it until fixed
        return OutboxState.PENDING, f"relay login failed ({exc}); check [outbound] username and " \
                          "password"[:500]
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, msg = next(iter(exc.recipients.values()))
        text = msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg)
    elif isinstance(exc, smtplib.SMTPResponseException):
        code = exc.smtp_code
        text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) \
            else str(exc.smtp_error)
    if code is not None:
        detail = f"{code} {text}".strip()[:500]
        return (OutboxState.FAILED if 500 <= code < 600 else OutboxState.PENDING), detail
    if isinstance(exc, smtplib.SMTPServerDisconnected | OSError | socket.timeout):
        return OutboxState.PENDING, f"{type(exc).__name__}: {exc}"[:500]
    return OutboxState.PENDING, f"{type(exc).__name__}: {exc}"[:500]


class OutboxSender:
    def __init__(self, app: App) -> None:
        self.app = app
        self.cfg = app.config.outbound

    def backoff(self, attempts: int) -> dt.timedelta:
        seconds = min(self.cfg.retry_min_seconds * 2 ** max(attempts - 1, 0),
                      self.cfg.retry_max_seconds)
        return dt.timedelta(seconds=seconds)

    def claim(self) -> list[int]:
        # a batch claimed by an instance that died is sent by another once this runs out
        lease = dt.timedelta(seconds=self.cfg.lease_seconds)
        with self.app.db.unit() as session:
            return outbox.claim_outbox(session=session, now=self.app.now(), lease=lease,
                                       limit=self.cfg.batch_size)

    def run_due(self) -> list[Delivery]:
        """Send everything due now over one connection; returns what happened to each.

        The batch is read in one query and composed outside any write lock; results
        are written back a chunk at a time (one commit per chunk, not per mail)."""
        try:
            ids = self.claim()
        except StoreUnavailable:
            return []
        if not ids:
            return []
        mails = self._load(ids)
        relay = Relay(self.cfg)
        results: list[Delivery] = []
        pending: list[tuple[_Mail, Delivery]] = []
        try:
            for i, mail in enumerate(mails):
                result = self._deliver(relay, mail)
                results.append(result)
                pending.append((mail, result))
                if result.state == OutboxState.PENDING and result.detail.startswith("connect:"):
                    # The relay is unreachable: put the rest back without an attempt.
                    self._release([m.id for m in mails[i + 1:]])
                    break
                if len(pending) >= RECORD_EVERY:
                    self._record(pending)
                    pending = []
        finally:
            relay.close()
            if pending:
                self._record(pending)
        return results

    def _load(self, ids: list[int]) -> list[_Mail]:
        """The claimed rows, each with its bytes (composed now if it has none yet)."""
        out = []
        with self.app.db.unit(write=False) as session:
            for row in outbox.rows_by_id(session=session, ids=ids):
                mail = _Mail(row.id, row.mail_from, row.rcpt, row.raw, row.attempts,
                             row.created_at, row.subject, row.last_error, row.next_attempt_at)
                if not row.raw:
                    try:
                        composed = compose_queued(session, self.app, row)
                        mail = dataclasses.replace(mail, raw=composed.raw, composed=composed)
                    except Exception as exc:   # a template that cannot render: the admin's
                        self.app.log.exception("mail not composed", outbox=row.id)
                        mail = dataclasses.replace(
                            mail, error=f"cannot compose: {type(exc).__name__}: {exc}")
                out.append(mail)
        return out

    def _deliver(self, relay: Relay, mail: _Mail) -> Delivery:
        if mail.error:
            return Delivery(mail.id, OutboxState.FAILED, mail.error)
        try:
            if relay.conn is None:
                try:
                    relay.open()
                except (OSError, smtplib.SMTPException) as exc:
                    state, detail = classify_smtp_error(exc)
                    return Delivery(mail.id, state, f"connect: {detail}")
            faults.hit("outbox.before_send")
            reply = relay.send(mail.mail_from, mail.rcpt, mail.raw)
            faults.hit("outbox.after_send")
        except (smtplib.SMTPException, OSError) as exc:
            relay.close()
            state, detail = classify_smtp_error(exc)
            return Delivery(mail.id, state, detail)
        return Delivery(mail.id, OutboxState.SENT, "", reply)

    def _record(self, done: list[tuple[_Mail, Delivery]]) -> None:
        now = self.app.now()
        with self.app.db.unit() as session:
            outbox.record_attempts(session=session,
                                   rows=[self._values(m, r, now) for m, r in done])
        for mail, result in done:
            log = self.app.log.bind(outbox=mail.id)
            if result.state == OutboxState.SENT:
                log.info("mail sent", attempts=mail.attempts + 1)
            else:
                log.warning("mail not sent", state=result.state, error=result.detail,
                            attempts=mail.attempts + 1)

    def _values(self, mail: _Mail, result: Delivery, now: dt.datetime) -> dict:
        """Every column `record_attempts` writes, for one mail."""
        attempts = mail.attempts + 1
        values: dict = {"id": mail.id, "attempts": attempts, "lease_until": None,
                        "last_error": result.detail or mail.last_error, "sent_at": None,
                        "next_attempt_at": mail.next_attempt_at, "raw": mail.raw,
                        "relay_reply": (result.reply or result.detail)[:500],
                        "subject": (mail.composed.subject if mail.composed
                                    else mail.subject)[:2000]}
        if result.state == OutboxState.SENT:
            values.update(state=OutboxState.SENT, sent_at=now)
        elif result.state == OutboxState.FAILED:
            values.update(state=OutboxState.FAILED)
        elif now - mail.created > dt.timedelta(hours=self.cfg.give_up_after_hours):
            values.update(state=OutboxState.FAILED, last_error=f"gave up after {attempts} "
                                                               f"attempts; last error: "
                                                               f"{result.detail}")
        else:
            values.update(state=OutboxState.PENDING, next_attempt_at=now + self.backoff(attempts))
        return values

    def _release(self, ids: list[int]) -> None:
        if not ids:
            return
        with self.app.db.unit() as session:
            session.execute(update(Outbox).where(Outbox.id.in_(ids))
                            .values(state=OutboxState.PENDING, lease_until=None))

    def compact(self) -> int:
        """Forget the bytes of mail sent more than `keep_sent_days` ago (the rows stay)."""
        before = self.app.now() - dt.timedelta(days=self.cfg.keep_sent_days)
        with self.app.db.unit() as session:
            n = outbox.compact_sent(session=session, before=before)
        if n:
            self.app.log.info("outbox compacted", mails=n)
        return n
