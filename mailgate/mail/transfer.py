"""Content-Transfer-Encoding undone by hand, so a part's bytes are exactly what the sender
attached. Pure.

The standard library's `get_payload(decode=True)` reads only the first encoding header,
gives up on truncated base64 and decodes uuencode through the deprecated `uu` module. Here:
the first *valid* encoding of a part wins (a part with `7bit` and `base64` headers, or a
misspelt first one, is base64); base64 is read as far as it goes; `x-uuencode` parts and
`begin 644 name` blocks inside a text body are decoded; text in 7bit/8bit/quoted-printable
gets LF line ends (SMTP carries text with CRLF; the sender's file had LF, as the Mail gem
and Zammad read it), while base64 bytes are never touched.
"""

from __future__ import annotations

import binascii
import re
from email.message import Message

ENCODINGS = ("base64", "quoted-printable", "7bit", "8bit", "binary", "x-uuencode",
             "uuencode", "x-uue", "uue")
_IDENTITY = ("7bit", "8bit", "binary")
_NOT_B64 = re.compile(rb"[^A-Za-z0-9+/]")
_UU_BEGIN = re.compile(r"^begin [0-7]{3,4} ([^\r\n]+)\r?\n", re.MULTILINE)
_UU_END = re.compile(r"^end\s*$", re.MULTILINE)
MAX_UU_BLOCKS = 20


def transfer_encoding(part: Message) -> tuple[str, str]:
    """(encoding, defect): how `part`'s body is encoded. With several encoding headers,
    a decoding one (base64, quoted-printable, uuencode) wins over an identity label
    (7bit/8bit/binary, which relays add), when the body fits it; else the first valid."""
    values = [str(v).strip().lower() for k, v in part.raw_items()
              if k.lower() == "content-transfer-encoding"]
    valid = [v for v in values if v in ENCODINGS]
    if not valid:
        return "7bit", (f"unknown Content-Transfer-Encoding {values[0][:40]!r}"
                        if values and values[0] else "")
    if len(values) == 1:
        return valid[0], ""
    chosen = next((v for v in valid if v not in _IDENTITY and _fits(part, v)), valid[0])
    return chosen, f"{len(values)} Content-Transfer-Encoding headers; used {chosen}"


def _fits(part: Message, cte: str) -> bool:
    payload = part._payload
    if not isinstance(payload, str):
        return False
    if cte == "base64":
        return _NOT_B64.search(re.sub(r"[\s=]", "", payload).encode("ascii", "replace")) \
            is None
    return True


def decoded_payload(part: Message) -> tuple[bytes, list[str]]:
    """The bytes of a leaf part after transfer decoding, with any defects."""
    # the payload as the parser holds it (8-bit bytes as surrogate escapes): compat32's
    # get_payload() would decode those by the declared charset with errors="replace"
    payload = part._payload
    if not isinstance(payload, str):
        return b"", []
    raw = payload.encode("ascii", "surrogateescape")
    cte, defect = transfer_encoding(part)
    defects = [defect] if defect else []
    text_like = part.get_content_maintype() in ("text", "message")
    if cte == "base64":
        data, problem = base64_lenient(raw)
        if problem:
            defects.append(problem)
        return data, defects
    if cte == "quoted-printable":
        data = binascii.a2b_qp(raw.replace(b"\r\n", b"\n"))
        return (to_lf(data) if text_like else data), defects
    if cte in ("x-uuencode", "uuencode", "x-uue", "uue"):
        data, problem = uudecode(raw)
        return data, defects + ([problem] if problem else [])
    if cte == "binary":                         # declared exact: never touched
        return raw, defects
    return (to_lf(raw) if text_like else raw), defects


def to_lf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n") if b"\r\n" in data else data


def base64_lenient(raw: bytes) -> tuple[bytes, str]:
    """Base64 read as far as it goes: stray characters skipped, a cut-off end padded."""
    try:
        return binascii.a2b_base64(raw), ""        # the usual case, read as before
    except binascii.Error:
        pass
    body = raw.split(b"=", 1)[0] if b"=" in raw else raw
    clean = _NOT_B64.sub(b"", body)
    extra = len(clean) % 4
    problem = ""
    if extra == 1:                         # one character is no byte: drop it
        clean, problem = clean[:-1], "base64 cut off; decoded as far as it goes"
    elif extra:
        clean += b"=" * (4 - extra)
        problem = "base64 cut off; decoded as far as it goes"
    try:
        return binascii.a2b_base64(clean), problem
    except binascii.Error:                 # cannot happen after cleaning; be safe
        return b"", "base64 could not be decoded"


def uudecode(raw: bytes) -> tuple[bytes, str]:
    """The body of a uuencoded block (with or without its begin/end lines)."""
    out = bytearray()
    lines = raw.replace(b"\r\n", b"\n").split(b"\n")
    started = not any(line.startswith(b"begin ") for line in lines)
    for line in lines:
        if not started:
            started = line.startswith(b"begin ")
            continue
        if line.strip() == b"end":
            break
        if line.strip() in (b"", b"`"):       # "`" is the zero-length last line
            continue
        try:
            out += binascii.a2b_uu(line)
        except binascii.Error:
            # a line padded short by a mail system: decode what its length byte promises
            n = (line[0] - 32) & 63 if line else 0
            try:
                out += binascii.a2b_uu(line[:1] + line[1:].ljust((n + 2) // 3 * 4, b" "))
            except binascii.Error:
                return bytes(out), "uuencoded data is damaged; decoded as far as it goes"
    return bytes(out), ""


def inline_uuencoded(text: str) -> tuple[str, list[tuple[str, bytes]]]:
    """`begin 644 name … end` blocks inside a text body, cut out as (name, bytes)."""
    if "begin " not in text:
        return text, []
    found: list[tuple[str, bytes]] = []
    out, pos = [], 0
    for tried, m in enumerate(_UU_BEGIN.finditer(text)):
        if tried >= MAX_UU_BLOCKS:                 # bounded work on hostile text
            break
        if m.start() < pos:
            continue
        end = _UU_END.search(text, m.end())
        if end is None:
            break
        block = text[m.end():end.start()]
        if not block.strip() or not block.isascii():
            continue
        data, problem = uudecode(block.encode("ascii"))
        if problem or not data:
            continue
        found.append((m.group(1).strip(), data))
        out.append(text[pos:m.start()])
        pos = end.end()
    out.append(text[pos:])
    return "".join(out), found
