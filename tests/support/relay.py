"""A real SMTP server (aiosmtpd) that plays the outgoing relay in tests.

It records every mail it accepts and can be told to answer a chosen command with a
given reply, or to drop the connection after the final dot without answering.
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.raw, policy=email.policy.default)

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        msg = self.message
        part = msg.get_body(("plain",)) if msg.is_multipart() else msg
        return part.get_content()

    def header(self, name: str) -> str | None:
        value = self.message[name]
        return None if value is None else str(value)


@dataclass
class _Rule:
    command: str
    reply: str
    times: int


@dataclass
class _Handler:
    relay: RelaySink
    rules: list[_Rule] = field(default_factory=list)

    def _rule(self, command: str) -> str | None:
        with self.relay.lock:
            for rule in self.rules:
                if rule.command == command and rule.times != 0:
                    rule.times -= 1
                    return rule.reply
        return None

    async def handle_MAIL(self, server, session, envelope, address, options):
        reply = self._rule("MAIL")
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, options):
        reply = self._rule("RCPT")
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        reply = self._rule("DATA")
        received = Received(envelope.mail_from, list(envelope.rcpt_tos),
                            envelope.original_content)
        if reply == "DISCONNECT":
            with self.relay.lock:
                self.relay.dropped.append(received)
            server.transport.close()
            return "250 never seen"
        if reply:
            return reply
        with self.relay.lock:
            self.relay.messages.append(received)
        return "250 OK queued"


class RelaySink:
    def __init__(self, port: int | None = None, *, tls_context=None,
                 logins: dict[str, str] | None = None) -> None:
        """With `tls_context` the relay requires STARTTLS; with `logins` (user: password) it
        requires AUTH and records who logged in (`authenticated`)."""
        self.port = port or free_port()
        self.lock = threading.Lock()
        self.messages: list[Received] = []
        self.dropped: list[Received] = []
        self.authenticated: list[str] = []
        self.handler = _Handler(self)
        self.options: dict = {}
        if tls_context is not None:
            self.options |= {"tls_context": tls_context, "require_starttls": True}
        if logins is not None:
            self.options |= {"authenticator": self._authenticator(logins),
                             "auth_required": True}
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port,
                                     **self.options)
        self.running = False

    def start(self) -> RelaySink:
        self.controller.start()
        self.running = True
        return self

    def stop(self) -> None:
        if self.running:
            self.controller.stop()
            self.running = False

    def restart(self) -> RelaySink:
        """Listen again on the same port after `stop()` (a relay that comes back)."""
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port,
                                     **self.options)
        return self.start()

    def _authenticator(self, logins: dict[str, str]):
        from aiosmtpd.smtp import AuthResult, LoginPassword

        def check(server, session, envelope, mechanism, auth_data):
            if not isinstance(auth_data, LoginPassword):
                return AuthResult(success=False, handled=False)
            user = auth_data.login.decode()
            ok = logins.get(user) == auth_data.password.decode()
            if ok:
                with self.lock:
                    self.authenticated.append(user)
            return AuthResult(success=ok, handled=False)

        return check

    def fail(self, command: str, reply: str, times: int = -1) -> None:
        """Answer `command` (MAIL, RCPT or DATA) with `reply`; DATA may be 'DISCONNECT'."""
        with self.lock:
            self.handler.rules.append(_Rule(command.upper(), reply, times))

    def heal(self) -> None:
        with self.lock:
            self.handler.rules.clear()

    def to(self, address: str) -> list[Received]:
        with self.lock:
            return [m for m in self.messages if address in m.rcpt_tos]

    def wait_for(self, address: str, count: int = 1, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.to(address)
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"relay got {len(self.to(address))} mail(s) for {address}, "
                             f"expected {count}; all recipients: "
                             f"{[m.rcpt_tos for m in self.messages]}")
