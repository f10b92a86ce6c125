"""The SMTP listener: refuse what we do not serve at RCPT, commit before 250.

Replies: unknown recipient 550 5.1.1 at RCPT; too big 552 (aiosmtpd, at MAIL for SIZE=
and after DATA); a mail looping through ≥ max_received_headers hops 554 5.4.6; store
unavailable 451 4.3.0; disk full 452 4.3.1; any unexpected error 451 4.3.0 without
internals (aiosmtpd's own default would be a permanent 500 that bounces the mail).
While shutting down, new connections get 421 and sessions already in DATA may finish.
The conversation never waits for parsing: that happens after the commit.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from collections.abc import Callable

import structlog
from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session, syntax

from mailgate.edges.smtpdata import read_data
from mailgate.edges.spill import SpilledRaw, head_of
from mailgate.edges.spool import Arrival, Spool
from routing.addresses import Recipient, RecipientRules, classify_recipient
from routing.loops import count_received
from store.db import StoreFull, StoreUnavailable, classify_error

log = structlog.get_logger("mailgate.smtp")
TEMPFAIL = "451 4.3.0 Temporary local problem, please try again later"
DISKFULL = "452 4.3.1 Insufficient system storage, please try again later"
# a dot-atom local part @ a host name, and what follows it the way aiosmtpd's parser
# leaves it (blanks dropped; a comment after the path goes the slow way)
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_SIMPLE_PATH = re.compile(
    rf"<({_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>[ \t]*+(?!\()")


class IngestHandler:
    """The hooks SMTP and LMTP share: the same recipient checks, limits and replies.

    `source` is what the stored row says it came in by; `on_reply(stage, reply)`, when
    given, hears every reply that ends a RCPT or a DATA (the metrics count them)."""

    def __init__(self, rules: RecipientRules, spool: Spool, *, max_recipients: int,
                 max_received: int, source: str = "smtp",
                 on_reply: Callable[[str, str], None] | None = None) -> None:
        self.rules = rules
        self.spool = spool
        self.max_recipients = max_recipients
        self.max_received = max_received
        self.source = source
        self.on_reply = on_reply

    def note(self, stage: str, reply: str) -> str:
        if self.on_reply is not None:
            self.on_reply(stage, reply)
        return reply

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        return self.note("rcpt", self._rcpt(session, envelope, address, rcpt_options))

    def _rcpt(self, session: Session, envelope: Envelope, address: str,
              rcpt_options: list[str]) -> str:
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return "452 4.5.3 Too many recipients"
        verdict = classify_recipient(address, self.rules)
        if not isinstance(verdict, Recipient):
            log.info("recipient refused", rcpt=address[:200], why=verdict.reason,
                     peer=_peer(session), listener=self.source)
            return verdict.code
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return self.note("data", await self._data(session, envelope))

    async def _data(self, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        try:
            return await self._store(session, envelope, raw)
        finally:
            if isinstance(raw, SpilledRaw):
                raw.close()         # stored (or refused): the temporary file goes

    async def _store(self, session: Session, envelope: Envelope, raw) -> str:
        hops = count_received(head_of(raw))
        if hops >= self.max_received:
            log.warning("mail loop refused", received_headers=hops, peer=_peer(session))
            return "554 5.4.6 Too many hops (mail loop detected)"
        arrival = Arrival(raw=raw, mail_from=envelope.mail_from or "",
                          rcpt_tos=tuple(envelope.rcpt_tos), source=self.source,
                          peer=_peer(session), helo=session.host_name or "")
        try:
            row_id = await self.spool.accept(arrival)
        except Exception as exc:
            mapped = exc if isinstance(exc, StoreUnavailable) else classify_error(exc)
            log.error("mail not stored", error=f"{type(exc).__name__}: {exc}"[:300],
                      peer=_peer(session))
            return DISKFULL if isinstance(mapped, StoreFull) else TEMPFAIL
        return f"250 2.0.0 OK queued as {row_id}"

    async def handle_exception(self, error: Exception) -> str:
        log.error("smtp session error", error=f"{type(error).__name__}: {error}"[:300])
        return TEMPFAIL


def _peer(session: Session) -> str:
    peer = session.peer
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer or "")


class MailgateProtocol:
    """What mailgate changes in aiosmtpd's SMTP, for SMTP and LMTP alike: a per-listener
    line limit, and DATA read in large pieces (see `smtpdata`).

    RFC 5321 allows 1,000 bytes per line but real Outlook mail has far longer ones;
    aiosmtpd would refuse those with 500. The limit here bounds memory per line while
    accepting them (a longer line still gets 500, after the data is drained).
    """

    def __init__(self, handler, *, max_line_bytes: int, **kwargs) -> None:
        self.line_length_limit = max_line_bytes
        super().__init__(handler, **kwargs)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """The path of MAIL FROM / RCPT TO: a plain `<local@domain>` without aiosmtpd's
        RFC 5322 parser (which also defines a class at every call: a tenth of a
        millisecond per command), anything else through aiosmtpd's own."""
        simple = _SIMPLE_PATH.match(arg)
        if simple is None:
            return super()._getaddr(arg)
        address = simple.group(1)
        if self.local_part_limit and address.rindex("@") > self.local_part_limit:
            return None, None
        return address, arg[simple.end():]

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA with the data read in large pieces (see `smtpdata`)."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        data = await read_data(self._reader, size_limit=self.data_size_limit,
                               line_limit=self.line_length_limit)
        recipients = len(self.envelope.rcpt_tos)
        if data.content is None:
            if data.refusal:
                self._note("data", data.refusal)
                await self.answer_data(data.refusal, recipients)
                self._set_post_data_state()
            return
        self.envelope.content = self.envelope.original_content = data.content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.answer_data("250 OK" if status is MISSING else status, recipients)

    def _note(self, stage: str, reply: str) -> None:
        note = getattr(self.event_handler, "note", None)
        if note is not None:
            note(stage, reply)

    async def answer_data(self, status: str, recipients: int) -> None:
        """SMTP: one reply for the mail."""
        await self.push(status)


class MailgateSMTP(MailgateProtocol, SMTP):
    pass


class _Refuse(asyncio.Protocol):
    """Answers 421 and hangs up: what new connections get while we shut down."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(b"421 4.3.2 Service shutting down, try again later\r\n")
        transport.close()


def tls_context(cert_file: str, key_file: str) -> ssl.SSLContext | None:
    """The server context for STARTTLS, or None when no certificate is configured."""
    if not cert_file:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context


class SmtpListener:
    """One listening socket and its sessions; `protocol` and `ident` make it an LMTP
    listener too (see `edges.lmtp`), which is then reached by `host`/`port` or by a
    unix socket `path`."""

    protocol: type[MailgateProtocol] = MailgateSMTP
    ident = "mailgate ESMTP"

    def __init__(self, handler: IngestHandler, *, host: str, port: int, hostname: str,
                 data_size_limit: int, max_line_bytes: int, timeout: float,
                 tls_context: ssl.SSLContext | None = None, require_tls: bool = False) -> None:
        self.handler = handler
        self.tls_context = tls_context
        self.require_tls = require_tls
        self.host = host
        self.port = port
        self.hostname = hostname or socket.getfqdn()
        self.data_size_limit = data_size_limit
        self.max_line_bytes = max_line_bytes
        self.timeout = timeout
        self.server: asyncio.base_events.Server | None = None
        self.sessions: set[MailgateProtocol] = set()
        self.draining = False

    def _factory(self) -> asyncio.Protocol:
        if self.draining:
            return _Refuse()
        proto = self.protocol(self.handler, max_line_bytes=self.max_line_bytes,
                              data_size_limit=self.data_size_limit, enable_SMTPUTF8=True,
                              decode_data=False, hostname=self.hostname,
                              ident=self.ident, timeout=self.timeout,
                              tls_context=self.tls_context,
                              require_starttls=self.require_tls,
                              loop=asyncio.get_running_loop())
        self.sessions.add(proto)
        return proto

    async def start(self) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(self._factory, host=self.host, port=self.port,
                                               reuse_address=True)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.host, self.port

    def _live(self) -> list[MailgateProtocol]:
        alive = {s for s in self.sessions if s.transport is not None}
        self.sessions = alive
        return list(alive)

    async def drain(self, timeout: float) -> int:
        """Refuse new connections with 421; give open sessions `timeout` to finish.

        Returns how many sessions had to be cut off.
        """
        self.draining = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            busy = [s for s in self._live() if _in_transaction(s)]
            if not busy:
                break
            await asyncio.sleep(0.05)
        cut = 0
        for s in self._live():
            if _in_transaction(s):
                cut += 1
            if s.transport is not None:
                s.transport.close()
        return cut

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None


def _in_transaction(proto: MailgateProtocol) -> bool:
    """A session counts as busy from MAIL FROM until its DATA is answered."""
    env = proto.envelope
    return env is not None and (env.mail_from is not None or bool(env.rcpt_tos))
