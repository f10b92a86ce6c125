"""What will happen, as one frozen value: the contract between deciding and applying.

`Effects` lists everything a mail (or a timer, or a command from the command line)
causes: where the mail ends up and why, the message to store, the ticket to open or the
fields to change (each with the rule that caused it), every mail to send (kind,
recipient, template, reason) and every mail a guard stopped, and the log entries. The
handler applies it in one transaction; nothing in it has been rendered or composed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from routing.actors import Person
from routing.context import TicketState


class Outcome(StrEnum):
    """Where an incoming mail ends up (the inbound row's final state)."""

    DONE = "done"                 # stored on a ticket (new or existing)
    UNASSIGNED = "unassigned"     # waiting for an admin
    DUPLICATE = "duplicate"       # the same mail was stored before
    DROPPED = "dropped"           # our own mail or a loop: kept, never processed
    BOUNCE = "bounce"             # a delivery report for a mail we sent


class MailKind(StrEnum):
    ACK = "ack"                   # a new ticket's acknowledgement
    REPLY = "reply"               # an agent's reply forwarded to a customer
    NOTIFY = "notify"             # a notification to an agent
    TRANSCRIPT = "transcript"     # what a sender's commands did (or why not)
    STATUS = "status"             # a customer told of a status change
    STATUS_NOTIFY = "status_notify"   # a group or address a status names
    REMINDER = "reminder"
    NOTICE = "notice"             # a sender told that their mail changed nothing (follow-up)
    OVERVIEW = "overview"         # a customer's /list answered: their own requests


class Audience(StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"
    OTHER = "other"               # a group address a workflow status names


class Direction(StrEnum):
    IN = "in"
    OUT = "out"
    INTERNAL = "internal"


@dataclass(frozen=True)
class MailIntent:
    """A mail to send, before anything is rendered: who, what template, and why."""

    kind: MailKind
    to: Person
    template: str
    reason: str
    audience: Audience
    auto: str | None = "auto-generated"     # RFC 3834 Auto-Submitted value; None = human
    from_name: str = ""                     # shown before the support address
    text: str = ""                          # the message text the template shows
    change: dict[str, Any] = field(default_factory=dict)
    transcript: str = ""
    reminder: dict[str, Any] = field(default_factory=dict)
    in_reply_to: str = ""                   # "" = the ticket's latest Message-ID
    note_address: bool = False              # agents get the ticket's note address
    forward_files: bool = False             # the stored mail's files go along
    customer: Person | None = None          # whom the mail is about, if not its recipient
    agent: Person | None = None             # the agent who wrote, if not its recipient
    follows: int = 0                        # the closed ticket a new one follows up
    # what the customer is told changed, one row per field (routing.every_change)
    changes: tuple[dict[str, str], ...] = ()
    # the recipient's own requests (routing.overview): a /list answer, an acknowledgement
    requests: tuple[dict[str, Any], ...] = ()
    project: str = ""                       # a mail without a ticket: the project it speaks for

    @property
    def automatic(self) -> bool:
        return self.auto is not None


@dataclass(frozen=True)
class Dropped:
    """A mail a guard stopped, and which guard said why."""

    mail: MailIntent
    guard: str
    reason: str


@dataclass(frozen=True)
class Change:
    field: str
    old: str
    new: str
    rule: str                     # what caused it: a command line, a workflow rule, a timer


@dataclass(frozen=True)
class LogEvent:
    kind: str
    actor: str
    detail: str = ""
    old: str = ""
    new: str = ""


@dataclass(frozen=True)
class StoreMessage:
    direction: Direction
    author: str                   # customer | agent | stranger
    text: str                     # what the author newly wrote (quotes and commands removed)


@dataclass(frozen=True)
class OpenTicket:
    project: str
    subject: str
    status: str
    requester: Person
    link_contact: bool = False    # the sender becomes a contact of the project
    follows: int | None = None    # the closed ticket it follows up (linked both ways)


@dataclass(frozen=True)
class OnBehalf:
    """A ticket an agent opened by forwarding a customer's mail: the stored message is
    credited to the customer, and what the agent wrote above it is an internal note."""

    customer: Person
    agent: Person
    note: str = ""


@dataclass(frozen=True)
class Booking:
    """Time an agent booked on the ticket, and the budget it counts against."""

    minutes: int
    actor: str
    budget: str                   # project (its contingent) | offer (the ticket's own)


@dataclass(frozen=True)
class Bounce:
    outbox_id: int
    status: str                   # DSN status code, "" if none
    hard: bool
    suppress_days: float          # 0 = do not suppress


@dataclass(frozen=True)
class Effects:
    outcome: Outcome
    reason: str
    rule: str = ""
    ticket: int | None = None               # the ticket acted on (None: a new one)
    open: OpenTicket | None = None
    message: StoreMessage | None = None
    before: TicketState | None = None
    after: TicketState | None = None        # the ticket's fields after the changes
    changes: tuple[Change, ...] = ()
    mails: tuple[MailIntent, ...] = ()
    dropped: tuple[Dropped, ...] = ()
    events: tuple[LogEvent, ...] = ()
    bounce: Bounce | None = None
    booking: Booking | None = None
    disposition: dict[str, Any] = field(default_factory=dict)
    behalf: OnBehalf | None = None          # an agent's forward on behalf of a customer
    # canned replies (names) the handler renders above the stored text and above the
    # text of the mails that carry it, before anything is applied
    canned: tuple[str, ...] = ()
