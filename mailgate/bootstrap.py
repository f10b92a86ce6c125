"""Wire the parts together: config in, an `App` with store, templates, composer and clock out.

The SMTP listener, the IMAP pollers, the CLI and the scheduled jobs all start from the
same `App`, so they call the same handlers with the same settings.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from mailgate.config import Config, read_secret_file
from mailgate.logs import configure_logging
from mailgate.mail.compose import Composer
from mailgate.mail.mimecheck import Limits
from mailgate.mail.templating import Templates
from routing.addresses import RecipientRules
from routing.tokens import TokenKey
from routing.workflow import Workflow
from routing.workflow_config import build_workflows
from store import settings
from store.db import Database
from store.migrations import migrate

Clock = Callable[[], dt.datetime]


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class App:
    config: Config
    db: Database
    templates: Templates
    composer: Composer
    token_keys: tuple[TokenKey, ...]
    recipient_rules: RecipientRules
    limits: Limits
    workflows: dict[str, Workflow] = field(default_factory=dict)
    clock: Clock = system_clock
    log: structlog.typing.FilteringBoundLogger = field(
        default_factory=lambda: structlog.get_logger("mailgate"))

    def now(self) -> dt.datetime:
        return self.clock()

    @property
    def instance(self) -> str:
        """This process's name in `trace` and `jobs list`: [server] instance, else
        host:pid (asked each time: a worker process has its own pid)."""
        return self.config.server.instance or f"{socket.gethostname()}:{os.getpid()}"


def build_app(config: Config, *, clock: Clock = system_clock, configure_logs: bool = True,
              run_migrations: bool = True) -> App:
    if configure_logs:
        configure_logging(config.log.format, config.log.level)
    db = Database(config.database.url, busy_timeout=config.database.busy_timeout_seconds)
    if run_migrations:
        migrate(db)
    keys = resolve_token_keys(config, db)
    loop_marker = hmac.new(keys[0].secret, b"mailgate-loop", hashlib.sha256).hexdigest()[:20]
    composer = Composer(support_address=config.mail.support_address,
                        support_name=config.mail.support_name, token_secret=keys[0].secret,
                        loop_marker=loop_marker)
    rules = RecipientRules(config.support_local,
                           frozenset(d.lower() for d in config.mail.domains))
    limits = Limits(max_parts=config.processing.max_mime_parts,
                    max_depth=config.processing.max_mime_depth,
                    max_header_count=config.processing.max_header_count,
                    max_header_bytes=config.processing.max_header_bytes)
    return App(config=config, db=db, templates=Templates(config.templates.override_dir or None),
               composer=composer, token_keys=keys, recipient_rules=rules, limits=limits,
               workflows=build_workflows(config.workflows), clock=clock)


def resolve_token_keys(config: Config, db: Database) -> tuple[TokenKey, ...]:
    """The current signing key first, then retired keys still inside their grace period.

    With no secret configured, one is generated once and kept in the database, so
    tokens survive restarts and every instance sharing the database agrees on it.
    """
    mail = config.mail
    if mail.secret:
        current = mail.secret
    elif mail.secret_file:
        current = read_secret_file(mail.secret_file)
    else:
        with db.unit() as session:
            current = settings.get_setting(session=session, key="token_secret") or ""
            if not current:
                current = secrets.token_hex(32)
                settings.set_setting(session=session, key="token_secret", value=current)
    keys = [TokenKey(current.encode())]
    for retired in mail.retired_secrets:
        value = retired.secret or (read_secret_file(retired.secret_file)
                                   if retired.secret_file else "")
        if value:
            keys.append(TokenKey(value.encode(), retired.valid_until))
    return tuple(keys)
