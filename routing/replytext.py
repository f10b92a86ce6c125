"""Split a reply into what the author wrote, their signature and the quoted history.

Pure functions over text. Mail clients mark the start of quoted history in many ways:
`>`-prefixed lines, an attribution line ("On … wrote:", "Am … schrieb …:", "Den … skrev …:"),
an Outlook header block ("From:/Sent:/To:" in English, German or Danish), or a separator
("-----Original Message-----", a line of underscores). Everything from the first *hard*
boundary (header block or separator, or an attribution followed by unquoted history) on is
history. Before it, `>` blocks with their attribution are dropped, so inline answers between
quotes are kept. A signature starts at "-- " or at a mobile footer ("Sent from my iPhone").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_SCAN_LINES = 5000  # beyond this everything is treated as history: bounded work

# Attribution lines, possibly wrapped over up to three lines (joined before matching).
_ATTRIBUTION = re.compile(
    r"""^\s*(
        (on|am|den|le|op|el|il)\b.{0,200}\b(wrote|schrieb|skrev|a\s+écrit|schreef|escribió|
          ha\s+scritto)\s*.{0,80}:
      | .{0,200}\b(wrote|schrieb|skrev|schreef)\s*:
      | .{1,120}<[^>\s]+@[^>\s]+>\s*(wrote|schrieb|skrev)\b.{0,40}
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
_OPENER = re.compile(r"^(on|am|den|le|op|el|il)\b", re.IGNORECASE)
_SEPARATOR = re.compile(
    r"""^\s*(
        -{2,}\s*(original\s+message|ursprüngliche\s+nachricht|oprindelig\s+meddelelse|
          original\s+meddelelse|videresendt\s+meddelelse|weitergeleitete\s+nachricht|
          forwarded\s+message|message\s+d'origine|begin\s+forwarded\s+message)\s*-*
      | (begin\s+forwarded\s+message|anfang\s+der\s+weitergeleiteten\s+nachricht)\s*:
      | _{20,}
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
_HEADER_FROM = re.compile(r"^\s*\*?(from|von|fra|de|van|från)\s*:\*?\s*\S", re.IGNORECASE)
_HEADER_OTHER = re.compile(
    r"^\s*\*?(sent|date|gesendet|datum|sendt|dato|envoyé|to|an|til|cc|subject|betreff|emne|"
    r"objet|onderwerp|verzonden|skickat)\s*:\*?", re.IGNORECASE)
_SIGNATURE = re.compile(r"^--\s*$")
_MOBILE = re.compile(
    r"^\s*(sent\s+from\s+my\s+\S.{0,40}|sent\s+(from|with|via)\s+\S.{0,30}(mail|outlook|"
    r"iphone|ipad|android|blackberry|phone|device)\S*|get\s+outlook\s+for\s+\S+|"
    r"(von|gesendet\s+von)\s+meinem\s+\S.{0,30}|sendt\s+fra\s+min\s+\S.{0,30})\s*$",
    re.IGNORECASE)
_QUOTED = re.compile(r"^\s*>")


@dataclass(frozen=True, slots=True)
class ReplyParts:
    body: str       # what the author wrote in this mail, inline answers included
    signature: str  # from the signature delimiter or mobile footer to the history
    quoted: str     # quoted history, as written


def _lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _attribution_at(lines: list[str], i: int) -> int:
    """Number of lines (1–3) of an attribution starting at line i, or 0."""
    line = lines[i].strip()
    if not line or _QUOTED.match(line) or len(line) > 300:
        return 0
    joined = line
    opener = _OPENER.match(line) is not None
    for span in range(1, 4 if opener else 2):
        if span > 1:
            if i + span - 1 >= len(lines) or not lines[i + span - 1].strip():
                return 0
            joined += " " + lines[i + span - 1].strip()
        if joined.endswith(":") or re.search(r"(wrote|schrieb|skrev)\b", joined, re.I):
            if _ATTRIBUTION.match(joined):
                return span
            if joined.endswith(":"):
                return 0
    return 0


def _header_block_at(lines: list[str], i: int) -> bool:
    """An Outlook-style header block: a From: line followed closely by Sent:/To:/Subject:."""
    if not _HEADER_FROM.match(lines[i]):
        return False
    others = 0
    for line in lines[i + 1:i + 6]:
        if _HEADER_OTHER.match(line):
            others += 1
    return others >= 1


def _next_content(lines: list[str], i: int) -> int:
    while i < len(lines) and not lines[i].strip():
        i += 1
    return i


def split_reply(text: str) -> ReplyParts:
    lines = _lines(text or "")
    limit = min(len(lines), MAX_SCAN_LINES)
    kept: list[str] = []
    boundary = limit
    i = 0
    while i < limit:
        line = lines[i]
        if _SEPARATOR.match(line) or _header_block_at(lines, i):
            boundary = i
            break
        span = _attribution_at(lines, i)
        if span:
            after = _next_content(lines, i + span)
            if after < len(lines) and _QUOTED.match(lines[after]):
                # attribution of an inline quote: drop it and the quote, keep scanning
                i = after
                while i < limit and (_QUOTED.match(lines[i]) or not lines[i].strip()):
                    i += 1
                continue
            boundary = i  # attribution followed by unquoted history (Gmail text parts)
            break
        if _QUOTED.match(line):
            i += 1
            continue
        kept.append(line)
        i += 1
    quoted = "\n".join(lines[boundary:]).strip("\n") if boundary < len(lines) else ""
    body_lines, signature_lines = _cut_signature(kept)
    return ReplyParts(body=_tidy(body_lines), signature=_tidy(signature_lines), quoted=quoted)


def _cut_signature(lines: list[str]) -> tuple[list[str], list[str]]:
    for n, line in enumerate(lines):
        if _SIGNATURE.match(line.rstrip()) and line.startswith("--"):
            return lines[:n], lines[n:]
    # a mobile footer ends the body only when nothing but blank lines follows it
    for n in range(len(lines) - 1, -1, -1):
        if not lines[n].strip():
            continue
        if _MOBILE.match(lines[n]):
            return lines[:n], lines[n:]
        break
    return lines, []


def _tidy(lines: list[str]) -> str:
    while lines and re.fullmatch(r"\s*([-_=*]{3,}\s*)?", lines[-1]):
        lines = lines[:-1]
    text = "\n".join(line.rstrip() for line in lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


def top_lines(text: str, limit: int = 20) -> list[str]:
    """The first lines the author wrote, before any quoted or signature line (at most `limit`).

    Mail commands are read from these lines only: a command quoted from an older mail
    (`> /close`) or sitting below the signature is never seen.
    """
    out: list[str] = []
    lines = _lines(text or "")
    for i, line in enumerate(lines[:MAX_SCAN_LINES]):
        if len(out) >= limit:
            break
        if (_QUOTED.match(line) or _SEPARATOR.match(line) or _header_block_at(lines, i)
                or _attribution_at(lines, i) or _SIGNATURE.match(line.rstrip())):
            break
        out.append(line)
    return out
