"""The SMTP client side of sending: one connection to the relay, reused for a batch of
mails, and what an error from the relay means for the mail (retry or give up).

A mail the relay refuses with a reply leaves the connection usable (RSET, then the next
mail); a lost connection or a 421 closes it, and the next mail opens a new one. Blocking
smtplib; the caller runs it in a thread of its own.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl

from mailgate.config import OutboundConfig, read_secret_file
from store.models import OutboxState

# an address smtplib would only put in angle brackets (its `quoteaddr` parses every one)
_PLAIN = re.compile(r"[^\s<>()\[\]\\\",;:@]+@[^\s<>()\[\]\\\",;:@]+")


class _Connection(smtplib.SMTP):
    """smtplib's client, keeping the relay's answer to the data of the last mail
    (`sendmail` drops it; `mailgate trace` shows it), and writing plain ASCII addresses
    without parsing them again for every mail."""

    last_reply = ""

    def mail(self, sender, options=()):
        if "SMTPUTF8" in options or not (sender.isascii() and _PLAIN.fullmatch(sender)):
            return super().mail(sender, options)   # (smtplib switches to UTF-8 here)
        listed = "".join(f" {o}" for o in options) if self.does_esmtp else ""
        self.putcmd("mail", f"FROM:<{sender}>{listed}")
        return self.getreply()

    def rcpt(self, recip, options=()):
        if options or not (recip.isascii() and _PLAIN.fullmatch(recip)):
            return super().rcpt(recip, options)
        self.putcmd("rcpt", f"TO:<{recip}>")
        return self.getreply()

    def data(self, msg):
        code, reply = super().data(msg)
        self.last_reply = f"{code} {reply.decode('utf-8', 'replace')}"[:500]
        return code, reply


class Relay:
    """One SMTP connection to the relay, reused for a batch."""

    def __init__(self, cfg: OutboundConfig, local_hostname: str | None = None) -> None:
        self.cfg = cfg
        self.local_hostname = local_hostname
        self.conn: smtplib.SMTP | None = None

    def open(self) -> None:
        conn = _Connection(self.cfg.host, self.cfg.port, timeout=self.cfg.timeout_seconds,
                           local_hostname=self.local_hostname)
        try:
            conn.ehlo()
            if self.cfg.starttls:
                conn.starttls(context=ssl.create_default_context(
                    cafile=self.cfg.tls_ca_file or None))
                conn.ehlo()
            password = self.cfg.password or (read_secret_file(self.cfg.password_file)
                                             if self.cfg.password_file else "")
            if self.cfg.username:
                conn.login(self.cfg.username, password)
        except BaseException:
            # a refused login or handshake must not leave the socket to the collector
            conn.close()
            raise
        self.conn = conn

    def send(self, mail_from: str, rcpt: str, raw: bytes) -> str:
        """Hand one mail over; returns the relay's reply to it."""
        if self.conn is None:
            self.open()
        options: list[str] = []
        if not (mail_from.isascii() and rcpt.isascii()):
            # an internationalised address (jürgen@…) travels only with SMTPUTF8; a relay
            # without it refuses this one mail for good, not the connection
            if not self.conn.has_extn("smtputf8"):
                raise smtplib.SMTPRecipientsRefused({rcpt: (
                    553, b"5.6.7 the relay does not offer SMTPUTF8, needed for this address")})
            options = ["SMTPUTF8"]
        self.conn.sendmail(mail_from, [rcpt], raw, mail_options=options)
        return self.conn.last_reply

    def usable(self) -> bool:
        """Open, and not closed by smtplib after a lost connection or a 421."""
        return self.conn is not None and self.conn.sock is not None

    def reset(self) -> None:
        """RSET after a mail the relay refused, so the next one starts a clean
        transaction on the same connection; a connection that fails it is closed."""
        try:
            if self.usable():
                self.conn.rset()
        except (smtplib.SMTPException, OSError):
            self.close()

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.quit()
            except (smtplib.SMTPException, OSError):
                self.conn.close()
            self.conn = None


def classify_smtp_error(exc: BaseException) -> tuple[str, str]:
    """('failed' | 'pending', readable detail) for an error from the relay."""
    code, text = None, str(exc)
    if isinstance(exc, smtplib.SMTPAuthenticationError | smtplib.SMTPNotSupportedError):
        # our credentials or the relay's setup, not this mail: keep it until fixed
        return OutboxState.PENDING, f"relay login failed ({exc}); check [outbound] username and " \
                          "password"[:500]
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, msg = next(iter(exc.recipients.values()))
        text = msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg)
    elif isinstance(exc, smtplib.SMTPResponseException):
        code = exc.smtp_code
        text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) \
            else str(exc.smtp_error)
    if code is not None:
        detail = f"{code} {text}".strip()[:500]
        return (OutboxState.FAILED if 500 <= code < 600 else OutboxState.PENDING), detail
    if isinstance(exc, smtplib.SMTPServerDisconnected | OSError | socket.timeout):
        return OutboxState.PENDING, f"{type(exc).__name__}: {exc}"[:500]
    return OutboxState.PENDING, f"{type(exc).__name__}: {exc}"[:500]


def answered(exc: BaseException) -> bool:
    """Whether the relay refused the mail with a reply (the connection still works),
    rather than the connection failing."""
    return isinstance(exc, smtplib.SMTPRecipientsRefused | smtplib.SMTPSenderRefused
                      | smtplib.SMTPDataError)
