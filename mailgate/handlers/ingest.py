"""Ingest: a committed inbound row becomes a ticket message, an unassigned mail, or a
quarantined one — claim, parse, gather, decide, apply, a batch at a time.

A batch of rows is claimed under a lease, parsed by every parse worker at once, then
decided and applied mail by mail in ONE transaction (one commit for the batch), each
mail inside its own savepoint so one failing mail does not take the others with it.
Those commits do not wait for the disk (`Database.unit(durable=False)`): the raw mail
was stored durably before it was acknowledged, so a batch lost to a power cut is only
processed again, and nothing leaves before a durable commit after it (the outbox sender
claims a mail durably before sending it, which makes the batch that queued it durable).
Nothing here answers a sender; the outbox does that, and nothing is rendered.

Failure is a state: bytes that are no mail are quarantined with the reason on the first
attempt; an unexpected error is retried with backoff and after `max_attempts` the mail is
parked in quarantine, its raw bytes untouched.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from sqlalchemy.exc import IntegrityError

from mailgate import faults
from mailgate.bootstrap import App
from mailgate.handlers import canned
from mailgate.handlers.apply import Source, apply_effects
from mailgate.handlers.behalf import on_behalf
from mailgate.handlers.gather import Batch, SiteCache, gather, mail_facts, mail_root
from mailgate.mail.dkim import dkim_verified
from mailgate.mail.mimecheck import ParseCrashed, ParseRejected
from mailgate.mail.parsing import ParsedMail, with_envelope
from mailgate.mail.pieces import Pieces
from routing.addresses import Recipient, RecipientKind, classify_recipient
from routing.decide import Incoming, decide
from routing.effects import Bounce, Effects, LogEvent, Outcome
from routing.loops import OwnMarks, bounce_status, classify_automatic, is_bounce, own_mail
from routing.overview import Request
from routing.rules import MailFacts, Rule, Target, route
from routing.trust import Verdict, sender_verified
from store import inbox, later, outbox, threads, tickets
from store.db import StoreUnavailable, conflicted
from store.models import InboundState

HEAD = 300_000
RACED = "raced another instance: "    # a failure that is tried again within a second


@dataclass(frozen=True)
class Claimed:
    id: int
    head: bytes                 # the first HEAD bytes of the mail
    rcpt_tos: list[str]
    mail_from: str | None       # "" the null sender, None unknown
    source: str
    attempts: int
    verdict: Verdict | None


@dataclass(frozen=True)
class Prepared:
    """A claimed batch read and parsed, not yet decided."""

    rows: list[Claimed]
    parsed: list           # a ParsedMail, or the ParseRejected / ParseCrashed, per row


class _Retry(Exception):
    """A mail of the batch failed: run the rest of the batch again (the part committed
    before, when the batch stepped aside for the spool, stays), one savepoint per mail."""

    def __init__(self, committed: list) -> None:
        super().__init__("a mail of the batch failed")
        self.committed = committed


@dataclass(frozen=True)
class Result:
    inbound_id: int
    state: str
    reason: str = ""
    ticket: int | None = None
    rule: str = ""
    queued: int = 0


class Ingest:
    def __init__(self, app: App, parser) -> None:
        self.app = app
        self.parser = parser
        cfg = app.config.processing
        self.max_attempts = cfg.max_attempts
        self.batch_size = cfg.batch_for(app.db.dialect)
        self.lease = dt.timedelta(seconds=cfg.lease_seconds)
        # the batch claimed last: the loop applies it before the one it claims next, so
        # its mails hold no sender's newer ones back (`inbox.claim_inbound`)
        self.in_hand: list[int] = []
        self.dnsfunc = None   # DKIM key lookups: dkimpy's DNS unless a test passes its own
        self.site = SiteCache()
        mail = app.config.mail
        self.marks = OwnMarks(app.composer.loop_marker, mail.support_address,
                              frozenset(b.address.lower() for b in app.config.imap
                                        if b.address),
                              app.config.smtp.max_received_headers)

    def claim(self, limit: int | None = None) -> list[int]:
        # a lease lost to a power cut only lets the rows be claimed again
        with self.app.db.unit(durable=False) as session:
            ids = inbox.claim_inbound(session=session, now=self.app.now(), lease=self.lease,
                                      limit=limit or self.batch_size, mine=self.in_hand)
        self.in_hand = ids
        return ids

    # --- a batch ------------------------------------------------------------------------

    def run(self, ids: list[int]) -> list[Result]:
        """Process claimed rows; returns what happened to each."""
        return self.apply(self.prepare(ids))

    def prepare(self, ids: list[int]) -> Prepared | list[Result]:
        """Read and parse claimed rows: no write, so the loop runs it for the next batch
        while this one is applied (the parse workers and the database both busy)."""
        try:
            with self.app.db.unit(write=False) as session:
                rows = inbox.claimed(session=session, ids=ids)
        except StoreUnavailable as exc:
            return self._release(ids, f"store unavailable: {exc}")
        faults.hit("pipeline.before_parse")
        # the parser sees only bytes: the envelope (MAIL FROM, --sender, IMAP's
        # Return-Path) stands in here for a mail that names no sender
        parsed = [with_envelope(m, r.mail_from) if isinstance(m, ParsedMail) else m
                  for r, m in zip(rows, self.parser.parse_many([self._raw(r) for r in rows]),
                                  strict=True)]
        # from here on a row keeps only the head of its bytes (a delivery report's status
        # is near the top): a large mail is not held twice while the batch is applied
        rows = [Claimed(r.id, r.raw[:HEAD], r.rcpt_tos, r.mail_from, r.source, r.attempts,
                        self._verify(r, m) if not isinstance(m, Exception) else None)
                for r, m in zip(rows, parsed, strict=True)]
        return Prepared(rows, parsed)

    def _raw(self, row: inbox.ClaimedRow) -> bytes | Pieces:
        """A row's bytes for the parser; a large mail stored in pieces is read from the
        store a piece at a time as it goes to the parse worker, never whole here."""
        if not row.pieced:
            return row.raw
        db, row_id = self.app.db, row.id

        def read():
            with db.unit(write=False) as session:
                yield from inbox.raw_pieces(session=session, inbound_id=row_id)
        return Pieces(row.size, read)

    def _verify(self, row: inbox.ClaimedRow, mail: ParsedMail) -> Verdict:
        raw = row.raw
        if row.pieced and self.app.config.mail.verify_dkim \
                and not self.app.config.mail.trusted_authserv_id:
            raw = self._raw(row).whole()     # our own DKIM check hashes the whole mail
        return self.verify_sender(raw, mail)

    def apply(self, prepared: Prepared | list[Result]) -> list[Result]:
        """Decide and apply a prepared batch in one transaction; settle the failures."""
        if not isinstance(prepared, Prepared):
            return prepared          # released: the store was unavailable
        rows, parsed = prepared.rows, prepared.parsed
        good, results, failed = [], [], []
        for row, mail in zip(rows, parsed, strict=True):
            if isinstance(mail, ParseRejected):
                results.append(Result(row.id, InboundState.QUARANTINED, f"cannot parse: {mail}"))
            elif isinstance(mail, ParseCrashed):
                failed.append((row, f"parser failed: {mail}"))
            else:
                good.append((row, mail))
        try:
            try:
                with self.app.db.unit(durable=False) as session:
                    done, broken = self._decide_and_apply(session, good)
                    faults.hit("pipeline.before_commit")
            except _Retry as retry:
                kept = {r.inbound_id for r in retry.committed}
                rest = [g for g in good if g[0].id not in kept]
                with self.app.db.unit(durable=False) as session:
                    done, broken = self._decide_and_apply(session, rest, careful=True)
                    faults.hit("pipeline.before_commit")
                done = retry.committed + done
        except StoreUnavailable as exc:
            return results + self._release([r.id for r, _ in good] +
                                           [r.id for r, _ in failed], f"store unavailable: {exc}",
                                           seconds=1 if conflicted(exc) else 15)
        except Exception as exc:
            self.app.log.exception("processing failed", inbound=[r.id for r, _ in good])
            done, broken = [], [(row, f"{type(exc).__name__}: {exc}") for row, _ in good]
        mails = {row.id: mail for row, mail in good}
        for r in done:
            mail = mails[r.inbound_id]
            self.app.log.info("mail processed", inbound=r.inbound_id, state=r.state,
                              rule=r.rule, ticket=r.ticket, reason=r.reason, queued=r.queued,
                              message_id=mail.message_id, sender=mail.sender.address)
        return results + done + self._settle_failures(results, failed + broken)

    def _decide_and_apply(self, session, good, careful: bool = False) -> tuple[list, list]:
        """Decide and apply each mail of the batch in this transaction. The first pass
        trusts every mail; if one fails, the caller rolls back and runs again `careful`:
        each mail in a savepoint of its own, so only the failing one is set aside."""
        now = self.app.now()
        if not careful:
            # events, outbox mails and thread references of the whole batch go in with
            # one statement per table (written before the commit, so a failing row
            # still sends the batch down the careful path)
            later.hold(session)
            # messages go in with that one statement too, under ids reserved now
            tickets.reserve_message_ids(session=session, count=len(good))
        facts = [mail_facts(mail, row.rcpt_tos, self.app) for row, mail in good]
        batch = gather(session, self.app, [(m, f) for (_, m), f in zip(good, facts, strict=True)],
                       now, self.site)
        done, broken, finished, committed = [], [], [], []
        for (row, mail), f in zip(good, facts, strict=True):
            try:
                if careful:
                    with session.begin_nested():
                        result = self._one(session, batch, row, mail, f, now)
                else:
                    result = self._one(session, batch, row, mail, f, now)
            except StoreUnavailable:
                raise
            except Exception as exc:
                if not careful:
                    raise _Retry(committed) from exc
                if isinstance(exc, IntegrityError | threads.ThreadTaken):
                    # another instance stored this mail or opened its thread's ticket
                    # just now: decide it again soon, it will see that
                    self.app.log.info("mail raced another instance", inbound=row.id)
                    broken.append((row, f"{RACED}{type(exc).__name__}"))
                    continue
                self.app.log.exception("processing failed", inbound=row.id)
                broken.append((row, f"{type(exc).__name__}: {exc}"))
                continue
            done.append(result)
            finished.append({"row_id": row.id, "state": result.state, "reason": result.reason,
                             "ticket_id": result.ticket})
            if self.app.db.gate is not None and self.app.db.gate.urgent_waiting():
                # mail waits to be accepted: commit what is decided and let it in first
                inbox.finish(session=session, rows=finished, now=now)
                finished = []
                self._flush_held(session, committed)
                self.app.db.step_aside(session)
                committed = list(done)
        inbox.finish(session=session, rows=finished, now=now)
        self._flush_held(session, committed)
        return done, broken

    def _flush_held(self, session, committed: list) -> None:
        try:
            later.flush(session)
        except StoreUnavailable:
            raise
        except Exception as exc:
            raise _Retry(committed) from exc

    # --- one mail -----------------------------------------------------------------------

    def _one(self, session, batch: Batch, row: Claimed, mail: ParsedMail, facts: MailFacts,
             now: dt.datetime) -> Result:
        seen = batch.dedup.get(mail.dedup_key)
        if seen is not None and seen[1] == row.id:
            # its lease ran out while it was applied, and that apply was committed
            return Result(row.id, InboundState.DONE, "already applied (as message "
                          f"{seen[0]})", seen[2], Rule.DUPLICATE)
        if seen is not None:
            return Result(row.id, InboundState.DUPLICATE, f"same mail as message {seen[0]} "
                          f"(inbound {seen[1]})", seen[2], Rule.DUPLICATE)
        loop = own_mail(mail.headers, message_id=mail.message_id, sender=mail.sender.address,
                        received=mail.received_count, marks=self.marks, sent_ids=batch.sent_ids)
        if loop:
            return Result(row.id, InboundState.DROPPED, loop, None, Rule.LOOP)
        if is_bounce(mail.content_type, mail.headers, mail.sender.address, mail.subject):
            return self._bounce(session, batch, row, mail, now)
        decision = route(facts, batch.directory(self.app, facts), now)
        if (decision.target is Target.UNASSIGNED and decision.rule == Rule.REPLY_TOKEN
                and facts.sender):
            # a token that fails for this sender: look wider to tell the admin why
            mine = tickets.tickets_of_sender(session=session, email=facts.sender)
            decision = route(facts, batch.directory(self.app, facts, mine), now)
        # IMAP keeps no envelope (its Return-Path header stands in, as for any unknown one)
        envelope = None if row.source.startswith("imap") else row.mail_from
        auto = classify_automatic(mail.headers, envelope_sender=envelope,
                                  sender=mail.sender.address, subject=mail.subject)
        incoming = Incoming(facts, mail.sender.name, mail.message_id, mail.text,
                            len(mail.attachments), auto, row.verdict, copied=(*mail.to, *mail.cc))
        incoming, decision = on_behalf(session, self.app, batch, mail, incoming, decision, now)
        # the author's own requests (after on_behalf: a forwarder's are never shown)
        incoming = replace(incoming, requests=batch.requests_of(incoming.sender, incoming.text))
        ctx = batch.contexts.get(decision.ticket) if decision.target is Target.TICKET else None
        effects = decide(incoming, decision, ctx, batch.site, batch.guard_facts(), now)
        if effects.canned:      # an agent's /template: its text goes in before anything is kept
            effects = canned.fill(self.app, effects, ctx, batch.site, lambda site: decide(
                incoming, decision, ctx, site, batch.guard_facts(), now))
        applied = apply_effects(session, self.app, effects, site=batch.site, ctx=ctx, now=now,
                                source=Source(row.id, mail), batch=batch)
        batch.dedup[mail.dedup_key] = (applied.message, row.id, applied.ticket)
        if effects.open is not None and applied.ticket is not None:
            o = effects.open
            batch.opened(o.requester.email, Request(applied.ticket, o.subject, o.project,
                                                    o.status, "", now))
        if applied.ticket is not None and mail.message_id:
            batch.thread_index[mail.message_id] = applied.ticket
        if applied.ticket is not None and (root := mail_root(mail)):
            batch.thread_index.setdefault(root, applied.ticket)
        return Result(row.id, InboundState(effects.outcome), effects.reason, applied.ticket,
                      effects.rule, applied.queued)

    def _bounce(self, session, batch: Batch, row, mail: ParsedMail, now: dt.datetime) -> Result:
        """Tie a delivery report to the mail it answers (VERP); never a ticket."""
        # the machine-readable part may not surface as text or attachment: read the bytes
        status = bounce_status(row.head.decode("utf-8", "replace"), mail.text)
        verp = next((r.address for r in (classify_recipient(a, self.app.recipient_rules)
                                         for a in row.rcpt_tos)
                     if isinstance(r, Recipient) and r.kind is RecipientKind.BOUNCE), "")
        sent = outbox.by_verp(session=session, mail_from=verp) if verp else None
        shown = status or "no status"
        if sent is None:
            return Result(row.id, InboundState.BOUNCE, f"delivery report ({shown}) that "
                          "matches no mail we sent", None, Rule.BOUNCE)
        hard = status.startswith("5")
        effects = Effects(
            Outcome.BOUNCE, f"{'hard' if hard else 'soft'} bounce {status} for outbox "
            f"{sent.id} to {sent.rcpt}", Rule.BOUNCE, ticket=sent.ticket_id,
            bounce=Bounce(sent.id, status, hard, self.app.config.mail.bounce_suppress_days),
            events=(LogEvent("bounce", "system", f"{sent.rcpt}: {shown} "
                                                  f"({'hard' if hard else 'soft'})"),))
        ctx = batch.contexts.get(sent.ticket_id) if sent.ticket_id else None
        applied = apply_effects(session, self.app, effects, site=batch.site, ctx=ctx, now=now,
                                batch=batch)
        if hard and effects.bounce.suppress_days > 0:
            batch.suppressed[sent.rcpt] = now + dt.timedelta(days=effects.bounce.suppress_days)
        return Result(row.id, InboundState.BOUNCE, effects.reason, applied.ticket, Rule.BOUNCE)

    # --- sender verification ----------------------------------------------------------

    def verify_sender(self, raw: bytes, mail: ParsedMail) -> Verdict:
        """Is the From vouched for? Our MTA's Authentication-Results when one is trusted,
        else our own DKIM check when enabled, else not checked (allowed)."""
        cfg = self.app.config.mail
        domain = (mail.sender.address or "").rpartition("@")[2]
        if cfg.trusted_authserv_id:
            return sender_verified(mail.headers, authserv_id=cfg.trusted_authserv_id,
                                   from_domain=domain)
        if cfg.verify_dkim:
            return dkim_verified(raw, domain, dnsfunc=self.dnsfunc)
        return Verdict(True, "not checked (no trusted_authserv_id, verify_dkim off)",
                       checked=False)

    # --- endings ------------------------------------------------------------------------

    def _settle_failures(self, rejected: list[Result], failed: list) -> list[Result]:
        """Quarantine what cannot be parsed; retry (or park) what failed."""
        now = self.app.now()
        out: list[Result] = []
        quarantine = [{"row_id": r.inbound_id, "state": InboundState.QUARANTINED,
                       "reason": r.reason} for r in rejected]
        retry: list[tuple[int, str, float]] = []
        for row, reason in failed:
            if reason.startswith(RACED):
                retry.append((row.id, reason, 1))
                out.append(Result(row.id, "retry", reason))
            elif row.attempts >= self.max_attempts:
                why = f"processing failed {row.attempts} times; last error: {reason}"
                quarantine.append({"row_id": row.id, "state": InboundState.QUARANTINED,
                                   "reason": why})
                out.append(Result(row.id, InboundState.QUARANTINED, why))
            else:
                retry.append((row.id, reason, 30 * 2 ** row.attempts))
                out.append(Result(row.id, "retry", reason))
        try:
            with self.app.db.unit() as session:
                inbox.finish(session=session, rows=quarantine, now=now)
                for row_id, reason, backoff in retry:
                    inbox.release(session=session, ids=[row_id], reason=reason,
                                  next_attempt_at=now + dt.timedelta(seconds=backoff))
        except StoreUnavailable:
            pass  # the lease runs out and the rows are claimed again
        for q in quarantine:
            self.app.log.warning("mail quarantined", inbound=q["row_id"], reason=q["reason"])
        for row_id, reason, backoff in retry:
            self.app.log.warning("mail will be retried", inbound=row_id, reason=reason,
                                 after_seconds=backoff)
        return out

    def _release(self, ids: list[int], reason: str, seconds: float = 15) -> list[Result]:
        try:
            with self.app.db.unit() as session:
                inbox.release(session=session, ids=ids, reason=reason,
                              next_attempt_at=self.app.now() + dt.timedelta(seconds=seconds))
        except StoreUnavailable:
            pass  # the lease runs out and the rows are claimed again
        self.app.log.warning("mail will be retried", inbound=ids, reason=reason)
        return [Result(i, "retry", reason) for i in ids]
