"""Configuration: read a TOML file into frozen, validated settings.

Every key has a default, so mailgate runs with no file at all. A wrong key, type or
value raises `ConfigError` whose message is one line naming the file, the key and what
was expected; the CLI prints it and exits 2. This module never touches the network or
the database: it only reads the config file and files it points at (secret_file,
password_file).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import os
import tomllib
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from routing.addresses import split_address

ENV_CONFIG = "MAILGATE_CONFIG"
# Looked for, in this order, when neither --config nor $MAILGATE_CONFIG names a file.
LOCAL_CONFIG = Path("mailgate.toml")
SYSTEM_CONFIG = Path("/etc/mailgate/mailgate.toml")
DEFAULTS = "built-in defaults"


class ConfigError(Exception):
    """A config problem, worded for the admin: file, key, what was expected."""


# --- validators -----------------------------------------------------------------------
# Each returns None when the value is fine, else the "expected ..." phrase.


def _port(v: int) -> str | None:
    return None if 0 <= v <= 65535 else "a port number between 0 and 65535"


def _positive(v: float) -> str | None:
    return None if v > 0 else "a number greater than 0"


def _non_negative(v: float) -> str | None:
    return None if v >= 0 else "a number of 0 or more"


def _email(v: str) -> str | None:
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
class RetiredSecret:
    secret: str = ""
    secret_file: str = ""
    valid_until: dt.date = dt.date(1970, 1, 1)


LANGUAGES = ("en", "de", "da")      # the languages mailgate ships templates in


@dataclass(frozen=True)
class MailConfig:
    support_address: str = field(default="support@example.com", metadata=_meta("", _email))
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
    # sent mail keeps its bytes this long (to look at, or to resend); then only the row
    keep_sent_days: float = field(default=7.0, metadata=_meta("", _non_negative))


@dataclass(frozen=True)
class ProcessingConfig:
    parse_workers: int = field(default=2, metadata=_meta("0 = parse in-process", _non_negative))
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
    batch_size: int = field(default=32, metadata=_meta("mails decided in one transaction",
                                                        _positive))
    # false: processing and sending run in a worker process of their own (both cores
    # work, the SMTP side only accepts); true: threads of the serve process
    in_process: bool = False


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


@dataclass(frozen=True)
class Config:
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    mail: MailConfig = field(default_factory=MailConfig)
    trust: TrustConfig = field(default_factory=TrustConfig)
    outbound: OutboundConfig = field(default_factory=OutboundConfig)
    processing: ProcessingConfig = field(default_factory=ProcessingConfig)
    templates: TemplatesConfig = field(default_factory=TemplatesConfig)
    log: LogConfig = field(default_factory=LogConfig)
    imap: list[ImapConfig] = field(default_factory=list)
    lmtp: LmtpConfig = field(default_factory=LmtpConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    # [workflows.NAME] tables, checked by routing.workflow (presets merged in by bootstrap)
    workflows: dict[str, Any] = field(default_factory=dict)
    # [groups] NAME = "owner@agency.example", or [groups.NAME] owner = "…", key = "web"
    # (mail to support+web@ files a new ticket under the group): see group_owners/_keys
    groups: dict[str, Any] = field(default_factory=dict)
    source: str = field(default=DEFAULTS, metadata={"internal": True})

    def group_owners(self) -> dict[str, str]:
        """Group name -> owner address ("" when a group table names no owner)."""
        return {name: v if isinstance(v, str) else str(v.get("owner", ""))
                for name, v in self.groups.items()}

    def group_keys(self) -> dict[str, str]:
        """Plus-address key -> group name, for groups with their own address."""
        return {str(v["key"]).lower(): name for name, v in self.groups.items()
                if isinstance(v, dict) and v.get("key")}

    @property
    def support_local(self) -> str:
        return split_address(self.mail.support_address)[0]

    @property
    def support_domain(self) -> str:
        return split_address(self.mail.support_address)[1]


# --- loading --------------------------------------------------------------------------


def find_config(explicit: str | os.PathLike | None, from_env: str | None,
                candidates: Sequence[Path], exists: Callable[[Path], bool]) -> Path | None:
    """Which file to read: --config, else $MAILGATE_CONFIG, else the first candidate that
    exists, else None (built-in defaults). A named file is taken even if it is missing:
    a typo in --config must be an error, not a quiet fall back to other settings."""
    if explicit is not None:
        return Path(explicit)
    if from_env:
        return Path(from_env)
    return next((c for c in candidates if exists(c)), None)


def load_config(path: str | os.PathLike | None = None, *,
                candidates: Sequence[Path] = (LOCAL_CONFIG, SYSTEM_CONFIG)) -> Config:
    """Load `path`, or $MAILGATE_CONFIG, or ./mailgate.toml, or /etc/mailgate/mailgate.toml,
    or nothing (all defaults)."""
    from_env = os.environ.get(ENV_CONFIG) or None
    found = find_config(path, from_env, candidates, exists=Path.is_file)
    if found is None:
        return Config()
    # a file found by looking is reported with its full path: "which config?" is the
    # question `status` and `check-config` answer with it
    p = found if path is not None or from_env else found.absolute()
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    cfg = _build(Config, data, p, prefix="")
    cfg = dataclasses.replace(cfg, source=str(p))
    _check_cross_field(cfg, p)
    return cfg


def config_from_dict(data: dict[str, Any], *, source: str = "(dict)") -> Config:
    """Build a Config from already-parsed TOML data (tests, tooling)."""
    cfg = _build(Config, data, Path(source), prefix="")
    cfg = dataclasses.replace(cfg, source=source)
    _check_cross_field(cfg, Path(source))
    return cfg


def _build(cls: type, data: Any, path: Path, prefix: str):
    where = f"[{prefix}]" if prefix else "top level"
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: {where}: expected a table, got {_show(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            raise ConfigError(f"{path}: {_key(prefix, key)}: unknown key{_suggest(key, fields)}")
        f = fields[key]
        kwargs[key] = _convert(hints[key], value, path, prefix, key, f.metadata)
    return cls(**kwargs)


def _convert(hint, value, path: Path, prefix: str, key: str, meta) -> Any:
    name = _key(prefix, key)
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, path, f"{prefix}.{key}" if prefix else key)
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{path}: {name}: expected a list, got {_show(value)}")
        if dataclasses.is_dataclass(item):
            out = [_build(item, v, path, f"{prefix}.{key}[{i}]") for i, v in enumerate(value)]
        else:
            out = [_scalar(item, v, path, f"{name}[{i}]") for i, v in enumerate(value)]
    elif origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: {name}: expected a table, got {_show(value)}")
        out = value
    elif origin in (typing.Union, types.UnionType):
        out = value
    else:
        out = _scalar(hint, value, path, name)
    check = meta.get("check") if meta else None
    if check is not None:
        problem = check(out)
        if problem:
            raise ConfigError(f"{path}: {name}: expected {problem}, got {_show(value)}")
    return out


def _scalar(hint, value, path: Path, name: str):
    expected = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
                dt.date: "a date like 2026-12-31"}[hint]
    ok = isinstance(value, hint) and not (hint is int and isinstance(value, bool))
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is dt.date and isinstance(value, dt.datetime):
        ok = False
    if not ok:
        raise ConfigError(f"{path}: {name}: expected {expected}, got {_show(value)}")
    return value


def agent_mail_verified(cfg: Config) -> bool:
    """Is the From of agents' mail checked by anything (our MTA's results or DKIM)?"""
    return bool(cfg.mail.trusted_authserv_id or cfg.mail.verify_dkim)


def trust_warning(cfg: Config) -> str:
    """What an admin must hear when agent mail rests on reply addresses alone ("" if not)."""
    if agent_mail_verified(cfg):
        return ""
    return ("agent mail is NOT verified: anyone holding an agent's reply address (e.g. a "
            "forwarded notification) can act as that agent; set [mail] trusted_authserv_id "
            "(your MTA's Authentication-Results) or verify_dkim, and [trust] agents = "
            "\"verified\"")


def trust_summary(cfg: Config) -> str:
    """One line for check-config and status: how agent mail is trusted."""
    warning = trust_warning(cfg)
    if warning:
        return "WARNING: " + warning
    how = (f"Authentication-Results of {cfg.mail.trusted_authserv_id}"
           if cfg.mail.trusted_authserv_id else "DKIM checked by mailgate")
    return f"reply address and From verified ({how}; [trust] agents = \"{cfg.trust.agents}\")"


def _check_cross_field(cfg: Config, path: Path) -> None:
    support_domain = cfg.support_domain
    if support_domain not in cfg.mail.domains:
        raise ConfigError(
            f"{path}: [mail] domains: expected a list that includes the support address's "
            f"domain {support_domain!r}, got {cfg.mail.domains!r}"
        )
    if cfg.trust.agents == "verified" and not agent_mail_verified(cfg):
        raise ConfigError(f"{path}: [trust] agents: \"verified\" expected [mail] "
                          "trusted_authserv_id or verify_dkim = true to check agents' mail")
    if cfg.mail.secret and cfg.mail.secret_file:
        raise ConfigError(f"{path}: [mail] secret_file: expected either secret or secret_file, "
                          "not both")
    _check_private(path, "[mail] secret_file", cfg.mail.secret_file)
    for n, retired in enumerate(cfg.mail.retired_secrets):
        _check_private(path, f"[mail.retired_secrets[{n}]] secret_file", retired.secret_file)
    _check_private(path, "[outbound] password_file", cfg.outbound.password_file)
    _check_readable(path, "[outbound] tls_ca_file", cfg.outbound.tls_ca_file)
    smtp = cfg.smtp
    if bool(smtp.tls_cert_file) != bool(smtp.tls_key_file):
        raise ConfigError(f"{path}: [smtp] tls_key_file: expected both tls_cert_file and "
                          "tls_key_file, or neither")
    _check_readable(path, "[smtp] tls_cert_file", smtp.tls_cert_file)
    _check_readable(path, "[smtp] tls_key_file", smtp.tls_key_file)
    if smtp.require_tls and not smtp.tls_cert_file:
        raise ConfigError(f"{path}: [smtp] require_tls: expected tls_cert_file and "
                          "tls_key_file to be set")
    for n, box in enumerate(cfg.imap):
        where = f"[imap {box.name or n + 1}]"
        if not box.user:
            raise ConfigError(f"{path}: {where} user: expected the IMAP login name")
        if box.password and box.password_file:
            raise ConfigError(f"{path}: {where} password_file: expected either password or "
                              "password_file, not both")
        _check_private(path, f"{where} password_file", box.password_file)
        _check_readable(path, f"{where} tls_ca_file", box.tls_ca_file)
        if box.address and _email(box.address):
            raise ConfigError(f"{path}: {where} address: expected {_email(box.address)}, "
                              f"got {box.address!r}")
    if cfg.lmtp.socket and cfg.lmtp.port:
        raise ConfigError(f"{path}: [lmtp] port: expected either socket or port, not both")
    names = [b.name for b in cfg.imap if b.name]
    if len(names) != len(set(names)):
        raise ConfigError(f"{path}: [imap] name: expected a different name for each mailbox")
    _check_groups(path, cfg.groups)
    from routing.workflow import WorkflowError, build_workflows
    try:
        build_workflows(cfg.workflows)
    except WorkflowError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if cfg.processing.lease_seconds <= cfg.processing.parse_timeout_seconds:
        raise ConfigError(f"{path}: [processing] lease_seconds: expected more than "
                          f"parse_timeout_seconds ({cfg.processing.parse_timeout_seconds:g}), "
                          f"got {cfg.processing.lease_seconds:g}")
    if cfg.outbound.retry_min_seconds > cfg.outbound.retry_max_seconds:
        raise ConfigError(f"{path}: [outbound] retry_min_seconds: expected at most "
                          f"retry_max_seconds ({cfg.outbound.retry_max_seconds})")


def _check_readable(path: Path, name: str, file: str) -> None:
    if file and not os.access(file, os.R_OK):
        raise ConfigError(f"{path}: {name}: expected a readable file, got {file!r}")


def _check_private(path: Path, name: str, file: str) -> None:
    """A secret that group or others may read is refused: whoever reads the token secret
    mints reply tokens, whoever reads a password logs in as mailgate."""
    _check_readable(path, name, file)
    if not file:
        return
    mode = os.stat(file).st_mode & 0o777
    if mode & 0o077:
        raise ConfigError(f"{path}: {name}: expected mode 0600 or stricter (owner only) "
                          f"on {file!r}, got {mode:04o}")


def read_secret_file(file: str) -> str:
    return Path(file).read_text(encoding="utf-8").strip()


def _key(prefix: str, key: str) -> str:
    return f"[{prefix}] {key}" if prefix else key


def _suggest(key: str, fields) -> str:
    close = difflib.get_close_matches(key, list(fields), n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return " (expected one of: " + ", ".join(sorted(fields)) + ")"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def describe_defaults() -> dict[str, dict[str, Any]]:
    """Every section and key with its default value (used by tests and docs checks)."""
    out: dict[str, dict[str, Any]] = {}
    for f in dataclasses.fields(Config):
        if f.metadata.get("internal"):
            continue
        section = f.default_factory()  # type: ignore[misc]
        if not dataclasses.is_dataclass(section):
            continue
        out[f.name] = {sf.name: getattr(section, sf.name) for sf in dataclasses.fields(section)}
    return out


def _check_groups(path: str, groups: dict[str, Any]) -> None:
    """`NAME = "owner@…"` or a `[groups.NAME]` table with `owner` and/or `key`. A key is
    a plus-address like a project key (project keys are checked against it when a project
    is added, since they live in the database)."""
    from routing.addresses import PROJECT_KEY_RE

    keys: dict[str, str] = {}
    for group, v in groups.items():
        if isinstance(v, dict):
            unknown = set(v) - {"owner", "key"}
            if unknown:
                raise ConfigError(f"{path}: [groups.{group}] {sorted(unknown)[0]}: unknown key "
                                  "(expected owner, key)")
            owner, key = v.get("owner", ""), v.get("key", "")
            if owner and (not isinstance(owner, str) or _email(owner)):
                raise ConfigError(f"{path}: [groups.{group}] owner: expected the owner's "
                                  f"address, got {_show(owner)}")
            if key and (not isinstance(key, str) or not PROJECT_KEY_RE.match(key.lower())):
                raise ConfigError(f"{path}: [groups.{group}] key: expected 1-40 lower-case "
                                  f"letters, digits, '-' or '_', got {_show(key)}")
            if key and key.lower() in keys:
                raise ConfigError(f"{path}: [groups.{group}] key: {key!r} is the key of group "
                                  f"{keys[key.lower()]} already")
            if key:
                keys[key.lower()] = group
        elif not isinstance(v, str) or _email(v):
            raise ConfigError(f"{path}: [groups] {group}: expected the owner's address, "
                              f"got {_show(v)}")
