"""A running mailgate for end-to-end tests: real SMTP in, a real relay out, a real database.

`Harness` starts the daemon with the same `DaemonThread` controller `make run` uses,
talks to it with smtplib, and runs CLI commands in-process against the same database.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import smtplib
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlmodel import select

from mailgate.bootstrap import App, build_app
from mailgate.cli import main as cli_main
from mailgate.config import config_from_dict
from mailgate.edges.serve import DaemonThread
from store.models import Inbound, Outbox, Ticket
from tests.support.relay import RelaySink

SUPPORT = "support@example.com"


def toml_dumps(data: dict[str, Any]) -> str:
    """Just enough TOML for test configs (tables of strings, numbers, bools, lists)."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(value(i) for i in v) + "]"
        if isinstance(v, dt.date):
            return v.isoformat()
        raise TypeError(type(v))

    lines = []
    for section, body in data.items():
        if isinstance(body, list):
            for item in body:
                lines.append(f"[[{section}]]")
                lines.extend(f"{k} = {value(v)}" for k, v in item.items())
        else:
            lines.append(f"[{section}]")
            lines.extend(f"{k} = {value(v)}" for k, v in body.items()
                         if not isinstance(v, dict))
            for k, v in body.items():          # sub-tables: [workflows.NAME]
                if isinstance(v, dict):
                    lines.append(f"[{section}.{k}]")
                    lines.extend(f"{kk} = {value(vv)}" for kk, vv in v.items())
        lines.append("")
    return "\n".join(lines)


def base_config(db_url: str, relay_port: int, **overrides: dict[str, Any]) -> dict:
    data: dict[str, dict[str, Any]] = {
        "database": {"url": db_url},
        "smtp": {"host": "127.0.0.1", "port": 0, "shutdown_timeout_seconds": 5.0},
        "mail": {"support_address": SUPPORT, "domains": ["example.com"],
                 "secret": "test-secret-please-rotate", "signature": "Your support team"},
        "outbound": {"host": "127.0.0.1", "port": relay_port, "retry_min_seconds": 0.2,
                     "retry_max_seconds": 1.0, "timeout_seconds": 5.0},
        "processing": {"parse_workers": int(os.environ.get("MAILGATE_TEST_PARSE_WORKERS", "1")),
                       "poll_seconds": 0.2},
        "log": {"level": "warning"},
    }
    for section, values in overrides.items():
        if isinstance(values, list):      # [[imap]] and other arrays of tables
            data[section] = values
        else:
            data.setdefault(section, {}).update(values)
    return data


def make_mail(*, sender: str, to: str = SUPPORT, subject: str = "Hello", body: str = "Hi.",
              headers: dict[str, str] | None = None, msgid: str | None = None) -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = msgid or make_msgid(domain="client.example")
    msg["Date"] = "Mon, 23 Nov 2026 10:00:00 +0100"
    for k, v in (headers or {}).items():
        msg[k] = v
    msg.set_content(body)
    return msg.as_bytes()


def reply_to(original: EmailMessage, *, sender: str, body: str, quote: bool = True,
             to: str | None = None) -> bytes:
    """What a mail client sends when its user hits Reply on `original`."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender
    msg["To"] = to or str(original["Reply-To"] or original["From"])
    subject = str(original["Subject"])
    msg["Subject"] = subject if subject.lower().startswith("re:") else f"Re: {subject}"
    msg["Message-ID"] = make_msgid(domain="mua.example")
    msg["In-Reply-To"] = str(original["Message-ID"])
    refs = str(original["References"] or "")
    msg["References"] = (refs + " " + str(original["Message-ID"])).strip()
    text = body
    if quote:
        old = original.get_body(("plain",)).get_content() if original.is_multipart() \
            else original.get_content()
        quoted = "\n".join("> " + line for line in old.splitlines())
        text = f"{body}\n\nOn Mon, 23 Nov 2026 at 10:00, Support wrote:\n{quoted}\n"
    msg.set_content(text)
    return msg.as_bytes()


@dataclass
class CliResult:
    code: int
    out: str
    err: str


class Harness:
    def __init__(self, tmp_path: Path, db_url: str, relay: RelaySink, *, clock=None,
                 **overrides) -> None:
        """`clock` (a callable giving aware datetimes) needs `in_process`: the worker
        process keeps its own clock."""
        self.tmp_path = tmp_path
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.relay = relay
        self.data = base_config(db_url, relay.port, **overrides)
        self.config_path = tmp_path / "mailgate.toml"
        self.config_path.write_text(toml_dumps(self.data))
        self.config = config_from_dict(self.data, source=str(self.config_path))
        self.app: App = build_app(self.config, configure_logs=True,
                                  **({"clock": clock} if clock else {}))
        self.daemon: DaemonThread | None = None
        self.port = 0

    def start(self) -> Harness:
        self.daemon = DaemonThread(self.app)
        _, self.port = self.daemon.start()
        return self

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
            self.daemon = None
        self.app.db.dispose()

    # --- talking to it ------------------------------------------------------------------

    def send(self, raw: bytes, *, rcpt: str | list[str] = SUPPORT,
             mail_from: str = "sender@client.example") -> dict:
        rcpts = [rcpt] if isinstance(rcpt, str) else rcpt
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as smtp:
            return smtp.sendmail(mail_from, rcpts, raw)

    def cli(self, *args: str) -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli_main(["--config", str(self.config_path), *args])
        return CliResult(code, out.getvalue(), err.getvalue())

    def settle(self, timeout: float = 20.0) -> None:
        """Wait until every stored mail is processed and every due mail handed over."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.app.db.unit(write=False) as s:
                busy = s.exec(select(func.count()).select_from(Inbound)
                              .where(Inbound.state.in_(["pending", "processing"]))).one()
                sending = s.exec(select(func.count()).select_from(Outbox).where(
                    (Outbox.state == "sending") | ((Outbox.state == "pending") &
                                                   (Outbox.attempts == 0)))).one()
            if not busy and not sending:
                return
            time.sleep(0.02)
        raise AssertionError("mailgate did not settle in time")

    def tickets(self) -> list[Ticket]:
        with self.app.db.unit(write=False) as s:
            return list(s.exec(select(Ticket).order_by(Ticket.id)))

    def inbound(self) -> list[Inbound]:
        with self.app.db.unit(write=False) as s:
            return list(s.exec(select(Inbound).order_by(Inbound.id)))


def wait_until(check, what: str = "condition", timeout: float = 20.0):
    """Poll `check` until it returns something true (returned), or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
