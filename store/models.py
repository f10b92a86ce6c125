"""Tables. The same definitions run on SQLite and PostgreSQL.

Timestamps are stored in UTC and always come back timezone-aware. Raw mail is kept as
bytes exactly as received (`Inbound.raw`), and queries that list rows defer loading it.
This module defines data only: no queries, no commits.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, LargeBinary, UniqueConstraint
from sqlalchemy.types import DateTime, TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out, on both databases."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class InboundState(StrEnum):
    """pending -> processing -> one of the final states (or back to pending to retry)."""

    PENDING = "pending"
    PROCESSING = "processing"
    DONE = "done"
    UNASSIGNED = "unassigned"
    QUARANTINED = "quarantined"
    SPAM = "spam"
    DUPLICATE = "duplicate"
    DROPPED = "dropped"
    BOUNCE = "bounce"


class OutboxState(StrEnum):
    """pending -> sending -> sent | failed; sent -> bounced; dropped by a guard;
    pending, failed or dropped -> cancelled by an admin (never sent, never counted)."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    BOUNCED = "bounced"
    DROPPED = "dropped"
    CANCELLED = "cancelled"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _ts(**kw) -> Any:
    return Field(sa_type=UTCDateTime, **kw)


class SchemaVersion(SQLModel, table=True):
    __tablename__ = "schema_version"
    id: int = Field(default=1, primary_key=True)
    version: int


class Setting(SQLModel, table=True):
    __tablename__ = "setting"
    key: str = Field(primary_key=True, max_length=100)
    value: str


class Project(SQLModel, table=True):
    __tablename__ = "project"
    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(unique=True, max_length=40)
    name: str = Field(max_length=200)
    key: str = Field(unique=True, max_length=40)
    workflow: str = Field(default="support", max_length=40)
    created_at: dt.datetime = _ts(default_factory=utcnow)
    # the language of the mails its customers get (de | da | en), and what its mails
    # may name: the site's domain, the contact person, an invitation link, a signature
    language: str = Field(default="en", max_length=8)
    domain: str = Field(default="", max_length=253)
    contact_person: str = Field(default="", max_length=200)
    invitation_url: str = Field(default="", max_length=2000)
    signature: str = ""


class Contact(SQLModel, table=True):
    __tablename__ = "contact"
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True, max_length=254)
    name: str = Field(default="", max_length=200)
    created_at: dt.datetime = _ts(default_factory=utcnow)


class ContactProject(SQLModel, table=True):
    __tablename__ = "contact_project"
    contact_id: int = Field(foreign_key="contact.id", primary_key=True)
    project_id: int = Field(foreign_key="project.id", primary_key=True, index=True)


class Agent(SQLModel, table=True):
    __tablename__ = "agent"
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True, max_length=254)
    name: str = Field(max_length=200)
    role: str = Field(default="agent", max_length=20)     # agent | admin
    all_projects: bool = True
    active: bool = True
    created_at: dt.datetime = _ts(default_factory=utcnow)
    # events that mail this agent (schema v2), comma-separated; see mailgate.notify
    notify: str = Field(default="new_ticket,customer_reply,assigned,reminder,agent_replied",
                        max_length=200)


class AgentProject(SQLModel, table=True):
    __tablename__ = "agent_project"
    agent_id: int = Field(foreign_key="agent.id", primary_key=True)
    project_id: int = Field(foreign_key="project.id", primary_key=True, index=True)


class Ticket(SQLModel, table=True):
    """A ticket; its id is the number customers see as [#N]."""

    __tablename__ = "ticket"
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    subject: str = Field(max_length=500)
    status: str = Field(default="new", max_length=60, index=True)
    priority: int = 2
    requester_id: int | None = Field(default=None, foreign_key="contact.id", index=True)
    assignee_id: int | None = Field(default=None, foreign_key="agent.id")
    created_at: dt.datetime = _ts(default_factory=utcnow)
    updated_at: dt.datetime = _ts(default_factory=utcnow)
    closed_at: dt.datetime | None = _ts(default=None)
    deleted_at: dt.datetime | None = _ts(default=None)
    # schema v2: what mail commands change beyond status and priority
    substatus: str = Field(default="", max_length=60)
    group_name: str = Field(default="", max_length=60)
    ticket_type: str = Field(default="", max_length=60)
    due_date: dt.date | None = None
    urgent: bool = False
    status_changed_at: dt.datetime | None = _ts(default=None)
    # owner (keeps the overview; the assignee handles it) and the ticket's own offer
    owner_id: int | None = Field(default=None, foreign_key="agent.id")
    offer_state: str = Field(default="", max_length=20)     # "" | sent | accepted | declined
    offer_minutes: int = 0
    # `ticket merge N --into M`: N's mail, people and log moved to M, and mail that still
    # names N (its reply tokens, its [#N] tag) lands in M
    merged_into_id: int | None = Field(default=None)


class TicketContact(SQLModel, table=True):
    """People on the customer side of a ticket: the requester and anyone added to it."""

    __tablename__ = "ticket_contact"
    ticket_id: int = Field(foreign_key="ticket.id", primary_key=True)
    contact_id: int = Field(foreign_key="contact.id", primary_key=True, index=True)
    role: str = Field(default="cc", max_length=20)        # requester | cc


class Inbound(SQLModel, table=True):
    """A mail exactly as it arrived, committed before it is acknowledged."""

    __tablename__ = "inbound"
    __table_args__ = (Index("ix_inbound_state_next", "state", "next_attempt_at"),)
    id: int | None = Field(default=None, primary_key=True)
    received_at: dt.datetime = _ts(default_factory=utcnow)
    source: str = Field(default="smtp", max_length=200)
    peer: str = Field(default="", max_length=200)
    helo: str = Field(default="", max_length=255)
    mail_from: str = Field(default="", max_length=512)
    rcpt_tos: list[str] = Field(default_factory=list, sa_type=JSON)
    raw: bytes = Field(sa_type=LargeBinary)
    size: int = 0
    sha256: str = Field(default="", max_length=64)
    imap_key: str | None = Field(default=None, unique=True, max_length=600)
    # pending -> processing -> done | unassigned | quarantined | spam | duplicate | dropped
    state: str = Field(default="pending", max_length=20)
    reason: str = ""
    attempts: int = 0
    next_attempt_at: dt.datetime | None = _ts(default=None)
    lease_until: dt.datetime | None = _ts(default=None)
    processed_at: dt.datetime | None = _ts(default=None)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id")
    # which mailgate took it in ([server] instance, else host:pid): `mailgate trace`
    instance: str = Field(default="", max_length=200)


class InboundPiece(SQLModel, table=True):
    """The bytes of a large inbound mail, a piece per row (its `raw` is then empty):
    written and read a piece at a time, and never rewritten when its row changes state
    (SQLite rewrites a whole row, blob and all, on every update)."""

    __tablename__ = "inbound_piece"
    inbound_id: int = Field(foreign_key="inbound.id", primary_key=True)
    seq: int = Field(primary_key=True)
    data: bytes = Field(sa_type=LargeBinary)


class Message(SQLModel, table=True):
    """A parsed mail on a ticket (or waiting in the unassigned queue: ticket_id NULL)."""

    __tablename__ = "message"
    __table_args__ = (UniqueConstraint("dedup_key", name="uq_message_dedup"),)
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id", index=True)
    inbound_id: int | None = Field(default=None, foreign_key="inbound.id", index=True)
    direction: str = Field(default="in", max_length=10)    # in | out | internal
    author: str = Field(default="", max_length=20)          # customer | agent | stranger | system
    message_id: str = Field(default="", max_length=998, index=True)
    in_reply_to: str = ""
    references: str = ""
    from_addr: str = Field(default="", max_length=254, index=True)
    from_name: str = Field(default="", max_length=200)
    to_addrs: list[str] = Field(default_factory=list, sa_type=JSON)
    cc_addrs: list[str] = Field(default_factory=list, sa_type=JSON)
    subject: str = ""
    text: str = ""          # what the author newly wrote (quotes trimmed, commands removed)
    full_text: str = ""     # the whole text body as received
    html: str = ""
    decision: dict = Field(default_factory=dict, sa_type=JSON)
    defects: list[str] = Field(default_factory=list, sa_type=JSON)
    dedup_key: str | None = Field(default=None, max_length=200)
    created_at: dt.datetime = _ts(default_factory=utcnow)
    # ticked off by an agent as dealt with (`message done`); None: still to do
    done_at: dt.datetime | None = _ts(default=None)
    done_by: str = Field(default="", max_length=254)


class Attachment(SQLModel, table=True):
    __tablename__ = "attachment"
    id: int | None = Field(default=None, primary_key=True)
    message_row_id: int = Field(foreign_key="message.id", index=True)
    filename: str = Field(max_length=255)        # sanitized display name; never a path
    content_type: str = Field(max_length=255)
    size: int
    sha256: str = Field(max_length=64, index=True)
    content_id: str = Field(default="", max_length=255)
    data: bytes = Field(sa_type=LargeBinary)


class ThreadRef(SQLModel, table=True):
    """Message-IDs we stored or sent, so replies that cite them find their ticket."""

    __tablename__ = "thread_ref"
    id: int | None = Field(default=None, primary_key=True)
    msgid: str = Field(max_length=998, index=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    created_at: dt.datetime = _ts(default_factory=utcnow)


class Event(SQLModel, table=True):
    """The audit log of a ticket: who did what, when, and the status at that moment."""

    __tablename__ = "event"
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    at: dt.datetime = _ts(default_factory=utcnow)
    actor: str = Field(default="system", max_length=254)
    kind: str = Field(max_length=40)
    old: str = ""
    new: str = ""
    status: str = Field(default="", max_length=60)
    detail: str = ""
    # the incoming mail that caused it (none for timers and the CLI): `mailgate trace`
    inbound_id: int | None = Field(default=None)


class Outbox(SQLModel, table=True):
    """An outgoing mail, kept until the relay takes it (2xx) or refuses it for good (5xx)."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_state_next", "state", "next_attempt_at"),
                      Index("ix_outbox_message_id", "message_id"),
                      Index("ix_outbox_rcpt_created", "rcpt", "created_at"),
                      # the agent guard counts (agent, ticket, window): rcpt_created alone
                      # walks every notification an agent got in the window
                      Index("ix_outbox_rcpt_ticket", "rcpt", "ticket_id", "created_at"),
                      Index("ix_outbox_mail_from", "mail_from"))
    id: int | None = Field(default=None, primary_key=True)
    created_at: dt.datetime = _ts(default_factory=utcnow)
    kind: str = Field(max_length=40)                 # ack | reply | notify | transcript ...
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id", index=True)
    mail_from: str = Field(max_length=512)           # envelope sender (VERP)
    rcpt: str = Field(max_length=254)
    message_id: str = Field(max_length=998)
    subject: str = ""
    raw: bytes = Field(default=b"", sa_type=LargeBinary)  # empty until composed for sending
    automatic: bool = True
    state: str = Field(default="pending", max_length=20)   # an OutboxState
    attempts: int = 0
    next_attempt_at: dt.datetime = _ts(default_factory=utcnow)
    lease_until: dt.datetime | None = _ts(default=None)
    last_error: str = ""
    sent_at: dt.datetime | None = _ts(default=None)
    # schema v5: the mail as decided (rendered and composed only when it is sent)
    template: str = Field(default="", max_length=100)
    payload: dict | None = Field(default=None, sa_type=JSON)
    reason: str = ""                                 # why this mail (or why it was dropped)
    audience: str = Field(default="", max_length=20)  # customer | agent | other
    # the incoming mail that caused it (none for timers and the CLI); no foreign key:
    # retention may delete the incoming row of spam while the mail sent stays. Its
    # index is made by `store.trace.create_trace_index` (a step before it makes the
    # model's outbox indexes and ran before this column existed)
    inbound_id: int | None = Field(default=None)
    # what the relay answered the last attempt (its 250 line once sent): `mailgate trace`
    relay_reply: str = Field(default="", max_length=500)


class Suppression(SQLModel, table=True):
    """No automatic mail to this address until `until` (a hard bounce said it is dead)."""

    __tablename__ = "suppression"
    address: str = Field(primary_key=True, max_length=254)
    until: dt.datetime = _ts()
    reason: str = ""
    created_at: dt.datetime = _ts(default_factory=utcnow)


class QuotaEntry(SQLModel, table=True):
    """Hours added to (or, negative, corrected off) a project's support contingent. A
    project without any entry has no quota in use."""

    __tablename__ = "quota_entry"
    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    minutes: int
    note: str = ""
    actor: str = Field(default="admin", max_length=254)
    at: dt.datetime = _ts(default_factory=utcnow)


class TimeBooking(SQLModel, table=True):
    """Time an agent booked on a ticket, against its project's contingent or its offer."""

    __tablename__ = "time_booking"
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    minutes: int
    budget: str = Field(default="project", max_length=20)   # project | offer
    actor: str = Field(default="", max_length=254)
    at: dt.datetime = _ts(default_factory=utcnow)


class JobRun(SQLModel, table=True):
    """The last run of each timed job, whichever instance ran it (`mailgate jobs list`)."""

    __tablename__ = "job_runs"
    name: str = Field(primary_key=True, max_length=100)
    instance: str = Field(default="", max_length=200)
    started: dt.datetime = _ts()
    finished: dt.datetime | None = _ts(default=None)
    error: str = ""
    next_run: dt.datetime | None = _ts(default=None)
    detail: str = ""                 # what the run did, when it says (e.g. retention counts)


class ImportedExport(SQLModel, table=True):
    """An export read in by `mailgate import`, so the same one is not imported twice."""

    __tablename__ = "imported_export"
    export_id: str = Field(primary_key=True, max_length=64)
    imported_at: dt.datetime = _ts(default_factory=utcnow)
    source: str = ""
    tickets: str = ""                # "old->new" numbers, comma-separated


class ProjectRole(SQLModel, table=True):
    """Which agents play a workflow role (digital_coach, owner, ...) in a project: they
    are told when a ticket enters a status in which that role acts (`routing.roles`)."""

    __tablename__ = "project_role"
    project_id: int = Field(foreign_key="project.id", primary_key=True)
    role: str = Field(primary_key=True, max_length=60)
    agent_id: int = Field(foreign_key="agent.id", primary_key=True, index=True)


class TicketLink(SQLModel, table=True):
    """A link between two tickets, stored from each side (`ticket show` of both shows
    it): a follow-up to a closed ticket opened as a new ticket (kind `follows` on the
    new one, `followed-by` on the old one)."""

    __tablename__ = "ticket_link"
    ticket_id: int = Field(foreign_key="ticket.id", primary_key=True)
    other_id: int = Field(foreign_key="ticket.id", primary_key=True, index=True)
    kind: str = Field(primary_key=True, max_length=20)
    created_at: dt.datetime = _ts(default_factory=utcnow)


class ThreadRoot(SQLModel, table=True):
    """The ticket each conversation opened: its root Message-ID (the oldest one a mail
    cites, else its own) is unique, so two instances that each take a mail of one new
    thread at the same moment cannot both open a ticket for it; the one that loses the
    race finds the winner's ticket when it decides again."""

    __tablename__ = "thread_root"
    root: str = Field(primary_key=True, max_length=998)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    created_at: dt.datetime = _ts(default_factory=utcnow)
