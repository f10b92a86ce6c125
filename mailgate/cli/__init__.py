"""`mailgate`: the command line for admins and scripts.

Every verb is a thin wrapper over the shared handlers. Errors are one line on stderr
and a non-zero exit: 1 for a refused request (no such ticket, duplicate agent), 2 for
usage and config errors, 75 (EX_TEMPFAIL) when the store is unavailable, and for
`ingest` 65 (EX_DATAERR) when the input is not a mail and 66 (EX_NOINPUT) when it cannot
be read. No traceback reaches the user.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from mailgate.config import Config, ConfigError, load_config
from mailgate.handlers import ServiceError
from store.db import StoreUnavailable
from store.migrations import SchemaError

EX_USAGE, EX_DATAERR, EX_TEMPFAIL = 2, 65, 75


class CliError(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not usage + error
        # `prog` is the command as typed ("mailgate ticket list"); `_fail` adds no
        # second program name in front of it
        raise CliError(f"{self.prog}: {message} (see --help)", EX_USAGE)

    def parse_known_args(self, args=None, namespace=None):
        # argparse hands a verb's unknown arguments up to the top parser, which then
        # names itself; refusing them here names the verb that was given them
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


@dataclass
class Context:
    config_path: str | None
    _config: Config | None = None
    _app: object | None = field(default=None)

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    def app(self):
        if self._app is None:
            from mailgate.bootstrap import build_app

            self._app = build_app(self.config)
        return self._app

    def close(self) -> None:
        if self._app is not None:
            self._app.db.dispose()
            self._app = None


Handler = Callable[[argparse.Namespace, Context], int]


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; for `serve` only the commands of its own module: the
    serving process then loads none of the other commands' code (~9 MB resident)."""
    if command == "serve":
        from mailgate.cli import run
        modules: tuple = (run,)
    else:
        from mailgate.cli import (
            admin,
            desk,
            imap,
            jobs,
            queues,
            run,
            search,
            status,
            texts,
            tickets,
            trace,
            transfer,
        )
        modules = (run, admin, tickets, queues, texts, imap, status, search, desk, trace,
                   jobs, transfer)

    parser = _Parser(prog="mailgate", description="Inbound-email ticketing daemon.")
    parser.add_argument("--config", metavar="PATH",
                        help="config file (default: $MAILGATE_CONFIG, else ./mailgate.toml, "
                             "else /etc/mailgate/mailgate.toml, else built-in defaults)")
    try:    # the installed distribution's version, so a wheel reports what it was built as
        version = importlib.metadata.version("mailgate")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown (not installed)"
    parser.add_argument("--version", action="version", version=f"mailgate {version}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for module in modules:
        module.register(sub)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    """The command word of `argv` (after the global options), if any."""
    words = iter(argv)
    for word in words:
        if word == "--config":
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ctx: Context | None = None
    try:
        parser = build_parser(_command_of(argv))
        args = parser.parse_args(argv)
        ctx = Context(args.config)
        return args.handler(args, ctx)
    except CliError as exc:
        return _fail(str(exc), exc.code)
    except ConfigError as exc:
        return _fail(f"config error: {exc}", EX_USAGE)
    except ServiceError as exc:
        return _fail(str(exc), 1)
    except StoreUnavailable as exc:
        return _fail(f"database unavailable: {exc}", EX_TEMPFAIL)
    except SchemaError as exc:
        return _fail(f"database: {exc}", 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except BrokenPipeError:
        # Output piped into `head`: not an error worth a message.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # the last line of defence: one line, never a traceback
        return _fail(f"internal error: {type(exc).__name__}: {exc}", 1)
    finally:
        if ctx is not None:
            ctx.close()


def _fail(message: str, code: int) -> int:
    from mailgate.cli.output import safe

    # one line, and an argument or a stored value quoted in it cannot drive the terminal
    text = safe(" ".join(message.split()))
    if not text.startswith(("mailgate:", "mailgate ")):   # a usage error names itself
        text = f"mailgate: {text}"
    print(text, file=sys.stderr)
    return code
