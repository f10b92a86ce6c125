"""Large parts are decoded straight from the raw bytes, not through the parser.

The standard library's parser holds a mail as text and as a list of lines while it
works: a 20 MB attachment costs some 150 MB. A part the pre-check found to be a leaf,
larger than `LARGE`, and an attachment by its headers (a file name, a disposition of
attachment, or a type that is not text) is decoded here a piece at a time (base64,
quoted-printable or as it is), and the parser is given the mail with that body cut out
and a header naming the decoded piece. The header's name holds a random nonce, so a
sender cannot point it at anything.
"""

from __future__ import annotations

import binascii
import re
import secrets
from dataclasses import dataclass

from mailgate.mail.mimecheck import Leaf
from mailgate.mail.transfer import ENCODINGS, to_lf

LARGE = 256 * 1024
# (the type test looks ahead past the spaces itself: `\s*(?!text/)` would backtrack to
# zero spaces and take every big text/plain body for an attachment)
_ATTACHMENT = re.compile(rb"(?i)(content-disposition\s*:\s*attachment|\bfilename\*?\s*=|"
                         rb"\bname\*?\s*=|content-type\s*:(?!\s*(?:text|multipart|message)/))")
# The encoding fields of a part (a line start may follow a bare CR), each value to the
# end of the line, compared whole.
_CTE = re.compile(rb"(?i)(?<![^\r\n])content-transfer-encoding:[ \t]*([^\r\n]*)")
_NOT_TEXT = re.compile(rb"(?im)^content-type:(?![ \t]*(?:text|message)/)")
_VALID = tuple(e.encode("ascii") for e in ENCODINGS)      # base64 and q-p first


@dataclass(frozen=True)
class Extracted:
    raw: bytes                       # the mail with the large bodies cut out
    header: str                      # the header that names a decoded body
    bodies: tuple[bytes, ...]        # decoded, by the number the header gives


def extract(raw: bytes, leaves: tuple[Leaf, ...]) -> Extracted | None:
    big = [leaf for leaf in leaves if leaf.body_end - leaf.body_start > LARGE
           and _ATTACHMENT.search(raw, leaf.head_start, leaf.head_end)]
    if not big:
        return None
    header = f"X-Mailgate-Body-{secrets.token_hex(8)}"
    pieces, bodies, pos = [], [], 0
    view = memoryview(raw)
    for leaf in big:
        # a decoding encoding wins over an identity label, as in mail.transfer
        ctes = [m[1].strip().lower()
                for m in _CTE.finditer(raw, leaf.head_start, leaf.head_end)]
        cte = next((c for c in ctes if c in _VALID[:2]),
                   next((c for c in ctes if c in _VALID), ctes[0] if ctes else b""))
        body = _decode(view[leaf.body_start:leaf.body_end], cte)
        if body is not None and cte in (b"", b"7bit", b"8bit", b"quoted-printable") and \
                not _NOT_TEXT.search(raw, leaf.head_start, leaf.head_end):
            body = to_lf(body)              # text line ends as mail.transfer reads them
        if body is None:
            continue                                   # left to the parser
        # numbered by the decoded bodies, so a part left to the parser shifts nothing
        pieces += [view[pos:leaf.head_end], f"\r\n{header}: {len(bodies)}".encode("ascii"),
                   view[leaf.head_end:leaf.body_start]]
        bodies.append(body)
        pos = leaf.body_end
    if not bodies:
        return None
    pieces.append(view[pos:])
    return Extracted(b"".join(pieces), header, tuple(bodies))


def _decode(span: memoryview, cte: bytes) -> bytes | None:
    if cte == b"base64":
        try:
            return binascii.a2b_base64(span)           # skips line ends and stray bytes
        except binascii.Error:
            return None                                # truncated: the parser decides
    if cte == b"quoted-printable":
        return binascii.a2b_qp(bytes(span))
    if cte in (b"", b"7bit", b"8bit", b"binary"):
        return bytes(span)
    return None                                        # x-uuencode and the like
