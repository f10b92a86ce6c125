"""`serve`, `check-config` and `ingest`."""

from __future__ import annotations

import argparse
import asyncio
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
    p.add_argument("--sender", default="", metavar="ADDR", help="envelope sender")
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
    from mailgate.mail.templating import Templates
    from mailgate.mail.variables import check_templates

    cfg = ctx.config
    problems = check_templates(Templates(cfg.templates.override_dir or None))
    if problems:
        for p in problems:
            print(f"mailgate: {p}", file=sys.stderr)
        return 1
    print(f"{cfg.source}: OK (database {cfg.database.url}, SMTP {cfg.smtp.host}:"
          f"{cfg.smtp.port}, relay {cfg.outbound.host}:{cfg.outbound.port})")
    return 0


def cmd_ingest(args: argparse.Namespace, ctx: Context) -> int:
    from mailgate.edges.spool import Arrival, store_arrivals
    from mailgate.mail.mimecheck import looks_like_mail
    from routing.addresses import Recipient, classify_recipient

    try:
        if args.file == "-":
            raw = sys.stdin.buffer.read()
        else:
            with open(args.file, "rb") as fh:
                raw = fh.read()
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}", EX_DATAERR) from None
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
    try:
        (row_id,) = store_arrivals(app.db, [Arrival(raw=raw, mail_from=args.sender,
                                                    rcpt_tos=tuple(recipients),
                                                    source="pipe")])
    except Exception as exc:
        from store.db import StoreUnavailable, classify_error

        if isinstance(exc, StoreUnavailable) or classify_error(exc) is not None:
            raise CliError(f"not stored, try again later: {exc}", EX_TEMPFAIL) from None
        raise
    print(f"stored as inbound {row_id}")
    return 0
