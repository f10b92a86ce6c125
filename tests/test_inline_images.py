"""Inline `cid:` images linked to the text: the stored message names the attachment id
where the image stood (`[image: logo.png (attachment 17)]`), the attachment keeps its
Content-ID, and `ticket show` lists it as an inline image whose bytes `attachment save`
writes. A table over `mail.inline.link_images`, and end to end over real SMTP."""

from __future__ import annotations

import base64
import re

import pytest

from mailgate.mail.inline import link_images
from tests.support.harness import SUPPORT
from tests.test_parsing_recovery import PNG

FILES = [(17, "logo.png", "logo@client.example"), (18, "image001.png",
                                                     "image001.png@01DA1234.5678")]


@pytest.mark.parametrize(("text", "linked"), [
    ("Look: [image: logo.png] here", "Look: [image: logo.png (attachment 17)] here"),
    ("[cid:image001.png@01DA1234.5678]\nSee above",           # Outlook's plain part
     "[image: image001.png (attachment 18)]\nSee above"),
    ("[image: other.png] and [cid:nowhere@x]", "[image: other.png] and [cid:nowhere@x]"),
    ("[image: logo.png (attachment 17)]", "[image: logo.png (attachment 17)]"),  # once
    ("no images at all", "no images at all"),
])
def test_inline_image_markers_name_their_attachment(text, linked):
    assert link_images(text, FILES) == linked


def _related(html: str, plain: str | None, cid: str, name: str) -> bytes:
    alt = (f'--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{plain}\r\n'
           if plain is not None else "")
    body = (f'--rel\r\nContent-Type: multipart/alternative; boundary="alt"\r\n\r\n{alt}'
            f'--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--alt--\r\n'
            f'--rel\r\nContent-Type: image/png; name="{name}"\r\n'
            f'Content-Disposition: inline; filename="{name}"\r\nContent-ID: <{cid}>\r\n'
            f'Content-Transfer-Encoding: base64\r\n\r\n'
            + base64.encodebytes(PNG).decode() + '--rel--\r\n')
    head = (f"From: Carla Client <carla@client.example>\r\nTo: {SUPPORT}\r\n"
            f"Subject: Screenshot {name}\r\nMessage-ID: <{name}@client.example>\r\n"
            'MIME-Version: 1.0\r\nContent-Type: multipart/related; boundary="rel"\r\n\r\n')
    return (head + body).encode()


def test_an_html_mail_with_an_inline_image_links_it_in_ticket_show(mg, tmp_path):
    """An HTML-only mail and an Outlook mail (plain part with `[cid:…]`) each show the
    image's attachment id in the text; the file saves with its exact bytes."""
    mg.send(_related('<p>The error:</p><img src="cid:shot@client.example"><p>Help!</p>',
                     None, "shot@client.example", "shot.png"), mail_from="carla@client.example")
    mg.send(_related('<p>See:</p><img src="cid:image001.png@01DA1234.5678">',
                     "See:\r\n[cid:image001.png@01DA1234.5678]\r\nThanks for looking.",
                     "image001.png@01DA1234.5678", "image001.png"),
            mail_from="carla@client.example")
    mg.settle()
    for ticket, name in ((1, "shot.png"), (2, "image001.png")):
        shown = mg.cli("ticket", "show", str(ticket)).out
        m = re.search(rf"\[image: {re.escape(name)} \(attachment (\d+)\)\]", shown)
        assert m, shown
        assert re.search(rf"\[attachment {m.group(1)}\] {re.escape(name)} \(image/png, "
                         rf"\d+ bytes, inline image\)", shown), shown
        out = tmp_path / name
        assert mg.cli("attachment", "save", m.group(1), "-o", str(out)).code == 0
        assert out.read_bytes() == PNG
