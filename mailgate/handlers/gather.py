"""Gather: the facts a batch of mail is decided on, with a fixed, small set of queries.

`gather(session, app, mails)` asks once per kind for the whole batch (threads, tickets,
their people and references, projects, senders, duplicates, our own Message-IDs, loop
counts) and returns a `Batch`. While the batch is applied mail by mail, `Batch` is kept
current (a ticket opened by the first mail is known to the second), so a reply that
arrives in the same batch as its ticket's first mail still threads.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlmodel import Session

from mailgate.bootstrap import App
from mailgate.handlers.directory import SITE_VERSION, notified_about
from mailgate.mail.parsing import ParsedMail
from routing.actors import AgentInfo, Person, Staff
from routing.addresses import Recipient, classify_recipient
from routing.context import Policy, ProjectInfo, Site, TicketContext, TicketState
from routing.guards import Counts, GuardFacts
from routing.overview import Request, asks_overview
from routing.quota import Budget
from routing.rules import Directory, MailFacts, TicketView, lookups_for
from routing.threads import thread_root, with_own_id
from store import (
    inbox,
    merge,
    outbox,
    people,
    quota,
    requests,
    roles,
    settings,
    threads,
    tickets,
)
from store.models import Project


def load_site(session: Session, app: App) -> Site:
    """Staff, projects (with the roles their agents play) and workflows: three queries
    and one for the roles."""
    staff = Staff({a.email: AgentInfo(a.email, a.name, a.role == "admin",
                                      None if (a.all_projects or a.role == "admin") else slugs,
                                      frozenset(notified_about(a)))
                   for a, slugs in people.active_agents_with_projects(session=session)})
    role_maps = roles.role_maps(session=session)
    projects = {p.slug: project_info(p, role_maps.get(p.slug))
                for p in people.projects(session=session)}
    return Site(staff, projects, app.workflows, policy_of(app))


def project_info(p: Project | tickets.ProjectRow,
                 role_map: dict[str, tuple[str, ...]] | None = None) -> ProjectInfo:
    return ProjectInfo(p.slug, p.name, p.key, p.workflow, language=p.language,
                       domain=p.domain, contact_person=p.contact_person,
                       invitation_url=p.invitation_url, signature=p.signature,
                       roles=tuple(sorted((role_map or {}).items())))


class SiteCache:
    """The site as last loaded, reloaded only when its version moved (a project or an
    agent changed): one small query per batch instead of three."""

    def __init__(self) -> None:
        self._version: str | None = None
        self._site: Site | None = None
        self._ids: dict[str, int] = {}

    def get(self, session: Session, app: App) -> tuple[Site, dict[str, int]]:
        version = settings.get_setting(session=session, key=SITE_VERSION) or "0"
        if self._site is None or version != self._version:
            self._site = load_site(session, app)
            self._ids = people.project_ids(session=session)
            self._version = version
        return self._site, self._ids


def policy_of(app: App) -> Policy:
    mail = app.config.mail
    return Policy(support_address=mail.support_address, support_name=mail.support_name,
                  signature=mail.signature, auto_reply_limit=mail.auto_reply_limit,
                  auto_reply_window_minutes=mail.auto_reply_window_minutes,
                  agent_ticket_limit=mail.agent_ticket_limit,
                  agent_ticket_window_minutes=mail.agent_ticket_window_minutes,
                  max_forward_bytes=app.config.smtp.max_message_bytes,
                  groups=app.config.group_owners(), group_keys=app.config.group_keys(),
                  agent_trust=app.config.trust.agents, participants=mail.participants,
                  replies=dict.fromkeys(app.templates.names("replies"), ""))


def mail_facts(mail: ParsedMail, rcpt_tos: Sequence[str], app: App) -> MailFacts:
    recipients = tuple(r for r in (classify_recipient(a, app.recipient_rules) for a in rcpt_tos)
                       if isinstance(r, Recipient))
    return MailFacts(sender=mail.sender.address, sender_problem=mail.sender.problem,
                     recipients=recipients, subject=mail.subject,
                     thread_ids=with_own_id(mail.thread_ids, mail.message_id))


def mail_root(mail: ParsedMail) -> str:
    """The root Message-ID of the mail's thread (`routing.threads`)."""
    return thread_root(mail.message_id, mail.in_reply_to, mail.references)


@dataclass
class Batch:
    """What is known while a batch is decided; updated as each mail is applied."""

    site: Site
    own_addresses: frozenset[str]
    thread_index: dict[str, int] = field(default_factory=dict)
    projects_by_key: dict[str, str] = field(default_factory=dict)
    sender_projects: dict[str, tuple[str, ...]] = field(default_factory=dict)
    contexts: dict[int, TicketContext] = field(default_factory=dict)
    dedup: dict[str, tuple] = field(default_factory=dict)
    sent_ids: frozenset[str] = frozenset()
    suppressed: dict[str, dt.datetime] = field(default_factory=dict)
    counts: Counts = field(default_factory=Counts)
    project_ids: dict[str, int] = field(default_factory=dict)
    # a merged ticket -> the ticket its mail lands in (`ticket merge`)
    merged: dict[int, int] = field(default_factory=dict)
    # senders' own requests (routing.overview): for a /list mail, and for the
    # acknowledgement of a new ticket when [mail] ack_lists_open
    requests: dict[str, tuple[Request, ...]] = field(default_factory=dict)
    ack_lists_open: bool = False
    # senders who were contacts when the batch began -> (contact id, name): a ticket
    # they open needs no lookup (`apply._contact`)
    contacts: dict[str, tuple[int, str]] = field(default_factory=dict)

    def directory(self, app: App, facts: MailFacts, sender_tickets: tuple[int, ...] = ()
                  ) -> Directory:
        need = lookups_for(facts)
        numbers = set(need.ticket_numbers) | {self.thread_index[m] for m in need.thread_ids
                                              if m in self.thread_index}
        return Directory(
            tickets={n: self.view(n) for n in numbers
                     if self.merged.get(n, n) in self.contexts},
            thread_index={m: self.thread_index[m] for m in need.thread_ids
                          if m in self.thread_index},
            projects_by_key={k: self.projects_by_key[k] for k in need.project_keys
                             if k in self.projects_by_key},
            sender_projects=self.sender_projects.get(facts.sender or "", ()),
            sender_tickets=sender_tickets, token_keys=app.token_keys,
            token_max_age_days=app.config.mail.token_max_age_days,
            group_keys=self.site.policy.group_keys)

    def view(self, number: int) -> TicketView:
        """The ticket `number` names: for a merged one, the ticket it was merged into."""
        ctx = self.contexts[self.merged.get(number, number)]
        people_on = {c.email for c in ctx.customers}
        people_on.update(a.email for a in self.site.staff.of_project(ctx.state.project))
        if ctx.state.assignee:
            people_on.add(ctx.state.assignee)
        return TicketView(ctx.number, ctx.state.project, ctx.deleted, frozenset(people_on))

    def requests_of(self, sender: str | None, text: str) -> tuple[Request, ...]:
        """What `decide` may show `sender`: their requests for a /list, or for the
        acknowledgement when the batch lists open ones there."""
        if not sender or not (self.ack_lists_open or asks_overview(text)):
            return ()
        return self.requests.get(sender, ())

    def opened(self, email: str, request: Request) -> None:
        """A ticket this batch opened joins its requester's requests (a later /list or
        acknowledgement in the same batch shows it)."""
        if email in self.requests:
            self.requests[email] = (request, *self.requests[email])

    def guard_facts(self) -> GuardFacts:
        return GuardFacts(self.site.policy, self.own_addresses, self.suppressed, self.counts)


def gather(session: Session, app: App, mails: Sequence[tuple[ParsedMail, MailFacts]],
           now: dt.datetime, cache: SiteCache | None = None) -> Batch:
    site, ids = (cache or SiteCache()).get(session, app)
    batch = Batch(site, own_addresses(app), project_ids=ids)
    thread_ids, numbers, keys, senders = set(), set(), set(), set()
    for _mail, facts in mails:
        need = lookups_for(facts)
        thread_ids.update(need.thread_ids)
        numbers.update(need.ticket_numbers)
        keys.update(need.project_keys)
        if facts.sender:
            senders.add(facts.sender)
    # several instances: copies of one mail and mails of one new thread take turns here
    roots = {mail_root(m) for m, _ in mails} - {""}
    threads.lock_keys(session=session, keys=[f"dedup:{m.dedup_key}" for m, _ in mails]
                      + [f"root:{r}" for r in roots] + [f"contact:{s}" for s in senders])
    batch.thread_index = tickets.thread_index(session=session, msgids=thread_ids)
    for root, number in threads.roots(session=session, roots=roots).items():
        batch.thread_index.setdefault(root, number)
    numbers.update(batch.thread_index.values())
    batch.merged = merge.merged_targets(session=session, numbers=numbers)
    numbers = (numbers - batch.merged.keys()) | set(batch.merged.values())
    threads.lock_tickets(session=session, numbers=numbers)
    batch.contexts = ticket_contexts(session, site, numbers)
    batch.projects_by_key = people.projects_by_key(session=session, keys=keys)
    # the people a mail copies in join its ticket: known ones need no lookup of their own
    copied = {a for m, _ in mails for a in (*m.to, *m.cc)}
    known = people.known_contacts(session=session, emails=senders | copied)
    batch.sender_projects = {e: s for e, (_, _, s) in known.items() if s}
    batch.contacts = {e: (i, n) for e, (i, n, _) in known.items()}
    batch.dedup = inbox.existing_dedup(session=session, keys=[m.dedup_key for m, _ in mails])
    batch.sent_ids = outbox.sent_message_ids(session=session,
                                             msgids=[m.message_id for m, _ in mails])
    load_requests(session, app, batch, mails, now, known.keys())
    load_guards(session, batch, senders, now)
    return batch


def load_requests(session: Session, app: App, batch: Batch,
                  mails: Sequence[tuple[ParsedMail, MailFacts]], now: dt.datetime,
                  known: Iterable[str]) -> None:
    """The own requests of each sender who asks for them (/list) or whose mail may open a
    ticket (no reply token, no thread we know): one query for the batch, and none for
    senders who are no contact yet (they are on no ticket, so they have none)."""
    cfg = app.config.mail
    batch.ack_lists_open = cfg.ack_lists_open
    wanted = {f.sender for m, f in mails if f.sender and (asks_overview(m.text) or (
        cfg.ack_lists_open and not lookups_for(f).ticket_numbers
        and not any(i in batch.thread_index for i in f.thread_ids)))}
    found = requests.requests_of(session=session, emails=wanted & set(known),
                                 closed_since=now - dt.timedelta(days=cfg.overview_closed_days))
    # every wanted sender keeps an entry: a ticket this batch opens for them joins it
    batch.requests = {e: tuple(Request(*row) for row in found.get(e, ())) for e in wanted}


def for_tickets(session: Session, app: App, numbers, now: dt.datetime) -> Batch:
    """A batch for work on known tickets (timers, the command line)."""
    site = load_site(session, app)
    batch = Batch(site, own_addresses(app), project_ids=people.project_ids(session=session))
    batch.contexts = ticket_contexts(session, site, numbers)
    load_guards(session, batch, set(), now)
    return batch


def load_guards(session: Session, batch: Batch, senders: set[str], now: dt.datetime) -> None:
    """Suppressions and loop counts for everyone the batch may write to."""
    site, policy = batch.site, batch.site.policy
    external = senders | {c.email for ctx in batch.contexts.values() for c in ctx.customers}
    batch.suppressed = outbox.suppressed(session=session, addresses=external, now=now)
    # the cap check of these addresses takes turns across instances (PostgreSQL): one
    # statement locks them all, in the hash order every batch uses (no deadlock)
    threads.lock_keys(session=session, keys=external)
    # the recipient cap never applies to agents (see routing.guards): their thousands
    # of notifications a day need not be counted, only those per ticket below
    recent, day = outbox.automatic_counts(
        session=session, addresses=external - site.staff.agents.keys(),
        recent_since=now - dt.timedelta(minutes=policy.auto_reply_window_minutes),
        day_since=now - dt.timedelta(days=1))
    agent = outbox.agent_ticket_counts(
        session=session, agents=site.staff.agents, tickets=batch.contexts,
        since=now - dt.timedelta(minutes=policy.agent_ticket_window_minutes))
    batch.counts = Counts(recent, day, agent)


def own_addresses(app: App) -> frozenset[str]:
    return frozenset({app.config.mail.support_address}
                     | {box.address.lower() for box in app.config.imap if box.address})


def ticket_contexts(session: Session, site: Site, numbers) -> dict[int, TicketContext]:
    rows = tickets.tickets_with_project(session=session, numbers=numbers)
    found = [t.id for t, _ in rows]
    on = tickets.people_of(session=session, numbers=found)
    heads = tickets.thread_heads(session=session, numbers=found)
    last_in = tickets.last_inbound_ids(session=session, numbers=found)
    agents = {i for t, _ in rows for i in (t.assignee_id, t.owner_id) if i}
    emails = people.agent_emails(session=session, ids=agents)
    budgets = {p: Budget(*b) for p, b in quota.project_budgets(
        session=session, project_ids={p.id for _, p in rows}).items()}
    booked = quota.ticket_bookings(session=session, numbers=found)
    return {t.id: context_of(t, p, site, on[t.id], heads[t.id], last_in.get(t.id, ""),
                             emails, budgets.get(p.id), booked.get(t.id, (0, 0)))
            for t, p in rows}


def context_of(t: tickets.TicketRow, p: tickets.ProjectRow, site: Site,
               people_on: list[tuple[str, str, str]], thread: list[str], last_inbound: str,
               emails: dict[int, str],
               budget: Budget | None, booked: tuple[int, int]) -> TicketContext:
    """One ticket's context; `emails` are the agents' by id, `budget` its project's
    contingent and `booked` its (minutes in all, minutes against its offer): the facts of
    the quota rule (see `routing.quota`)."""
    state = TicketState(
        number=t.id, project=p.slug, status=t.status, substatus=t.substatus,
        priority=t.priority, assignee=emails.get(t.assignee_id, "") if t.assignee_id else "",
        owner=emails.get(t.owner_id, "") if t.owner_id else "", group=t.group_name,
        type=t.ticket_type, due=t.due_date, urgent=t.urgent,
        cc=frozenset(e for e, _, role in people_on if role == "cc"),
        requester=next((e for e, _, role in people_on if role == "requester"), ""),
        offer_state=t.offer_state, offer_minutes=t.offer_minutes, booked=booked[0],
        offer_used=booked[1], quota=budget)
    return TicketContext(state, t.subject, project_info(p),
                         site.workflow_of(p.slug), tuple(Person(e, n) for e, n, _ in people_on),
                         tuple(thread), last_inbound, t.deleted_at is not None, t.updated_at,
                         closed_at=t.closed_at)
