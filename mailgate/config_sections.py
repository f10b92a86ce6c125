"""The tables of the config file ([database], [smtp], [mail], ...): each key with its
default, a short doc and the check its value must pass.

Plain frozen dataclasses and pure validators; reading the file, cross-field checks and
the errors they raise live in `mailgate.config`. Nothing here touches a file.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from mailgate.mail.templating import LANGUAGES
from routing.addresses import split_address

# --- validators -----------------------------------------------------------------------
# Each returns None when the value is fine, else the "expected ..." phrase.


def _port(v: int) -> str | None:
    return None if 0 <= v <= 65535 else "a port number between 0 and 65535"


def _positive(v: float) -> str | None:
    return None if v > 0 else "a number greater than 0"


def _non_negative(v: float) -> str | None:
    return None if v >= 0 else "a number of 0 or more"


def check_email(v: str) -> str | None:
    local, domain = split_address(v)
    if not local or not domain or "+" in local:
        return "an address like support@example.com (without a +suffix)"
    return None


def _domains(v: list[str]) -> str | None:
    bad = [d for d in v if not d or "@" in d or " " in d]
    return f"a list of domain names (bad: {bad[0]!r})" if bad else None


def _db_url(v: str) -> str | None:
    ok = v.startswith(("sqlite://", "postgresql://", "postgresql+psycopg://"))
    return None if ok else "a sqlite:///PATH or postgresql+psycopg://USER@HOST/DB URL"


def _niceness(v: int) -> str | None:
    return None if 0 <= v <= 19 else "a niceness between 0 and 19"


def _one_of(*choices: str):
    def check(v: str) -> str | None:
        return None if v in choices else "one of " + ", ".join(repr(c) for c in choices)

    return check


def _meta(doc: str, check=None) -> dict[str, Any]:
    return {"doc": doc, "check": check}


# --- sections -------------------------------------------------------------------------


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = field(default="sqlite:///mailgate.db", metadata=_meta("database URL", _db_url))
    busy_timeout_seconds: float = field(
        default=5.0, metadata=_meta("SQLite lock wait before giving up", _positive)
    )


@dataclass(frozen=True)
class SmtpConfig:
    host: str = "127.0.0.1"
    port: int = field(default=2525, metadata=_meta("listener port", _port))
    hostname: str = field(default="", metadata=_meta("name in the greeting; empty = FQDN"))
    max_message_bytes: int = field(default=26_214_400, metadata=_meta("", _positive))
    max_line_bytes: int = field(default=1_048_576, metadata=_meta("", _positive))
    max_recipients: int = field(default=100, metadata=_meta("", _positive))
    max_received_headers: int = field(default=100, metadata=_meta("", _positive))
    timeout_seconds: float = field(default=300.0, metadata=_meta("", _positive))
    shutdown_timeout_seconds: float = field(default=30.0, metadata=_meta("", _non_negative))
    # STARTTLS for inbound SMTP: both files set = offered; require_tls refuses MAIL before it
    tls_cert_file: str = ""
    tls_key_file: str = ""
    require_tls: bool = False


def _listen(v: str) -> str | None:
    host, _, port = v.rpartition(":")
    ok = not v or (host and port.isdigit() and 0 < int(port) <= 65535)
    return None if ok else "HOST:PORT like 127.0.0.1:9464, or empty (off)"


@dataclass(frozen=True)
class LmtpConfig:
    # LMTP for an MTA on this machine (Postfix's lmtp client): a unix socket, made 0660
    # so the MTA's user in mailgate's group may connect, or host + port. Neither: off.
    socket: str = field(default="", metadata=_meta("unix socket path; empty = none"))
    host: str = "127.0.0.1"
    port: int = field(default=0, metadata=_meta("TCP port; 0 = no TCP listener", _port))


@dataclass(frozen=True)
class MetricsConfig:
    # Prometheus /metrics over HTTP; empty = off
    listen: str = field(default="", metadata=_meta("HOST:PORT", _listen))
    # the `instance` label; empty = this host's name and the SMTP port
    instance: str = ""


@dataclass(frozen=True)
class ServerConfig:
    # this instance's name in `mailgate trace` and `jobs list`; empty = host:pid
    instance: str = field(default="", metadata=_meta("instance name; empty = host:pid"))


def _days(v: int) -> str | None:
    return None if v >= 0 else "a whole number of days, 0 (off) or more"


@dataclass(frozen=True)
class RetentionConfig:
    # 0 = keep for ever. raw: the bytes of processed mail (the parsed messages stay);
    # spam: mail marked spam and quarantined mail an admin dropped; outbox: sent mail
    raw_after_days: int = field(default=0, metadata=_meta("", _days))
    spam_after_days: int = field(default=0, metadata=_meta("", _days))
    outbox_after_days: int = field(default=0, metadata=_meta("", _days))


@dataclass(frozen=True)
class RetiredSecret:
    secret: str = ""
    secret_file: str = ""
    valid_until: dt.date = dt.date(1970, 1, 1)




@dataclass(frozen=True)
class MailConfig:
    support_address: str = field(default="support@example.com", metadata=_meta("", check_email))
    support_name: str = "Support"
    domains: list[str] = field(default_factory=lambda: ["example.com"],
                               metadata=_meta("", _domains))
    secret: str = ""
    secret_file: str = ""
    retired_secrets: list[RetiredSecret] = field(default_factory=list)
    token_max_age_days: int = field(default=365, metadata=_meta("", _non_negative))
    signature: str = ""
    # the language of customer mails for projects created without --language
    language: str = field(default="en", metadata=_meta("", _one_of(*LANGUAGES)))
    # loops: at most auto_reply_limit automatic mails per recipient in
    # auto_reply_window_minutes (then one more per day); hard bounces stop automatic mail
    auto_reply_limit: int = field(default=10, metadata=_meta("", _positive))
    auto_reply_window_minutes: float = field(default=10.0, metadata=_meta("", _positive))
    bounce_suppress_days: float = field(default=7.0, metadata=_meta("", _non_negative))
    # agents are never capped per address (a working agent gets hundreds a day); what
    # stops an autoresponder loop through an agent is a cap per agent and ticket
    agent_ticket_limit: int = field(default=20, metadata=_meta("", _positive))
    agent_ticket_window_minutes: float = field(default=60.0, metadata=_meta("", _positive))
    # Authentication-Results from this authserv-id (your own MTA) are trusted: commands
    # then need DKIM or DMARC pass for the From domain. Empty: not checked.
    trusted_authserv_id: str = ""
    # Without a trusted MTA: check DKIM ourselves (DNS lookups) before running commands.
    verify_dkim: bool = False
    # To/Cc addresses of a customer's mail that join the ticket: "all", "same-domain"
    # (the customer's own domain) or "none"; never our own addresses or agents
    participants: str = field(default="same-domain",
                              metadata=_meta("", _one_of("all", "same-domain", "none")))
    # a customer's overview (/list): the requests closed within this many days show
    # beside the open ones; ack_lists_open closes an acknowledgement with the sender's
    # other open requests
    overview_closed_days: int = field(default=30, metadata=_meta("", _non_negative))
    ack_lists_open: bool = True


@dataclass(frozen=True)
class TrustConfig:
    # Who may act as an agent. "token": only a mail to a reply address issued to that
    # agent (the address is the proof). "verified": that, and the From must also pass
    # DKIM aligned with its domain (verify_dkim) or a trusted MTA's Authentication-Results
    # (trusted_authserv_id) -- the recommended production setting.
    agents: str = field(default="token", metadata=_meta("", _one_of("token", "verified")))


@dataclass(frozen=True)
class OutboundConfig:
    host: str = "127.0.0.1"
    port: int = field(default=25, metadata=_meta("relay port", _port))
    starttls: bool = False
    tls_ca_file: str = field(default="", metadata=_meta("CA bundle for the relay; empty = "
                                                         "the system's"))
    username: str = ""
    password: str = ""
    password_file: str = ""
    timeout_seconds: float = field(default=30.0, metadata=_meta("", _positive))
    retry_min_seconds: float = field(default=30.0, metadata=_meta("", _positive))
    retry_max_seconds: float = field(default=3600.0, metadata=_meta("", _positive))
    give_up_after_hours: float = field(default=120.0, metadata=_meta("", _positive))
    batch_size: int = field(default=50, metadata=_meta("", _positive))
    # a batch claimed by an instance that died is sent by another after this long
    lease_seconds: float = field(default=300.0, metadata=_meta("", _positive))
    # sent mail keeps its bytes this long (to look at, or to resend); then only the row
    keep_sent_days: float = field(default=7.0, metadata=_meta("", _non_negative))


@dataclass(frozen=True)
class ProcessingConfig:
    # one parses ~900 mails/s; on two cores a second one only takes CPU from processing
    parse_workers: int = field(default=1, metadata=_meta("0 = parse in-process", _non_negative))
    parse_timeout_seconds: float = field(default=30.0, metadata=_meta("", _positive))
    parse_memory_mb: int = field(default=1024, metadata=_meta("", _positive))
    max_attempts: int = field(default=3, metadata=_meta("", _positive))
    max_mime_parts: int = field(default=1000, metadata=_meta("", _positive))
    max_mime_depth: int = field(default=30, metadata=_meta("", _positive))
    # per header block (the mail's and each part's): fields, and bytes of one field with
    # its folded lines (102,400 is Postfix's header_size_limit)
    max_header_count: int = field(default=1000, metadata=_meta("", _positive))
    max_header_bytes: int = field(default=102_400, metadata=_meta("", _positive))
    poll_seconds: float = field(default=2.0, metadata=_meta("", _positive))
    lease_seconds: float = field(default=120.0, metadata=_meta("", _positive))
    batch_size: int = field(default=0, metadata=_meta(
        "mails decided in one transaction; 0 = by database (`batch_for`)", _non_negative))
    # false: processing and sending run in a worker process of their own (both cores
    # work, the SMTP side only accepts); true: threads of the serve process
    in_process: bool = False
    # how many steps of CPU priority (niceness) the worker and parse worker processes run
    # below the accepting one: an SMTP client waits for its 250, processing catches up
    nice: int = field(default=10, metadata=_meta("0 = same priority as accepting",
                                                 _niceness))

    def batch_for(self, dialect: str) -> int:
        """Mails decided in one transaction: `batch_size`, or 0 = by database. SQLite has
        one write lock, which the accepting side needs for every mail it stores, so its
        batches stay short (32); PostgreSQL locks rows, and 64 share the per-batch
        lookups among twice the mails."""
        if self.batch_size > 0:
            return self.batch_size
        return 32 if dialect == "sqlite" else 64


@dataclass(frozen=True)
class TemplatesConfig:
    override_dir: str = ""


@dataclass(frozen=True)
class ImapConfig:
    """One mailbox to fetch from ([[imap]] entries; several may run at once)."""

    name: str = field(default="", metadata=_meta("label in logs and `imap status`"))
    host: str = "127.0.0.1"
    port: int = field(default=993, metadata=_meta("IMAP port", _port))
    tls: str = field(default="ssl", metadata=_meta("", _one_of("ssl", "starttls", "none")))
    tls_ca_file: str = ""
    user: str = ""
    password: str = ""
    password_file: str = ""
    folder: str = "INBOX"
    after: str = field(default="move", metadata=_meta("", _one_of("move", "flag")))
    move_to: str = "mailgate-processed"
    address: str = field(default="", metadata=_meta("recipient for routing; empty = support"))
    poll_seconds: float = field(default=60.0, metadata=_meta("", _positive))
    idle: bool = True
    batch_size: int = field(default=50, metadata=_meta("", _positive))
    timeout_seconds: float = field(default=30.0, metadata=_meta("", _positive))


@dataclass(frozen=True)
class LogConfig:
    format: str = field(default="console", metadata=_meta("", _one_of("console", "json")))
    level: str = field(default="info",
                       metadata=_meta("", _one_of("debug", "info", "warning", "error")))


def _agent_or_empty(v: str) -> str | None:
    return None if not v else check_email(v)


@dataclass(frozen=True)
class CliConfig:
    # the agent `ticket reply|note|set|new|log|merge` act as when --as is not given
    agent: str = field(default="", metadata=_meta("acting agent's address; empty = --as "
                                                  "is required", _agent_or_empty))
