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

import datetime as dt
import smtplib
import socket
import ssl
from dataclasses import dataclass

from sqlalchemy import update

from mailgate import faults
from mailgate.bootstrap import App
from mailgate.config import OutboundConfig, read_secret_file
from mailgate.handlers.notify import compose_queued
from store import outbox
from store.db import StoreUnavailable
from store.models import Outbox, OutboxState

LEASE = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class Delivery:
    outbox_id: int
    state: str        # sent | pending | failed
    detail: str = ""


class Relay:
    """One SMTP connection to the relay, reused for a batch."""

    def __init__(self, cfg: OutboundConfig, local_hostname: str | None = None) -> None:
        self.cfg = cfg
        self.local_hostname = local_hostname
        self.conn: smtplib.SMTP | None = None

    def open(self) -> None:
        conn = smtplib.SMTP(self.cfg.host, self.cfg.port, timeout=self.cfg.timeout_seconds,
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

    def send(self, mail_from: str, rcpt: str, raw: bytes) -> None:
        if self.conn is None:
            self.open()
        self.conn.sendmail(mail_from, [rcpt], raw)

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
        with self.app.db.unit() as session:
            return outbox.claim_outbox(session=session, now=self.app.now(), lease=LEASE,
                                       limit=self.cfg.batch_size)

    def run_due(self) -> list[Delivery]:
        """Send everything due now over one connection; returns what happened to each."""
        try:
            ids = self.claim()
        except StoreUnavailable:
            return []
        if not ids:
            return []
        relay = Relay(self.cfg)
        results: list[Delivery] = []
        try:
            for i, outbox_id in enumerate(ids):
                result = self._deliver(relay, outbox_id)
                results.append(result)
                if result.state == OutboxState.PENDING and result.detail.startswith("connect:"):
                    # The relay is unreachable: put the rest back without an attempt.
                    self._release(ids[i + 1:])
                    break
        finally:
            relay.close()
        return results

    def _deliver(self, relay: Relay, outbox_id: int) -> Delivery:
        composed = None
        with self.app.db.unit(write=False) as session:
            row = session.get(Outbox, outbox_id)
            mail_from, rcpt, raw, attempts = row.mail_from, row.rcpt, row.raw, row.attempts
            created = row.created_at
            if not raw:
                try:
                    composed = compose_queued(session, self.app, row)
                except Exception as exc:   # a template that cannot render: the admin's to fix
                    self.app.log.exception("mail not composed", outbox=outbox_id)
                    return self._record(outbox_id, attempts, created, OutboxState.FAILED,
                                        f"cannot compose: {type(exc).__name__}: {exc}")
                raw = composed.raw
        try:
            if relay.conn is None:
                try:
                    relay.open()
                except (OSError, smtplib.SMTPException) as exc:
                    state, detail = classify_smtp_error(exc)
                    return self._record(outbox_id, attempts, created, state,
                                        f"connect: {detail}", composed)
            faults.hit("outbox.before_send")
            relay.send(mail_from, rcpt, raw)
            faults.hit("outbox.after_send")
        except (smtplib.SMTPException, OSError) as exc:
            relay.close()
            state, detail = classify_smtp_error(exc)
            return self._record(outbox_id, attempts, created, state, detail, composed)
        return self._record(outbox_id, attempts, created, OutboxState.SENT, "", composed)

    def _record(self, outbox_id: int, attempts: int, created: dt.datetime, state: str,
                detail: str, composed=None) -> Delivery:
        now = self.app.now()
        attempts += 1
        values: dict = {"attempts": attempts, "lease_until": None}
        if composed is not None:
            values.update(raw=composed.raw, subject=composed.subject[:2000])
        if detail:
            values["last_error"] = detail
        if state == OutboxState.SENT:
            values.update(state=OutboxState.SENT, sent_at=now)
        elif state == OutboxState.FAILED:
            values.update(state=OutboxState.FAILED)
        elif now - created > dt.timedelta(hours=self.cfg.give_up_after_hours):
            state = OutboxState.FAILED
            values.update(state=OutboxState.FAILED,
                          last_error=f"gave up after {attempts} attempts; last error: {detail}")
        else:
            values.update(state=OutboxState.PENDING, next_attempt_at=now + self.backoff(attempts))
        with self.app.db.unit() as session:
            session.execute(update(Outbox).where(Outbox.id == outbox_id).values(**values))
        log = self.app.log.bind(outbox=outbox_id)
        if state == OutboxState.SENT:
            log.info("mail sent", attempts=attempts)
        else:
            log.warning("mail not sent", state=state, error=detail, attempts=attempts)
        return Delivery(outbox_id, state, detail)

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
