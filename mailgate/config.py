"""Configuration: read a TOML file into frozen, validated settings.

Every key has a default, so mailgate runs with no file at all; the tables, their keys
and defaults are `mailgate.config_sections`, this module reads a file into them and
checks what spans keys. A wrong key, type or value raises `ConfigError` whose message is
one line naming the file, the key and what was expected; the CLI prints it and exits 2.
This module never touches the network or the database: it only reads the config file
and files it points at (secret_file, password_file).
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

from mailgate.config_sections import (
    CliConfig,
    DatabaseConfig,
    ImapConfig,
    LmtpConfig,
    LogConfig,
    MailConfig,
    MetricsConfig,
    OutboundConfig,
    ProcessingConfig,
    RetentionConfig,
    ServerConfig,
    SmtpConfig,
    TemplatesConfig,
    TrustConfig,
    check_email,
)
from routing.addresses import split_address

ENV_CONFIG = "MAILGATE_CONFIG"
# Looked for, in this order, when neither --config nor $MAILGATE_CONFIG names a file.
LOCAL_CONFIG = Path("mailgate.toml")
SYSTEM_CONFIG = Path("/etc/mailgate/mailgate.toml")
DEFAULTS = "built-in defaults"


class ConfigError(Exception):
    """A config problem, worded for the admin: file, key, what was expected."""


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
    cli: CliConfig = field(default_factory=CliConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
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
        if box.address and check_email(box.address):
            raise ConfigError(f"{path}: {where} address: expected {check_email(box.address)}, "
                              f"got {box.address!r}")
    if cfg.lmtp.socket and cfg.lmtp.port:
        raise ConfigError(f"{path}: [lmtp] port: expected either socket or port, not both")
    names = [b.name for b in cfg.imap if b.name]
    if len(names) != len(set(names)):
        raise ConfigError(f"{path}: [imap] name: expected a different name for each mailbox")
    _check_groups(path, cfg.groups)
    from routing.workflow import WorkflowError
    from routing.workflow_config import build_workflows
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
            if owner and (not isinstance(owner, str) or check_email(owner)):
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
        elif not isinstance(v, str) or check_email(v):
            raise ConfigError(f"{path}: [groups] {group}: expected the owner's address, "
                              f"got {_show(v)}")
