"""Who sent a mail, read the way careful parsers read broken From headers. Pure.

`routing.addresses.parse_sender` reads From strictly. When it finds nothing, the usual
breakage is repaired one step at a time and read strictly again: a domain ending in a
dot, spaces inside `<…>`, an encoded word holding a comma, an unbalanced quote,
`Name addr@x` without brackets, two addresses in one From (the first is taken). With no
usable From at all, Sender, then Reply-To, then the envelope (Return-Path) stand in.
Every repair and stand-in is returned as a defect sentence.

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
# problems of the strict reading that must never be repaired into a matchable sender
_REFUSED = ("From headers", "display name", "control characters")


def read_sender(from_values: list[str], *, sender: list[str], reply_to: list[str],
                return_path: str | None) -> tuple[Sender, list[str]]:
    """(Sender, defects) for the mail's From values and its stand-ins."""
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
                  strict.problem), [f"no sender: {strict.problem}"]


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
    """To/Cc values with the spaces a broken fold left inside `<…>` taken out."""
    return [_angle_spaces(v) for v in values]


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
    text = decode_header_value(text).strip().strip('"').strip()
    return clean_display_name(text.replace('\\"', '"'))
