"""The exact bytes of mails attached as `message/rfc822`, cut from the raw mail.

The standard library parses an attached mail into a Message, and writing that back
(`as_bytes`) changes line endings, folding and padding, so a saved `.eml` would no longer
be what the sender attached (and its DKIM signature would break). Here each attached mail
is cut out of the raw bytes instead: the body of the `k`-th part between its parent's
boundary delimiters (RFC 2046 §5.1.1). The cut is used only when it parses to the same
Subject and Message-ID as the parsed part, else the caller falls back to `as_bytes`.
Pure.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import re
from email.message import Message

MAX_ATTACHED = 50


def attached_mails(msg: Message, raw: bytes) -> dict[int, bytes]:
    """{id(part): its attached mail's bytes} for each message/rfc822 part of `msg` (the
    Message parsed from `raw`) whose bytes can be cut out exactly."""
    out: dict[int, bytes] = {}
    for parent in msg.walk():
        if len(out) >= MAX_ATTACHED:
            break
        children = parent.get_payload() if parent.is_multipart() else None
        boundary = parent.get_boundary() if children else None
        if not boundary or not isinstance(children, list):
            continue
        wanted = [(n, c) for n, c in enumerate(children) if isinstance(c, Message)
                  and c.get_content_type() == "message/rfc822"
                  and (c.get("Content-Transfer-Encoding") or "7bit").strip().lower()
                  in ("7bit", "8bit", "binary")]
        if not wanted:
            continue
        pieces = _parts(raw, boundary)
        if pieces is None or len(pieces) != len(children):
            continue
        for n, part in wanted:
            data = _body(pieces[n])
            if data is not None and _same(part, data):
                out[id(part)] = data
    return out


def _parts(raw: bytes, boundary: str) -> list[bytes] | None:
    """The bytes of each body part between the delimiters of `boundary`; None when the
    boundary is ambiguous (it delimits more than one multipart)."""
    b = re.escape(boundary.encode("ascii", "surrogateescape"))
    delims = list(re.finditer(rb"(?m)(\r?\n|\A)--" + b + rb"(--)?[ \t]*(?:\r?\n|\Z)", raw))
    closes = [d for d in delims if d.group(2)]
    if len(closes) > 1 or not delims:
        return None
    parts = []
    for d, nxt in itertools.pairwise(delims):
        if d.group(2):
            return None             # a part after the close delimiter: not ours
        parts.append(raw[d.end():nxt.start()])
    return parts


def _body(part: bytes) -> bytes | None:
    """What follows the part's header block (its first empty line)."""
    m = re.search(rb"\r?\n\r?\n", part)
    if part.startswith((b"\r\n", b"\n")):        # a part with no headers at all
        return part[2 if part.startswith(b"\r\n") else 1:]
    return part[m.end():] if m else None


def _same(part: Message, data: bytes) -> bool:
    inner = part.get_payload()
    inner = inner[0] if isinstance(inner, list) and inner else None
    if not isinstance(inner, Message):
        return False
    cut = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(data)
    return all(str(cut.get(h, "")).split() == str(inner.get(h, "")).split()
               for h in ("Subject", "Message-ID", "From", "Date"))
