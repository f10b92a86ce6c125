"""Who sent a mail, read the way careful parsers read broken From headers. Pure.

`routing.addresses.parse_sender` reads From strictly. When it finds nothing, the usual
breakage is repaired one step at a time and read strictly again: a domain ending in a
dot, spaces inside `<…>`, an encoded word holding a comma, `<mailto:…>`, an unclosed or
doubled `<…>`, an unquoted comma in the name, an unbalanced quote, `Name addr@x` without
brackets, two addresses in one From (the first is taken). With no usable From at all,
Sender, then Reply-To, then the Return-Path header stand in, and last the real envelope
sender, which only the edge knows (`envelope_stand_in`, applied by the ingest handler).
Every repair and stand-in is returned as a defect sentence.

An internationalised address may come raw in UTF-8 (RFC 6532) or, from older clients,
with its local part as an RFC 2047 encoded word (`=?utf-8?Q?j=C3=BCrgen?=@exämple.de`);
such a local part is decoded before reading (`decode_local_parts`), for From and To/Cc
alike, so the address is never dropped.

What stays refused, for routing's sake: two From headers, and a From whose display name
holds another address or angle brackets. Such a mail is never matched by its sender; its
display name is recovered for showing, nothing more.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from mailgate.mail.text import decode_encoded_words, decode_header_value
from routing.addresses import Sender, clean_display_name, parse_sender

_ENCODED = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?]*\?=")
_TRAILING_DOT = re.compile(r"(@[^\s<>,;@\"]+?)\.+(?=\s*(?:>|,|;|$))")
_ANGLE = re.compile(r"<([^<>]*)>")
_AT_WORD = re.compile(r"[^\s<>()\",;]+@[^\s<>()\",;]+")
_FOLDED = re.compile(r"\r?\n[ \t]")
_COMMENT = re.compile(r"\(([^()]*)\)")
# encoded words standing where a local part stands: right before the "@"
_LOCAL_WORDS = re.compile(r"(?<![^\s<,;:\"])((?:=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=)+)(?=@)")
_NOT_LOCAL = re.compile(r"[\s<>()\",;:@\[\]\\]")
# problems of the strict reading that must never be repaired into a matchable sender
_REFUSED = ("From headers", "display name", "control characters")
NO_SENDER = "no sender: "              # the defect when nothing in the mail names one
FROM_RETURN_PATH = "sender taken from Return-Path"


def read_sender(from_values: list[str], *, sender: list[str], reply_to: list[str],
                return_path: str | None) -> tuple[Sender, list[str]]:
    """(Sender, defects) for the mail's From values and its stand-ins."""
    from_values = [decode_local_parts(v) for v in from_values]
    strict = parse_sender(from_values)
    if strict.address:
        # our reading of the name knows more charsets (GBK labelled GB2312 and the like)
        name = _display(from_values[0]) or strict.name
        return Sender(strict.address, name, strict.problem), []
    if any(word in strict.problem for word in _REFUSED):
        shown = _display(from_values[0]) if from_values else ""
        shown = "" if "@" in shown or "<" in shown else shown    # the lure is not shown
        return Sender(None, shown, strict.problem), [f"sender not trusted: {strict.problem}"]
    if from_values:
        repaired, steps = _repair(from_values[0])
        if repaired.address:
            return repaired, [f"From header repaired: {', '.join(steps)}"]
        if "@" in from_values[0]:
            return (Sender(None, _display(from_values[0]), strict.problem),
                    [f"From header unreadable: {strict.problem}"])
    for header, values in (("Sender", sender), ("Reply-To", reply_to),
                           ("Return-Path", [return_path] if return_path else [])):
        for value in values[:1]:
            found = parse_sender([value])
            if not found.address:
                found, _ = _repair(value)
            if found.address:
                why = "no From header" if not from_values else "no address in From"
                return found, [f"{why}; sender taken from {header}"]
    return Sender(None, _display(from_values[0]) if from_values else "",
                  strict.problem), [f"{NO_SENDER}{strict.problem}"]


def envelope_stand_in(sender: Sender, defects: tuple[str, ...],
                      mail_from: str | None) -> tuple[Sender, tuple[str, ...]] | None:
    """The envelope sender (SMTP/LMTP MAIL FROM, the pipe's --sender, IMAP's Return-Path)
    standing in for a mail that names no usable sender, or whose only one was a
    Return-Path header the real envelope outranks. None when it changes nothing: the
    mail names its sender, the From was refused as ambiguous (never credited to anyone),
    or the envelope is the null sender or unknown. The salvage is a defect."""
    if not mail_from:
        return None
    taken = next((d for d in defects if d.endswith(FROM_RETURN_PATH)), None)
    missing = sender.address is None and any(d.startswith(NO_SENDER) for d in defects)
    if not (missing or taken):
        return None
    found = parse_sender([decode_local_parts(mail_from)])
    if not found.address or (taken and found.address == sender.address):
        return None
    why = taken.split(";")[0] if taken else \
        ("no From header" if sender.problem == "no From header" else "no address in From")
    note = f"{why}; sender taken from the envelope (MAIL FROM)"
    kept = tuple(d for d in defects if d != taken and not d.startswith(NO_SENDER))
    return Sender(found.address, sender.name), (*kept, note)


def _repair(value: str) -> tuple[Sender, list[str]]:
    value = _FOLDED.sub(" ", value).strip()
    steps: list[str] = []
    for label, fix in _REPAIRS:
        fixed = fix(value)
        if fixed == value:
            continue
        value = fixed
        steps.append(label)
        found = parse_sender([value])
        if found.address:
            return _named(found, value), steps
        if any(word in found.problem for word in _REFUSED):
            return Sender(None, problem=found.problem), steps
    first = _first_address(value)
    if first and first != value:
        found = parse_sender([first])
        if found.address:
            return _named(found, first), [*steps, "several addresses; the first is the sender"]
    return Sender(None), steps


def _named(found: Sender, value: str) -> Sender:
    return Sender(found.address, _display(value) or found.name)


def _trailing_dot(value: str) -> str:
    return _TRAILING_DOT.sub(r"\1", value)


def tidy_addresses(values: list[str]) -> list[str]:
    """To/Cc values with the spaces a broken fold left inside `<…>` taken out and
    encoded-word local parts decoded."""
    return [_angle_spaces(decode_local_parts(v)) for v in values]


def decode_local_parts(value: str) -> str:
    """`=?utf-8?Q?j=C3=BCrgen?=@exämple.de` read as `jürgen@exämple.de`: an encoded word
    right before an "@" is the local part. Decoded only when the result is one local
    part (no space, bracket, comma or second "@"), so a display name can never turn
    into an address this way."""
    if "=?" not in value:
        return value

    def local(m: re.Match) -> str:
        decoded = decode_encoded_words(m.group(1))
        return decoded if decoded and not _NOT_LOCAL.search(decoded) else m.group(1)

    return _LOCAL_WORDS.sub(local, value)


def _angle_spaces(value: str) -> str:
    return _ANGLE.sub(lambda m: "<" + "".join(m.group(1).split()) + ">", value)


def _encoded_words(value: str) -> str:
    """Encoded words as one quoted string: a comma or quote inside one is name text."""
    if not _ENCODED.search(value):
        return value
    angle = value.rfind("<")
    head, tail = (value[:angle], value[angle:]) if angle > 0 else (value, "")
    if not _ENCODED.search(head):
        return value
    name = decode_encoded_words(head).strip().strip('"').replace("\\", "").replace('"', "")
    return f'"{name}" {tail}'.strip()


def _mailto(value: str) -> str:
    """`Carla <mailto:carla@client.example>`, as some web forms write it."""
    return re.sub(r"<\s*mailto:", "<", value, flags=re.IGNORECASE)


def _angles(value: str) -> str:
    """`Carla <carla@client.example` (never closed) and `Carla <<carla@…>>` (doubled)."""
    value = re.sub(r"<\s*<([^<>]*)>\s*>", r"<\1>", value)
    if value.count("<") == 1 and ">" not in value and "@" in value[value.find("<"):]:
        return value.rstrip() + ">"
    return value


def _unquoted_comma(value: str) -> str:
    """`Müller, Jörg <joerg@client.example>`: a comma in a name nobody quoted, before the
    one and only address, is part of the name."""
    angle = value.find("<")
    name = value[:angle]
    if angle <= 0 or "," not in name or '"' in name or "@" in name \
            or value.count("<") != 1 or value.count("@") != 1:
        return value
    return f'"{name.strip()}" {value[angle:]}'


def _unbalanced_quote(value: str) -> str:
    return value.replace('"', "") if value.count('"') % 2 else value


def _bare_address(value: str) -> str:
    """`Carla Client carla@client.example` (no brackets): the one address gets them."""
    if "<" in value or "(" in value:
        return value
    words = _AT_WORD.findall(value)
    if len(words) != 1:
        return value
    rest = value.replace(words[0], " ").strip(" ,;")
    return f'"{rest}" <{words[0]}>' if rest else value


_REPAIRS: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("domain ending in a dot", _trailing_dot),
    ("spaces inside <…>", _angle_spaces),
    ("encoded word with a special character", _encoded_words),
    ("mailto: inside <…>", _mailto),
    ("unclosed or doubled <…>", _angles),
    ("comma in an unquoted name", _unquoted_comma),
    ("unbalanced quote", _unbalanced_quote),
    ("address without angle brackets", _bare_address),
)


def _first_address(value: str) -> str:
    """The first mailbox of a list: split at commas outside quotes and brackets."""
    depth, quoted, start = 0, False, 0
    for i, c in enumerate(value):
        if c == '"':
            quoted = not quoted
        elif c in "<(" and not quoted:
            depth += 1
        elif c in ">)" and not quoted:
            depth = max(0, depth - 1)
        elif c in ",;" and not quoted and depth == 0:
            piece = value[start:i].strip()
            if "@" in piece:
                return piece
            start = i + 1
    return value[start:].strip()


def _display(value: str) -> str:
    """The display name for showing: the text before `<…>`, else an `(comment)`."""
    value = _FOLDED.sub(" ", value or "")
    angle = value.find("<")
    if angle > 0:
        text = value[:angle]
    else:
        comment = _COMMENT.search(value)
        text = comment.group(1) if comment else ""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]                       # a quoted string: its quotes only
    text = decode_header_value(text).strip()
    if text.count('"') % 2:
        text = text.strip('"')                  # a stray quote of a broken header
    return clean_display_name(text.replace('\\"', '"'))
