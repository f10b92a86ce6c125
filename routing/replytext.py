"""Split a reply into what the author wrote, their signature and the quoted history.

Pure functions over text. Mail clients mark the start of quoted history in many ways:
`>`-prefixed lines, an attribution line ("On … wrote:", "Am … schrieb …:", "Em … escreveu:",
"… написал:", a Gmail "2016-03-03 17:21 GMT+01:00 Name <a@b>:"), an Outlook header block
("From:/Sent:/To:", "Von:/Gesendet:/An:", "Da:/Inviato:/A:" …), or a separator
("-----Original Message-----", "-----Mensaje original-----", a line of underscores), in
the languages listed below. Everything from the first *hard* boundary (header block or
separator, or an attribution followed by unquoted history) on is history. Before it, `>`
blocks with their attribution are dropped, so inline and bottom-posted answers are kept.
A signature starts at "-- " or at a mobile footer ("Sent from my iPhone", "Von meinem
iPhone gesendet", "Sendt fra min iPhone" …). A mail with no new text keeps everything.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

MAX_SCAN_LINES = 5000  # beyond this everything is treated as history: bounded work

# Attribution lines ("On … wrote:"), possibly wrapped over up to three lines (joined
# before matching). Openers and verbs in the languages our users write: English, German,
# Danish, Norwegian, Swedish, French, Spanish, Italian, Dutch, Portuguese, Polish,
# Russian, Ukrainian (and Finnish, which costs one word).
_VERB = (r"wrote|writes|schrieb|schreibt|skrev|skriver|a\s+écrit|a\s+ecrit|schreef|"
         r"geschreven|escribió|escribio|ha\s+scritto|scrisse|escreveu|napisał\(a\)|"
         r"napisał|napisała|napisal|pisze|написал\(а\)|написала|написал|пишет|"
         r"написав\(ла\)|написав|пише|kirjoitti")
_OPENER_WORDS = r"on|am|den|d\.|le|op|el|il|em|w\s+dniu|dnia|в|у"
_ATTRIBUTION = re.compile(
    rf"""^\s*(
        ({_OPENER_WORDS})\b.{{0,250}}(?<!\w)({_VERB})(?!\w).{{0,80}}:
      | .{{0,250}}(?<!\w)({_VERB})(?!\w)\s*:
      | .{{1,160}}<[^>\s]+@[^>\s]+>\s*({_VERB})(?!\w).{{0,40}}
      | .{{1,120}}(?<!\w)({_VERB})\s+({_OPENER_WORDS})\s.{{0,120}}:
      | .{{0,120}}\d{{1,2}}[:.]\d{{2}}.{{0,160}}[\w.+-]+@[\w-]+(\.[\w-]+)+>?\)?\s*:
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
_OPENER = re.compile(rf"^({_OPENER_WORDS})\b", re.IGNORECASE)
_VERB_AT_END = re.compile(rf"(?<!\w)({_VERB})(?!\w)\s*:?\s*$", re.IGNORECASE)
# "---- On … wrote ----" and "*On … wrote:*": decoration around an attribution.
_DECORATION = re.compile(r"^[\s*_-]*(.*?)[\s*_-]*$")
_SEPARATOR = re.compile(
    r"""^[\s*>]*(
        -{2,}\s*(original\s+message|ursprüngliche\s+nachricht|original\s+nachricht|
          oprindelig\s+meddelelse|original\s+meddelelse|opprinnelig\s+melding|
          ursprungligt\s+meddelande|originalmeddelande|message\s+d'origine|
          message\s+original|mensaje\s+original|messaggio\s+originale|
          oorspronkelijk\s+bericht|origineel\s+bericht|mensagem\s+original|
          wiadomość\s+oryginalna|oryginalna\s+wiadomość|исходное\s+сообщение|
          оригинальное\s+сообщение|вихідне\s+повідомлення|оригінальне\s+повідомлення|
          forwarded\s+message|weitergeleitete\s+nachricht|videresendt\s+meddelelse|
          videresendt\s+melding|vidarebefordrat\s+meddelande|message\s+transféré|
          mensaje\s+reenviado|messaggio\s+inoltrato|doorgestuurd\s+bericht|
          mensagem\s+encaminhada|wiadomość\s+przekazana|пересланное\s+сообщение|
          переслане\s+повідомлення|begin\s+forwarded\s+message)\s*:?\s*-*
      | (begin\s+forwarded\s+message|anfang\s+der\s+weitergeleiteten\s+nachricht|
          début\s+du\s+message\s+réexpédié|inicio\s+del\s+mensaje\s+reenviado|
          inizio\s+messaggio\s+inoltrato|begin\s+doorgestuurd\s+bericht|
          início\s+da\s+mensagem\s+reencaminhada)\s*:
      | _{20,}
    )[\s*]*$""",
    re.IGNORECASE | re.VERBOSE,
)
# Outlook-style header blocks: a From line followed closely by Sent/To/Subject lines, in
# each language's words (French puts a space before the colon).
_HEADER_FROM = re.compile(
    r"^\s*\*?(from|von|fra|de|van|från|da|od|от|від|lähettäjä)\s*:\*?\s*\S", re.IGNORECASE)
_HEADER_OTHER = re.compile(
    r"^\s*\*?(sent|date|to|cc|subject|gesendet|datum|an|betreff|sendt|dato|til|emne|"
    r"envoyé|à|objet|enviado|enviada|fecha|para|asunto|assunto|inviato|data|a|oggetto|"
    r"verzonden|aan|onderwerp|skickat|till|ämne|wysłano|wysłane|do|temat|отправлено|"
    r"дата|кому|тема|надіслано|коли|lähetetty|vastaanottaja|aihe)\s*:\*?", re.IGNORECASE)
_SIGNATURE = re.compile(r"^--\s*$")
# Footers that mail apps on phones add; "…<https://aka.ms/…>" is how Outlook Mobile's
# link arrives in a text part, its words in the phone's language ("Outlook für iOS
# beziehen", "Hent Outlook til iOS", "Получить Outlook для iOS").
_MOBILE = re.compile(
    r"""^\s*(
        sent\s+from\s+my\s+\S.{0,40}
      | sent\s+(from|with|via|using)\s+([^,.]{0,30}\s)?\S*(mail|outlook|iphone|ipad|android|
          blackberry|phone|device|mobile|galaxy)\S*(\s+(for|mobile)\b[^,.]{0,20})?
      | get\s+outlook\s+for\s+\S+
      | ([^<>]{0,40}\s)?outlook\s[^<>]{0,30}\b(ios|android)\b[^<>]{0,20}
      | (von|gesendet\s+von)\s+meinem\s+\S.{0,30}
      | gesendet\s+(mit|von)\s+\S.{0,30}(app|mail|iphone|android|outlook)
      | sendt\s+fra\s+(min|mit|min\s+\S+)\s+\S.{0,30}
      | skickat\s+från\s+min\s+\S.{0,30}
      | envoyé\s+(de|depuis|à\s+partir\s+de)\s+mon\s+\S.{0,30}
      | enviado\s+(desde|de|do)\s+(mi|meu|o\s+meu|my)\s+\S.{0,30}
      | inviato\s+da(l)?\s+(mio\s+)?\S.{0,30}
      | (verzonden|verstuurd)\s+(vanaf|met|van)\s+(mijn\s+)?\S.{0,30}
      | wysłane\s+z\s+(mojego\s+)?\S.{0,30}
      | отправлено\s+(с|из)\s+\S.{0,30}
      | надіслано\s+з\s+\S.{0,30}
    )\s*(<[^<>\s]{1,200}>)?\s*$""",
    re.IGNORECASE | re.VERBOSE)
_QUOTED = re.compile(r"^\s*>")
_TRACKER = "\u1427"   # ᐧ: Gmail's read-tracking marker, invisible in the mail client


@dataclass(frozen=True, slots=True)
class ReplyParts:
    body: str       # what the author wrote in this mail, inline answers included
    signature: str  # from the signature delimiter or mobile footer to the history
    quoted: str     # quoted history, as written


def _lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _attribution_at(lines: list[str], i: int) -> int:
    """Number of lines (1–3) of an attribution starting at line i, or 0."""
    line = _undecorated(lines[i])
    if not line or _QUOTED.match(lines[i]) or len(line) > 300:
        return 0
    if lines[i].lstrip().startswith("--") and _OPENER.match(line) and \
            _VERB_AT_END.search(line):
        return 1                       # "---- On … wrote ----": no colon needed
    joined = line
    # only a line that starts like an attribution (an opener word, a date, an address)
    # may continue on the next: "Hi," followed by "Carla wrote:" is two things
    wraps = _OPENER.match(line) is not None or re.search(r"\d|@", line) is not None
    for span in range(1, 4 if wraps else 2):
        if span > 1:
            if i + span - 1 >= len(lines) or not lines[i + span - 1].strip():
                return 0
            joined += " " + _undecorated(lines[i + span - 1])
            if len(joined) > 400:
                return 0
        if (joined.endswith(":") or _VERB_AT_END.search(joined)) and \
                _ATTRIBUTION.match(joined):
            return span
    return 0


def _undecorated(line: str) -> str:
    m = _DECORATION.match(line)
    return m.group(1) if m else line.strip()


def _header_block_at(lines: list[str], i: int) -> bool:
    """An Outlook-style header block: a From: line followed closely by Sent:/To:/Subject:,
    or (as Thunderbird forwards) a run of three or more header lines, one of them From."""
    if _HEADER_FROM.match(lines[i]):
        return any(_HEADER_OTHER.match(line) for line in lines[i + 1:i + 6])
    if not _HEADER_OTHER.match(lines[i]):
        return False
    run = 0
    seen_from = False
    for line in lines[i:i + 6]:
        if _HEADER_FROM.match(line):
            seen_from = True
        elif not _HEADER_OTHER.match(line):
            break
        run += 1
    return seen_from and run >= 3


def _next_content(lines: list[str], i: int) -> int:
    while i < len(lines) and not lines[i].strip():
        i += 1
    return i


def _hard_boundary(lines: list[str], i: int) -> bool:
    return bool(_SEPARATOR.match(lines[i])) or _header_block_at(lines, i)


def split_reply(text: str) -> ReplyParts:
    """Split `text` into new text, signature and history. A mail that is only a quote or
    only a forwarded mail keeps all of it as the body: trimming it to nothing would lose
    the one thing the author sent."""
    # the pipeline asks this of one mail several times (overview, decide): remember the
    # answer for recent texts of ordinary size (a pure function, so nothing else changes)
    if len(text or "") <= _MEMO_CHARS:
        return _split_remembered(text)
    return _split_reply(text)


_MEMO_CHARS = 65_536


@functools.lru_cache(maxsize=128)
def _split_remembered(text: str) -> ReplyParts:
    return _split_reply(text)


def _split_reply(text: str) -> ReplyParts:
    lines = _lines((text or "").replace(_TRACKER, ""))
    limit = min(len(lines), MAX_SCAN_LINES)
    kept: list[str] = []
    cut: list[str] = []      # `>` quotes dropped from between the new lines
    boundary = limit
    i = 0
    while i < limit:
        if _hard_boundary(lines, i):
            boundary = i
            break
        span = _attribution_at(lines, i)
        if span:
            after = _next_content(lines, i + span)
            if after < len(lines) and _QUOTED.match(lines[after]):
                # attribution of a `>` quote: drop it and the quote, keep scanning, so
                # answers written between or below the quotes stay
                start, i = i, after
                while i < limit and (_QUOTED.match(lines[i]) or not lines[i].strip()):
                    i += 1
                cut.extend(lines[start:i])
                continue
            boundary = i  # attribution followed by unquoted history (Gmail text parts)
            break
        (cut if _QUOTED.match(lines[i]) else kept).append(lines[i])
        i += 1
    quoted = "\n".join(cut + lines[boundary:]).strip("\n")
    body_lines, signature_lines = _cut_signature(kept)
    body, signature = _tidy(body_lines), _tidy(signature_lines)
    if not body.strip():
        whole = _tidy(lines[:limit])
        return ReplyParts(body=whole, signature="", quoted="")
    return ReplyParts(body=body, signature=signature, quoted=quoted)


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
    """Trailing rules and blank lines go; blank-line runs inside are kept as written."""
    while lines and re.fullmatch(r"\s*([-_=*]{3,}\s*)?", lines[-1]):
        lines = lines[:-1]
    return "\n".join(line.rstrip() for line in lines).strip("\n")


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
        if (_QUOTED.match(line) or _hard_boundary(lines, i) or _attribution_at(lines, i)
                or _SIGNATURE.match(line.rstrip())):
            break
        out.append(line)
    return out
