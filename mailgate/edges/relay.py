"""Deliver queued mail to the relay.

A queued mail is rendered and composed just before its first attempt (see
`handlers.notify`) and the bytes are kept, so every retry sends the same bytes with the
same Message-ID. A mail leaves the outbox only when the relay answers 2xx after the
final dot. A 4xx,
a refused connection or a connection lost mid-transaction leaves it pending with
exponential backoff (the same bytes, so the same Message-ID, go again); a 5xx marks it
failed with the relay's answer, and mail that could not be delivered for
`give_up_after_hours` fails too. Blocking smtplib runs in a worker thread; the SMTP
client itself is `relay_client` (`Relay` and `classify_smtp_error` are imported from here
too).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import smtplib
import time
from dataclasses import dataclass

from sqlalchemy import update

from mailgate import faults
from mailgate.bootstrap import App
from mailgate.edges.relay_client import Relay, answered, classify_smtp_error
from mailgate.handlers.notify import Composed, compose_queued
from store import outbox
from store.db import StoreUnavailable
from store.models import Outbox, OutboxState

# Results are written back once per batch, or after this long when the relay is slow: a
# mail the relay took but that is not yet marked sent is sent again if the process dies
# (after its lease runs out), so the window stays short.
RECORD_SECONDS = 1.0

__all__ = ["Delivery", "OutboxSender", "Relay", "classify_smtp_error"]


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


class OutboxSender:
    """Sends what is due in batches: one statement leases a batch and returns its rows,
    the mails without bytes are composed outside any write lock, all go over one relay
    connection, and the results are written back in one statement (one short write unit
    per batch, or per `RECORD_SECONDS` when the relay is slow)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.cfg = app.config.outbound

    def backoff(self, attempts: int) -> dt.timedelta:
        seconds = min(self.cfg.retry_min_seconds * 2 ** max(attempts - 1, 0),
                      self.cfg.retry_max_seconds)
        return dt.timedelta(seconds=seconds)

    def claim(self) -> list:
        # a batch claimed by an instance that died is sent by another once this runs out
        lease = dt.timedelta(seconds=self.cfg.lease_seconds)
        # durable (never `durable=False`): this commit also makes the lazily committed
        # processing batch that queued these mails durable before any of them leaves
        with self.app.db.unit() as session:
            return outbox.claim_due(session=session, now=self.app.now(), lease=lease,
                                    limit=self.cfg.batch_size)

    def idle_seconds(self, longest: float) -> float:
        """How long the sender may sleep when nothing is due: until the earliest retry
        falls due (so a backoff of seconds is kept, not rounded up to the poll), at most
        `longest`; new mail wakes it sooner."""
        try:
            with self.app.db.unit(write=False) as session:
                due = outbox.next_due(session=session)
        except Exception:   # the loop's own wait then: never a reason to stop sending
            return longest
        if due is None:
            return longest
        if due.tzinfo is None:
            due = due.replace(tzinfo=dt.UTC)
        return min(longest, max(0.1, (due - self.app.now()).total_seconds()))

    def run_due(self) -> list[Delivery]:
        """Send everything due now over one connection; returns what happened to each."""
        try:
            rows = self.claim()
        except StoreUnavailable:
            return []
        if not rows:
            return []
        mails = self._load(rows)
        relay = Relay(self.cfg)
        results: list[Delivery] = []
        pending: list[tuple[_Mail, Delivery]] = []
        unsent: list[int] = []
        since = time.monotonic()
        try:
            for i, mail in enumerate(mails):
                result = self._deliver(relay, mail)
                results.append(result)
                pending.append((mail, result))
                if result.state == OutboxState.PENDING and result.detail.startswith("connect:"):
                    # The relay is unreachable: put the rest back without an attempt.
                    unsent = [m.id for m in mails[i + 1:]]
                    break
                if time.monotonic() - since > RECORD_SECONDS:
                    # a slow relay: what it took is written down before a crash could
                    # make another instance send it again
                    self._record(pending, [])
                    pending, since = [], time.monotonic()
        finally:
            relay.close()
            if pending or unsent:
                self._record(pending, unsent)
        return results

    def _load(self, rows: list) -> list[_Mail]:
        """The claimed rows as mails, each with its bytes (composed now if it has none
        yet; the store is read only for a mail that takes an agent's files along)."""
        files = any(not r.raw and (r.payload or {}).get("files_of") for r in rows)
        out = []
        with self.app.db.unit(write=False) if files else contextlib.nullcontext() as session:
            for row in rows:
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
            if not relay.usable():
                try:
                    relay.open()
                except (OSError, smtplib.SMTPException) as exc:
                    state, detail = classify_smtp_error(exc)
                    return Delivery(mail.id, state, f"connect: {detail}")
            faults.hit("outbox.before_send")
            reply = relay.send(mail.mail_from, mail.rcpt, mail.raw)
            faults.hit("outbox.after_send")
        except (smtplib.SMTPException, OSError) as exc:
            if answered(exc):
                relay.reset()   # the relay refused this mail: the next one goes on
            else:
                relay.close()   # the connection is in doubt: the next mail opens a new one
            state, detail = classify_smtp_error(exc)
            return Delivery(mail.id, state, detail)
        return Delivery(mail.id, OutboxState.SENT, "", reply)

    def _record(self, done: list[tuple[_Mail, Delivery]], unsent: list[int]) -> None:
        """Write the attempts back and put `unsent` back unattempted, in one write unit."""
        now = self.app.now()
        with self.app.db.unit() as session:
            outbox.record_attempts(session=session,
                                   rows=[self._values(m, r, now) for m, r in done])
            if unsent:
                session.execute(update(Outbox).where(Outbox.id.in_(unsent))
                                .values(state=OutboxState.PENDING, lease_until=None))
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

    def compact(self) -> int:
        """Forget the bytes of mail sent more than `keep_sent_days` ago (the rows stay)."""
        before = self.app.now() - dt.timedelta(days=self.cfg.keep_sent_days)
        with self.app.db.unit() as session:
            n = outbox.compact_sent(session=session, before=before)
        if n:
            self.app.log.info("outbox compacted", mails=n)
        return n
