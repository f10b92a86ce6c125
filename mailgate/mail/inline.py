"""Inline images linked to the text: `[image: name (attachment 17)]`.

An HTML body's `<img src="cid:…">` becomes `[image: name]` when it is turned into text
(mail.htmltext), and Outlook's plain part writes `[cid:image001.png@01DA…]` where the
image was. Once the attachments are stored and have ids, both are rewritten to name the
stored attachment, so `ticket show` says which file `mailgate attachment save` fetches.
Pure: text and (id, name, Content-ID) rows in, text out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_CID = re.compile(r"\[cid:([^\]\s]{1,255})\]")
_IMAGE = re.compile(r"\[image: ([^\]\n]{1,255})\]")


def link_images(text: str, files: Sequence[tuple[int, str, str]]) -> str:
    """`text` with each inline image marker naming its attachment's id. A marker whose
    image is not among `files` stays as it is."""
    if not text or not files or "[" not in text:
        return text
    by_cid = {cid.strip("<>"): (n, name) for n, name, cid in files if cid}
    by_name: dict[str, int] = {}
    for n, name, _cid in files:
        by_name.setdefault(name, n)

    def cid_ref(m: re.Match) -> str:
        found = by_cid.get(m.group(1))
        return f"[image: {found[1]} (attachment {found[0]})]" if found else m.group(0)

    def named(m: re.Match) -> str:
        n = by_name.get(m.group(1))
        return f"[image: {m.group(1)} (attachment {n})]" if n is not None else m.group(0)

    return _IMAGE.sub(named, _CID.sub(cid_ref, text))
