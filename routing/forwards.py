"""Forward on behalf: who an agent's forwarded mail is really from, and whether it counts.

An agent forwards a customer's mail to the support address, inline (Gmail's
"---------- Forwarded message ---------", Thunderbird's "-------- Weitergeleitete
Nachricht --------", Apple Mail's "Begin forwarded message:", Outlook's "From:/Sent:"
block, in the languages `routing.replytext` knows) or as an attached mail, or writes
`/from ADDR` as the first line. `find_forward` reads the original sender, subject and
text and what the agent wrote above; `forward_claim` says whether this sender may open
a ticket in the customer's name: only a proven agent, and a new mail carries no reply
token, so the proof is the From check of `[mail] trusted_authserv_id` / `verify_dkim`.
Pure: the attached mail arrives parsed, the staff list and our addresses are passed in.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from routing.actors import Person, Staff
from routing.addresses import (
    clean_display_name,
    is_valid_address,
    normalize_address,
    parse_sender,
)
from routing.replytext import _SEPARATOR, _header_block_at, _lines, _next_content
from routing.trust import Verdict

MAX_SCAN_LINES = 2000
_FROM_LINE = re.compile(r"^\s*/from\s+(\S.*?)\s*$", re.IGNORECASE)
# intro lines and separators replytext does not know (it only needs to cut, not to read)
_MORE_MARKS = re.compile(
    r"""^[\s*>]*(
        -{3,}\s*forwarded\s+message\s+from\s.*-{3,}          # mutt
      | (start\s+på\s+videresendt\s+(besked|meddelelse)|början\s+på\s+vidarebefordrat
          \s+brev|start\s+på\s+videresendt\s+melding|begin\s+forwarded\s+message|
          anfang\s+der\s+weitergeleiteten\s+nachricht|début\s+du\s+message\s+réexpédié|
          inicio\s+del\s+mensaje\s+reenviado|begin\s+doorgestuurd\s+bericht)\s*:
    )[\s*]*$""", re.IGNORECASE | re.VERBOSE)
_END_MARK = re.compile(r"^\s*-{3,}\s*end\s+(of\s+)?forwarded\s+message\s*-{3,}\s*$",
                       re.IGNORECASE)
_HEADER_LINE = re.compile(r"^\s*\*?([^\W\d_][\w .-]{0,30}?)\s*:\*?[ \t]*(.*)$")
_FROM_KEYS = {"from", "von", "fra", "de", "van", "från", "da", "od", "от", "від",
              "lähettäjä", "afsender"}
_SUBJECT_KEYS = {"subject", "betreff", "emne", "objet", "asunto", "onderwerp", "oggetto",
                 "assunto", "ämne", "temat", "тема", "aihe"}
_ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
_FWD_PREFIX = re.compile(r"^\s*((fwd?|wg|vs|tr|rv|fw|enc|doorst|vb|videresend)\s*:\s*)+",
                         re.IGNORECASE)


@dataclass(frozen=True)
class AttachedMail:
    """An attached message/rfc822, as the handler parsed it."""

    sender: str | None
    name: str = ""
    subject: str = ""
    text: str = ""


@dataclass(frozen=True)
class Forwarded:
    customer: Person        # the original sender, address normalized
    subject: str            # the original subject ("" = not found)
    text: str               # what the customer wrote: the ticket's first message
    note: str               # what the forwarder wrote above the forward: an internal note
    how: str                # "inline" | "attached" | "/from"


def find_forward(text: str, attached: Sequence[AttachedMail] = ()) -> Forwarded | None:
    """The forwarded mail in `text` (or the first attached mail), or None."""
    lines = _lines(text or "")
    explicit = _explicit(lines)
    if explicit is not None:
        return explicit
    inline = _inline(lines)
    if inline is not None:
        return inline
    for mail in attached[:1]:
        address = normalize_address(mail.sender or "")
        if address and is_valid_address(address):
            return Forwarded(Person(address, clean_display_name(mail.name)), mail.subject,
                             mail.text.strip("\n"), _tidy(lines), "attached")
    return None


def _explicit(lines: list[str]) -> Forwarded | None:
    """`/from ADDR` as the first line: the rest of the mail is the customer's text."""
    first = next((i for i, line in enumerate(lines[:50]) if line.strip()), None)
    if first is None:
        return None
    m = _FROM_LINE.match(lines[first])
    person = _person(m.group(1)) if m else None
    if person is None:
        return None
    return Forwarded(person, "", _tidy(lines[first + 1:]), "", "/from")


def _inline(lines: list[str]) -> Forwarded | None:
    limit = min(len(lines), MAX_SCAN_LINES)
    for i in range(limit):
        marked = bool(_SEPARATOR.match(lines[i]) or _MORE_MARKS.match(lines[i]))
        start = _next_content(lines, i + 1) if marked else i
        if start >= len(lines) or not (marked or _header_block_at(lines, i)):
            continue
        rest = _unquoted(lines[start:]) if marked else lines[start:]
        if marked and not _header_block_at(rest, 0):
            continue
        headers, body_at = _header_block(rest, 0)
        person = next((p for k, v in headers if k in _FROM_KEYS
                       for p in (_person(v),) if p is not None), None)
        if person is None:
            continue
        subject = next((v for k, v in headers if k in _SUBJECT_KEYS), "")
        body = rest[body_at:]
        while body and (not body[-1].strip() or _END_MARK.match(body[-1])):
            body = body[:-1]
        note = lines[:i]
        while note and (not note[-1].strip() or _MORE_MARKS.match(note[-1])):
            note = note[:-1]
        return Forwarded(person, clean_display_name(subject), _tidy(body), _tidy(note),
                         "inline")
    return None


def _header_block(lines: list[str], start: int) -> tuple[list[tuple[str, str]], int]:
    """(key lower-cased, value) pairs from `start` to the blank line that ends them, and
    where the text after them begins. A line that is no header continues the one before
    (a long To wrapped by the mail client)."""
    out: list[tuple[str, str]] = []
    i = start
    while i < len(lines) and lines[i].strip() and i - start < 30:
        m = _HEADER_LINE.match(lines[i])
        if m:
            out.append((m.group(1).strip().lower(), m.group(2).strip()))
        elif out:
            out[-1] = (out[-1][0], f"{out[-1][1]} {lines[i].strip()}")
        i += 1
    return out, _next_content(lines, i)


def _person(value: str) -> Person | None:
    """The mailbox in a forwarded From value, as mail clients print it: `Name <a@b>`,
    Outlook's `Name [mailto:a@b]` or `a@b<mailto:a@b>`, Gmail's `*Name* <a@b>`."""
    value = re.sub(r"<mailto:[^<>]*>", "", value.replace("*", ""))
    value = re.sub(r"\[mailto:([^\]]*)\]", r"<\1>", value).strip()
    found = parse_sender([value]) if value else None
    if found is not None and found.address:
        return Person(found.address, found.name)
    m = _ADDRESS.search(value)
    if not m:
        return None
    address = normalize_address(m.group(0))
    if not is_valid_address(address):
        return None
    name = clean_display_name(value[:m.start()].strip(" <[(\"'\t"))
    return Person(address, "" if "@" in name else name)


def _unquoted(lines: list[str]) -> list[str]:
    """A forward quoted as a whole (`> ` on every line) is read without the marks."""
    if lines and all(not line.strip() or line.lstrip().startswith(">") for line in lines):
        return [re.sub(r"^\s*> ?", "", line) for line in lines]
    return lines


def _tidy(lines: list[str]) -> str:
    return "\n".join(line.rstrip() for line in lines).strip("\n")


def original_subject(forwarded: Forwarded, outer: str) -> str:
    """The ticket's subject: the customer's own, else the forward's without "Fwd:"."""
    return forwarded.subject or _FWD_PREFIX.sub("", outer).strip() or outer


# --- may this sender speak for the customer? ---------------------------------------------


@dataclass(frozen=True)
class Claim:
    forward: Forwarded | None     # honoured: the ticket is the customer's
    why_not: str = ""             # a forward found but not honoured, and why


def forward_claim(found: Forwarded | None, *, sender: str, staff: Staff,
                  own: frozenset[str], verdict: Verdict) -> Claim:
    """Only an agent's forward counts (a customer forwarding someone's mail is just a
    mail), only with a verified From (a forger would otherwise make us send an
    acknowledgement, quoting their text, to any address), and never on behalf of an
    agent or one of our own addresses."""
    if found is None or staff.get(sender) is None:
        return Claim(None)
    who = found.customer.email
    base = re.sub(r"\+[^@]*@", "@", who)
    if staff.get(who) is not None or who in own or base in own:
        return Claim(None, f"the forwarded mail is from {who}, not a customer")
    if not verdict.checked:
        return Claim(None, "nothing verifies the sender of a new mail ([mail] "
                           "trusted_authserv_id or verify_dkim)")
    if not verdict.ok:
        return Claim(None, f"the sender could not be verified ({verdict.reason})")
    return Claim(found)
