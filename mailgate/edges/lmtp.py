"""The LMTP listener (RFC 2033): how Postfix, or any MTA, hands mail to mailgate locally.

It is the SMTP listener with aiosmtpd's LMTP dialect (LHLO instead of EHLO/HELO) and the
same `IngestHandler`: the same recipient checks at RCPT, the same limits and reply codes,
the same commit before any 2xx. A mail for several recipients is stored once with all of
them (as over SMTP), and after DATA each accepted recipient gets its own reply, sent
only once that one commit has succeeded or failed, so every reply carries the same
code: 250 for all, or 451 4.3.0 for all when the store could not take the mail.

A unix socket is created mode 0660 so an MTA running as another user in mailgate's
group (Postfix's lmtp client) can connect; it never starts TLS (local delivery).
This module must never decide anything about a mail beyond what SMTP decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import stat

from aiosmtpd.lmtp import LMTP

from mailgate.edges.smtp import IngestHandler, MailgateProtocol, SmtpListener

SOCKET_MODE = 0o660


class MailgateLMTP(MailgateProtocol, LMTP):
    async def answer_data(self, status: str, recipients: int) -> None:
        """LMTP: one reply per accepted recipient (RFC 2033 4.2). The mail was stored
        once for all of them, so they share its fate."""
        for _ in range(max(recipients, 1)):
            await self.push(status)


class LmtpListener(SmtpListener):
    protocol = MailgateLMTP
    ident = "mailgate LMTP"

    def __init__(self, handler: IngestHandler, *, path: str = "", host: str = "",
                 port: int = 0, hostname: str, data_size_limit: int, max_line_bytes: int,
                 timeout: float) -> None:
        super().__init__(handler, host=host, port=port, hostname=hostname,
                         data_size_limit=data_size_limit, max_line_bytes=max_line_bytes,
                         timeout=timeout)
        self.path = path

    def describe(self) -> str:
        return f"unix:{self.path}" if self.path else f"{self.host}:{self.port}"

    async def start(self) -> tuple[str, int]:
        if not self.path:
            return await super().start()
        remove_stale_socket(self.path)
        loop = asyncio.get_running_loop()
        self.server = await loop.create_unix_server(self._factory, path=self.path)
        # bind() made it with the umask's mode; until this chmod the group may not
        # connect yet, which only delays the MTA, never opens the socket wider
        os.chmod(self.path, SOCKET_MODE)
        return self.path, 0

    async def close(self) -> None:
        await super().close()
        if self.path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


def remove_stale_socket(path: str) -> None:
    """A socket file left by a daemon that died is removed; one that still answers
    belongs to a running mailgate (or something else) and is an error, as is a path
    that is not a socket at all (never delete a file we did not make)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise OSError(f"[lmtp] socket {path!r} exists and is not a socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)
            return
    raise OSError(f"[lmtp] socket {path!r} is in use by another process")
