"""Files an agent attaches to a reply reach the customer; signature logos do not, and what
is too large to send stays on the ticket and is named in the mail. Over real SMTP."""

from __future__ import annotations

import email
import os
from email.message import EmailMessage
from email.policy import SMTP

import pytest

from mailgate.mail.compose import INLINE_LOGO_BYTES, attachments_to_send
from mailgate.mail.mime import ParsedAttachment
from tests.support.harness import reply_to
from tests.test_mail_commands import ANNA, CARLA, open_ticket, reply_address, show


def with_files(raw: bytes, *files: tuple[str, str, bytes, str]) -> bytes:
    """`raw` with attachments (name, type, data, content-id: inline when set)."""
    msg = email.message_from_bytes(raw, _class=EmailMessage, policy=SMTP)
    for name, ctype, data, cid in files:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name,
                           disposition="inline" if cid else "attachment",
                           cid=f"<{cid}>" if cid else None)
    return msg.as_bytes()


def files_of(received) -> dict[str, bytes]:
    return {part.get_filename(): part.get_content()
            for part in received.message.iter_attachments()}


def answered_with_files(h, body: str, *files) -> tuple[int, object, set[str]]:
    """Carla opens a ticket, Anna answers with `files`: (ticket, the mail Carla got, the
    file names kept on the ticket)."""
    n, _ack, notification = open_ticket(h)
    raw = with_files(reply_to(notification.message, sender=ANNA, body=body), *files)
    h.send(raw, rcpt=reply_address(notification), mail_from=ANNA)
    h.settle()
    forwarded = h.relay.wait_for(CARLA, 2)[1]
    return n, forwarded, {a["filename"] for a in show(h, n)["messages"][-1]["attachments"]}


def test_an_agents_files_reach_the_customer_but_not_the_signature_logo(mg):
    offer, logo = os.urandom(40_000), os.urandom(2_000)
    _n, forwarded, kept = answered_with_files(
        mg, "Anbei das Angebot.", ("Angebot 2026.pdf", "application/pdf", offer, ""),
        ("logo.png", "image/png", logo, "logo@mua.example"))
    assert "Anbei das Angebot." in forwarded.text
    assert files_of(forwarded) == {"Angebot 2026.pdf": offer}
    assert kept == {"Angebot 2026.pdf", "logo.png"}                   # all kept


def test_a_reply_that_is_only_a_file_is_still_forwarded(mg):
    scan = os.urandom(5_000)
    _n, forwarded, _kept = answered_with_files(mg, "", ("scan.jpg", "image/jpeg", scan, ""))
    assert files_of(forwarded) == {"scan.jpg": scan}


def test_a_file_too_large_to_send_is_named_and_kept_on_the_ticket(harness_factory, sqlite_url):
    h = harness_factory(sqlite_url, smtp={"max_message_bytes": 400_000}).start()
    assert h.cli("project", "add", "acme", "--name", "ACME Corp", "--customer", CARLA).code == 0
    assert h.cli("agent", "add", ANNA, "--name", "Anna Agent").code == 0
    small, big = os.urandom(10_000), os.urandom(250_000)
    n, forwarded, kept = answered_with_files(
        h, "Zwei Dateien.", ("klein.pdf", "application/pdf", small, ""),
        ("gross.zip", "application/zip", big, ""))
    assert files_of(forwarded) == {"klein.pdf": small}
    assert f"[Too large to send by mail, kept on ticket #{n}: gross.zip (244 KB)]" in \
        forwarded.text
    assert kept == {"klein.pdf", "gross.zip"}


def _att(name, ctype, size, cid=""):
    return ParsedAttachment(filename=name, content_type=ctype, size=size, sha256="",
                            content_id=cid, data=b"")


# (attachments, budget, names sent, names left out)
SELECTIONS = [
    ([_att("a.pdf", "application/pdf", 1000)], 10_000, ["a.pdf"], []),
    ([_att("logo.png", "image/png", INLINE_LOGO_BYTES - 1, cid="x")], 10**6, [], []),
    # a pasted screenshot is inline too, but no logo
    ([_att("shot.png", "image/png", INLINE_LOGO_BYTES, cid="y")], 10**6, ["shot.png"], []),
    ([_att("a.pdf", "application/pdf", 3000), _att("b.zip", "application/zip", 9000),
      _att("c.txt", "text/plain", 100)], 7000, ["a.pdf", "c.txt"], ["b.zip"]),
]


@pytest.mark.parametrize(("atts", "budget", "sent", "left"), SELECTIONS)
def test_which_files_are_sent(atts, budget, sent, left):
    chosen, left_out = attachments_to_send(atts, budget)
    assert ([a.filename for a in chosen], [a.filename for a in left_out]) == (sent, left)
