"""`serve`, `check-config` and `ingest`."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from mailgate.cli import EX_DATAERR, EX_TEMPFAIL, CliError, Context


def register(sub) -> None:
    p = sub.add_parser("serve", help="run the daemon (SMTP listener, processing, outbox)")
    p.set_defaults(handler=cmd_serve)

    p = sub.add_parser("check-config", help="validate the config and the templates")
    p.set_defaults(handler=cmd_check_config)

    p = sub.add_parser("ingest", help="store one raw mail as if it arrived over SMTP")
    p.add_argument("file", nargs="?", default="-", help="file with the mail, or - for stdin")
    p.add_argument("--recipient", action="append", default=[], metavar="ADDR",
                   help="envelope recipient (repeatable; default: the support address)")
    p.add_argument("--sender", default=None, metavar="ADDR",
                   help="envelope sender ('' or '<>' for the null sender of a bounce; "
                        "default: the mail's Return-Path, else unknown)")
    p.set_defaults(handler=cmd_ingest)


def cmd_serve(args: argparse.Namespace, ctx: Context) -> int:
    from mailgate.edges.serve import serve_forever

    app = ctx.app()
    try:
        return asyncio.run(serve_forever(app))
    except OSError as exc:
        raise CliError(f"cannot listen on {app.config.smtp.host}:{app.config.smtp.port}: "
                       f"{exc.strerror or exc}") from None


def cmd_check_config(args: argparse.Namespace, ctx: Context) -> int:
    from mailgate.config import ConfigError, trust_summary
    from mailgate.logs import configure_logging
    from mailgate.mail.templating import Templates
    from mailgate.mail.variables import check_templates

    cfg = ctx.config
    configure_logging(cfg.log.format, cfg.log.level)   # what opening the store says: stderr
    print(f"config:    {cfg.source}")
    override = cfg.templates.override_dir
    if override and not (os.path.isdir(override) and os.access(override, os.R_OK | os.X_OK)):
        # a missing folder would quietly fall back to the shipped templates
        raise ConfigError(f"{cfg.source}: [templates] override_dir: expected a readable "
                          f"folder, got {override!r}")
    print(f"database:  {_database_state(cfg)}")
    templates = Templates(override or None)
    problems = check_templates(templates)
    if problems:
        for p in problems:
            print(f"mailgate: {p}", file=sys.stderr)
        return 1
    print(f"templates: {len(templates.names())}, each renders with sample data"
          + (f" (overrides from {override})" if override else ""))
    print(f"agents:    {trust_summary(cfg)}")
    print(f"{cfg.source}: OK (SMTP {cfg.smtp.host}:{cfg.smtp.port}, relay "
          f"{cfg.outbound.host}:{cfg.outbound.port})")
    return 0


def _database_state(cfg) -> str:
    """Connect and read the schema version, without creating or changing anything (a
    new SQLite file is only checked for a folder it can be created in)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    from store.db import Database, StoreUnavailable, classify_error
    from store.migrations import SCHEMA_VERSION, SchemaError, current_version

    url = make_url(cfg.database.url)
    shown = url.render_as_string(hide_password=True)
    path = url.database
    if url.get_backend_name() == "sqlite" and path and path != ":memory:" \
            and not path.startswith("file:") and not os.path.exists(path):
        folder = os.path.dirname(os.path.abspath(path))
        if not os.access(folder, os.W_OK | os.X_OK):
            raise StoreUnavailable(f"{shown}: cannot create the file: folder {folder} is "
                                   "missing or not writable")
        return f"{shown} (new: created with the schema on first start)"
    db = Database(cfg.database.url, busy_timeout=cfg.database.busy_timeout_seconds)
    try:
        with db.engine.connect() as conn:
            found = current_version(conn)
    except Exception as exc:
        mapped = classify_error(exc)
        if mapped is not None:
            raise StoreUnavailable(f"{shown}: {mapped}") from None
        if isinstance(exc, DBAPIError):   # e.g. a file that is not a database
            raise CliError(f"database {shown}: {str(exc.orig or exc).splitlines()[0]}") \
                from None
        raise
    finally:
        db.dispose()
    if found is None:
        return f"{shown} (empty: the schema is created on first start)"
    if found > SCHEMA_VERSION:
        raise SchemaError(f"{shown} has schema version {found}, newer than this mailgate "
                          f"({SCHEMA_VERSION}); upgrade mailgate instead")
    if found < SCHEMA_VERSION:
        return f"{shown} (schema version {found}, upgraded to {SCHEMA_VERSION} on start)"
    return f"{shown} (schema version {found}, current)"


EX_NOINPUT = 66    # sysexits.h: an input file did not exist or was not readable


def cmd_ingest(args: argparse.Namespace, ctx: Context) -> int:
    from mailgate.edges.spool import Arrival, store_arrivals
    from mailgate.mail.mimecheck import looks_like_mail
    from mailgate.mail.parsing import return_path
    from routing.addresses import Recipient, classify_recipient

    try:
        if args.file == "-":
            raw = sys.stdin.buffer.read()
        else:
            with open(args.file, "rb") as fh:
                raw = fh.read()
    except OSError as exc:   # missing, unreadable, a folder: the MTA should not retry
        raise CliError(f"cannot read {args.file}: {exc.strerror or exc}", EX_NOINPUT) \
            from None
    problem = looks_like_mail(raw)
    if problem:
        raise CliError(f"not a mail: {problem}", EX_DATAERR)
    cfg = ctx.config
    if len(raw) > cfg.smtp.max_message_bytes:
        raise CliError(f"mail is {len(raw)} bytes, more than max_message_bytes "
                       f"({cfg.smtp.max_message_bytes})", EX_DATAERR)
    recipients = args.recipient or [cfg.mail.support_address]
    app = ctx.app()
    for r in recipients:
        verdict = classify_recipient(r, app.recipient_rules)
        if not isinstance(verdict, Recipient):
            raise CliError(f"recipient {r!r} refused: {verdict.reason}", EX_DATAERR)
    # the MTA's word (--sender), else the Return-Path it wrote, else unknown: never the
    # null sender by default, which would make every piped mail automatic
    sender = return_path(raw) if args.sender is None else envelope_address(args.sender)
    try:
        (row_id,) = store_arrivals(app.db, [Arrival(raw=raw, mail_from=sender,
                                                    rcpt_tos=tuple(recipients),
                                                    source="pipe")],
                                    instance=app.instance)
    except Exception as exc:
        from store.db import StoreUnavailable, classify_error

        if isinstance(exc, StoreUnavailable) or classify_error(exc) is not None:
            raise CliError(f"not stored, try again later: {exc}", EX_TEMPFAIL) from None
        raise
    print(f"stored as inbound {row_id}")
    return 0


def envelope_address(value: str) -> str:
    """An address as an MTA passes it, with or without angle brackets; "" is null."""
    value = value.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1].strip()
    return value
