"""The mail pipeline: a committed inbound row becomes a ticket message, an unassigned
mail, or a quarantined one. Nothing here answers a sender; the outbox does that.

One mail is one unit of work: the message, the ticket change, the events and every
mail queued about it commit together. Failure is a state: bytes that are no mail are
quarantined with the reason; an unexpected error is retried with backoff and after
`max_attempts` the mail is parked in quarantine, its raw bytes untouched.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import defer
from sqlmodel import Session, select

from mailgate import changes, faults, services
from mailgate.bootstrap import App
from mailgate.dkimcheck import dkim_verified
from mailgate.outgoing import LOOP_HEADER, Person
from mailgate.parse_pool import ParseCrashed
from mailgate.parsing import ParsedMail, ParseRejected
from routing.addresses import Recipient, RecipientKind, classify_recipient
from routing.autoreply import bounce_status, classify_automatic, is_bounce
from routing.commands import find_commands, plan, refuse_all
from routing.replytext import split_reply
from routing.rules import Directory, MailFacts, RouteDecision, Target, lookups_for, route
from routing.trust import Verdict, sender_verified
from routing.workflow import after_customer_reply
from store import queries
from store.db import StoreUnavailable
from store.models import Inbound, Project, Ticket


@dataclass(frozen=True)
class Outcome:
    inbound_id: int
    state: str                 # done | unassigned | quarantined | duplicate | retry
    reason: str = ""
    ticket: int | None = None
    rule: str = ""
    queued: int = 0


def mail_facts(mail: ParsedMail, rcpt_tos: list[str], app: App) -> MailFacts:
    recipients: list[Recipient] = []
    for address in rcpt_tos:
        r = classify_recipient(address, app.recipient_rules)
        if isinstance(r, Recipient):
            recipients.append(r)
    return MailFacts(sender=mail.sender.address, sender_problem=mail.sender.problem,
                     recipients=tuple(recipients), subject=mail.subject,
                     thread_ids=mail.thread_ids)


def gather(session: Session, app: App, facts: MailFacts) -> Directory:
    """Look up everything the routing rules may ask about, for this mail only."""
    need = lookups_for(facts)
    index = queries.thread_index(session=session, msgids=need.thread_ids)
    numbers = set(need.ticket_numbers) | set(index.values())
    sender = facts.sender or ""
    return Directory(
        tickets=queries.ticket_views(session=session, numbers=numbers),
        thread_index=index,
        projects_by_key=queries.projects_by_key(session=session, keys=need.project_keys),
        sender_projects=queries.contact_project_slugs(session=session, email=sender)
        if sender else (),
        sender_tickets=queries.tickets_of_sender(session=session, email=sender)
        if sender else (),
        token_keys=app.token_keys,
        token_max_age_days=app.config.mail.token_max_age_days,
    )


class Pipeline:
    def __init__(self, app: App, parser) -> None:
        self.app = app
        self.parser = parser
        self.max_attempts = app.config.processing.max_attempts
        self.dnsfunc = None   # DKIM key lookups: dkimpy's DNS unless a test passes its own
        # a mail claimed by a process that died is taken again after this long
        self.lease = dt.timedelta(seconds=app.config.processing.lease_seconds)

    # --- claiming -----------------------------------------------------------------------

    def claim(self, limit: int = 20) -> list[int]:
        with self.app.db.unit() as session:
            return queries.claim_inbound(session=session, now=self.app.now(), lease=self.lease,
                                         limit=limit)

    def run_pending(self, limit: int = 1000) -> list[Outcome]:
        """Process everything due now, in this thread (CLI and tests)."""
        outcomes: list[Outcome] = []
        while len(outcomes) < limit:
            ids = self.claim()
            if not ids:
                break
            outcomes.extend(self.process(i) for i in ids)
        return outcomes

    # --- one mail -----------------------------------------------------------------------

    def process(self, inbound_id: int) -> Outcome:
        log = self.app.log.bind(inbound=inbound_id)
        try:
            with self.app.db.unit(write=False) as session:
                row = session.get(Inbound, inbound_id)
                raw, attempts = row.raw, row.attempts
        except StoreUnavailable as exc:
            return self._outcome_retry(inbound_id, f"store unavailable: {exc}", log)
        try:
            faults.hit("pipeline.before_parse")
            mail = self.parser.parse(raw)
        except ParseRejected as exc:
            return self._quarantine(inbound_id, f"cannot parse: {exc}", log)
        except ParseCrashed as exc:
            return self._failed(inbound_id, attempts, f"parser failed: {exc}", log)
        verdict = self.verify_sender(raw, mail)       # DNS, if any, outside the unit of work
        try:
            with self.app.db.unit() as session:
                outcome = self._apply(session, inbound_id, mail, verdict)
                faults.hit("pipeline.before_commit")
        except StoreUnavailable as exc:
            return self._outcome_retry(inbound_id, f"store unavailable: {exc}", log)
        except Exception as exc:
            log.exception("processing failed", attempt=attempts)
            return self._failed(inbound_id, attempts, f"{type(exc).__name__}: {exc}", log)
        log.info("mail processed", state=outcome.state, rule=outcome.rule,
                 ticket=outcome.ticket, reason=outcome.reason, queued=outcome.queued,
                 message_id=mail.message_id, sender=mail.sender.address)
        return outcome

    def _apply(self, session: Session, inbound_id: int, mail: ParsedMail,
               verdict: Verdict) -> Outcome:
        now = self.app.now()
        inbound = session.exec(select(Inbound).options(defer(Inbound.raw))
                               .where(Inbound.id == inbound_id)).one()
        if inbound.state != "processing":
            return Outcome(inbound_id, inbound.state, "already handled")
        dup = queries.message_by_dedup(session=session, key=mail.dedup_key)
        if dup is not None:
            return self._finish(inbound, now, "duplicate", f"same mail as message "
                                f"{dup.id} (inbound {dup.inbound_id})", dup.ticket_id)
        loop = self._own_mail(session, mail)
        if loop:
            return self._finish(inbound, now, "dropped", loop, None, rule="loop")
        if is_bounce(mail.content_type, mail.headers, mail.sender.address, mail.subject):
            return self._bounce(session, inbound, mail, now)
        facts = mail_facts(mail, inbound.rcpt_tos, self.app)
        decision = route(facts, gather(session, self.app, facts), now)
        envelope = None if inbound.source.startswith("imap") else inbound.mail_from
        auto = classify_automatic(mail.headers, envelope_sender=envelope,
                                  sender=mail.sender.address, subject=mail.subject)
        record = decision.as_dict() | {"auto": auto.as_dict()}
        if decision.target is Target.UNASSIGNED:
            services.store_message(session, mail=mail, inbound=inbound, ticket_id=None,
                                   direction="in", author="stranger", text=mail.text,
                                   decision=record, now=now)
            return self._finish(inbound, now, "unassigned", decision.reason, None,
                                rule=decision.rule)
        if decision.target is Target.NEW_TICKET:
            queued = self._new_ticket(session, inbound, mail, decision, record, now)
        else:
            queued = self._to_ticket(session, inbound, mail, decision, record, now, verdict)
        return self._finish(inbound, now, "done", decision.reason, inbound.ticket_id,
                            rule=decision.rule, queued=queued)

    def _new_ticket(self, session: Session, inbound: Inbound, mail: ParsedMail,
                    decision: RouteDecision, record: dict, now: dt.datetime) -> int:
        app = self.app
        project = queries.project_by_slug(session=session, slug=decision.project)
        sender = mail.sender.address
        contact = queries.ensure_contact(session=session, email=sender, name=mail.sender.name)
        if decision.rule == "project-address":
            queries.link_contact_project(session=session, contact=contact, project=project)
        t = services.open_ticket(session, app, project=project, requester=contact,
                                 subject=mail.subject, actor=sender, now=now)
        services.store_message(session, mail=mail, inbound=inbound, ticket_id=t.id,
                               direction="in", author="customer", text=split_reply(mail.text).body
                               or mail.text, decision=record, now=now)
        inbound.ticket_id = t.id
        customer = Person(contact.email, contact.name)
        queued = 0
        if not (record["auto"]["automatic"] or record["auto"]["suppress_reply"]):
            services.acknowledge(session, app, t=t, project=project, to=customer, mail=mail,
                                 now=now)
            queued += 1
        queued += services.notify_agents(session, app, t=t, project=project,
                                         template="notify_new_ticket", customer=customer,
                                         text=mail.text, now=now, events=("new_ticket",))
        return queued

    def _to_ticket(self, session: Session, inbound: Inbound, mail: ParsedMail,
                   decision: RouteDecision, record: dict, now: dt.datetime,
                   verdict: Verdict) -> int:
        app = self.app
        t = session.get(Ticket, decision.ticket)
        project = session.get(Project, t.project_id)
        sender = mail.sender.address
        author = services.identify(session, email=sender, name=mail.sender.name,
                                   project_id=t.project_id)
        parts = split_reply(mail.text)
        found = find_commands(parts.body)
        inbound.ticket_id = t.id
        services.touch(t, now)
        state = changes.ticket_state(session, t, project)
        actor = changes.actor_for(session, sender, t, state)
        queued, plan_ = 0, None
        body = found.text if found.commands else parts.body
        record["verified"] = {"ok": verdict.ok, "reason": verdict.reason}
        if found.commands and not record["auto"]["automatic"]:
            plan_ = self._plan(session, decision, found, state, actor, project) if verdict.ok \
                else refuse_all(found.commands, state, f"your mail could not be verified: "
                                                       f"{verdict.reason}")
            record["commands"] = [{"line": o.command.line, "ok": o.ok, "result": o.message}
                                  for o in plan_.outcomes]
            forwarded = (actor.may_work_on(project.slug) and bool(body.strip())
                         and not plan_.note and decision.purpose != "note")
            queued += changes.apply_plan(session, app, t=t, project=project, plan_=plan_,
                                         actor=sender, now=now, tell_customers=not forwarded)
            queued += changes.send_transcript(session, app, t=t, project=project,
                                              to=Person(sender, mail.sender.name),
                                              plan_=plan_, now=now,
                                              in_reply_to=mail.message_id)
        if actor.may_work_on(project.slug):
            text = "\n\n".join(p for p in (body, parts.signature) if p.strip())
            if not verdict.ok and plan_ is None:
                # a From we cannot vouch for never speaks to the customer: keep it inside
                queued += services.mail_customer(
                    session, app, t=t, project=project, to=Person(sender, mail.sender.name),
                    template="transcript", now=now, kind="transcript",
                    transcript=f"Your mail could not be verified ({verdict.reason}). It was "
                               "kept as an internal note and not sent to the customer.\n",
                    in_reply_to=mail.message_id)
            if (decision.purpose == "note" or (plan_ is not None and plan_.note)
                    or not verdict.ok):
                services.store_message(session, mail=mail, inbound=inbound, ticket_id=t.id,
                                       direction="internal", author="agent", text=text,
                                       decision=record, now=now)
                services.record_event(session, t, kind="note", actor=sender, now=now)
                return queued
            services.store_message(session, mail=mail, inbound=inbound, ticket_id=t.id,
                                   direction="out", author="agent", text=text,
                                   decision=record, now=now)
            services.record_event(session, t, kind="reply", actor=sender, now=now)
            if body.strip() or mail.attachments:
                queued += services.forward_agent_reply(
                    session, app, t=t, project=project,
                    agent=Person(author.email, author.name), text=text, now=now,
                    attachments=mail.attachments)
            return queued
        services.store_message(session, mail=mail, inbound=inbound, ticket_id=t.id,
                               direction="in", author="customer", text=body or mail.text,
                               decision=record, now=now)
        services.record_event(session, t, kind="message", actor=sender, now=now)
        moved = plan_ is not None and plan_.applied and plan_.after.status != state.status
        effect = after_customer_reply(changes.workflow_of(app, project), t.status)
        if effect and not moved and not record["auto"]["automatic"]:
            queued += changes.set_status(session, app, t=t, project=project, status=effect[0],
                                         substatus=effect[1] or None, actor=sender, now=now)
        events = ("customer_reply", "file_uploaded") if mail.attachments else (
            "customer_reply",)
        return queued + services.notify_agents(
            session, app, t=t, project=project, template="notify_customer_reply",
            customer=Person(author.email, author.name), text=body or mail.text, now=now,
            events=events, exclude=frozenset({sender}))

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
        return Verdict(True, "not checked (no trusted_authserv_id, verify_dkim off)")

    def _plan(self, session: Session, decision: RouteDecision, found, state, actor,
              project: Project):
        if decision.rule != "reply-token":
            return refuse_all(found.commands, state, "commands are only read in replies to "
                              "the ticket's own reply address (the Reply-To of our mails)")
        return plan(found.commands, state, actor, changes.workflow_of(self.app, project),
                    changes.world_for(session, self.app))

    # --- loops and bounces ----------------------------------------------------------------

    def _own_mail(self, session: Session, mail: ParsedMail) -> str:
        """Why this is our own mail coming back ("" if it is not)."""
        marker = self.app.composer.loop_marker
        if any(k.lower() == LOOP_HEADER.lower() and v.strip() == marker
               for k, v in mail.headers):
            return "our own mail came back (loop header)"
        if mail.message_id and queries.sent_message_id(session=session, msgid=mail.message_id):
            return f"our own mail came back (Message-ID {mail.message_id})"
        if mail.sender.address == self.app.config.mail.support_address:
            return "mail from the support address itself"
        channels = {box.address.lower() for box in self.app.config.imap if box.address}
        if mail.sender.address and mail.sender.address in channels:
            return f"mail from {mail.sender.address}, an address mailgate reads as a channel"
        return ""

    def _bounce(self, session: Session, inbound: Inbound, mail: ParsedMail,
                now: dt.datetime) -> Outcome:
        """Tie a delivery report to the mail it answers (VERP); never a ticket."""
        # the machine-readable part may not surface as text or attachment: read the bytes
        status = bounce_status(inbound.raw[:300_000].decode("utf-8", "replace"), mail.text)
        verp = next((r.address for r in (classify_recipient(a, self.app.recipient_rules)
                                         for a in inbound.rcpt_tos)
                     if isinstance(r, Recipient) and r.kind is RecipientKind.BOUNCE), "")
        row = queries.outbox_by_verp(session=session, mail_from=verp) if verp else None
        if row is None:
            shown = status or "no status"
            return self._finish(inbound, now, "bounce", f"delivery report ({shown}) that "
                                "matches no mail we sent", None, rule="bounce")
        hard = status.startswith("5")
        row.last_error = f"bounced: {status or 'no status'}"[:2000]
        if row.state == "sent":
            row.state = "bounced"
        if hard and self.app.config.mail.bounce_suppress_days > 0:
            until = now + dt.timedelta(days=self.app.config.mail.bounce_suppress_days)
            queries.suppress(session=session, address=row.rcpt, until=until,
                             reason=f"hard bounce {status} of outbox {row.id}")
        if row.ticket_id is not None:
            t = session.get(Ticket, row.ticket_id)
            if t is not None:
                services.record_event(session, t, kind="bounce", actor="system", now=now,
                                      detail=f"{row.rcpt}: {status or 'no status'} "
                                             f"({'hard' if hard else 'soft'})")
        return self._finish(inbound, now, "bounce",
                            f"{'hard' if hard else 'soft'} bounce {status} for outbox "
                            f"{row.id} to {row.rcpt}", row.ticket_id, rule="bounce")

    # --- endings ------------------------------------------------------------------------

    @staticmethod
    def _finish(inbound: Inbound, now: dt.datetime, state: str, reason: str,
                ticket: int | None, rule: str = "", queued: int = 0) -> Outcome:
        inbound.state = state
        inbound.reason = reason[:2000]
        inbound.processed_at = now
        inbound.lease_until = None
        return Outcome(inbound.id, state, reason, ticket, rule, queued)

    def _quarantine(self, inbound_id: int, reason: str, log) -> Outcome:
        with self.app.db.unit() as session:
            row = session.exec(select(Inbound).options(defer(Inbound.raw))
                               .where(Inbound.id == inbound_id)).one()
            self._finish(row, self.app.now(), "quarantined", reason, None)
        log.warning("mail quarantined", reason=reason)
        return Outcome(inbound_id, "quarantined", reason)

    def _failed(self, inbound_id: int, attempts: int, reason: str, log) -> Outcome:
        if attempts >= self.max_attempts:
            return self._quarantine(inbound_id, f"processing failed {attempts} times; last "
                                                f"error: {reason}", log)
        return self._outcome_retry(inbound_id, reason, log, backoff=30 * 2 ** attempts)

    def _outcome_retry(self, inbound_id: int, reason: str, log, backoff: float = 15) -> Outcome:
        try:
            with self.app.db.unit() as session:
                row = session.exec(select(Inbound).options(defer(Inbound.raw))
                                   .where(Inbound.id == inbound_id)).one()
                row.state = "pending"
                row.reason = reason[:2000]
                row.lease_until = None
                row.next_attempt_at = self.app.now() + dt.timedelta(seconds=backoff)
        except StoreUnavailable:
            pass  # the lease runs out and the row is claimed again
        log.warning("mail will be retried", reason=reason, after_seconds=backoff)
        return Outcome(inbound_id, "retry", reason)
