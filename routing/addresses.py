"""Addresses: which recipients we accept, what a plus-address means, who really sent a mail.

Pure functions over strings. Nothing here looks anything up: whether a project key
exists or a token is valid is decided later with the data gathered for that mail.

The sender parser is deliberately stricter than `email.utils`: Python 3.11.7 lacks the
fixes for CVE-2023-27043, and parsers can disagree on who sent
`From: victim@client.example <attacker@evil.example>`. A From header that could be read
two ways is reported as ambiguous and is never used to match a project or a ticket.

Internationalised addresses (RFC 6531/6532) are addresses too: a local part may hold
UTF-8 letters (`jürgen@…`), and a domain is compared and stored in one form only, its
IDNA A-label (`exämple.de` and `xn--exmple-cua.de` are the same domain), which every
relay and DNS server understands.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from email.header import decode_header
from enum import StrEnum

PLUS = "+"
_ADDR_RE = re.compile(r"[^\s@<>()\",;:\[\]\\]+@[^\s@<>()\",;:\[\]\\]+")
_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?"
                        r"(?:\.[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?)*$")
_LOCAL_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\u0080-\U0010ffff-]{1,64}$")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
PROJECT_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def split_address(address: str) -> tuple[str, str]:
    """("local", "domain") with the domain in its one compared form (`normalize_domain`);
    ("", "") when it is no address."""
    address = address.strip().strip("<>")
    local, sep, domain = address.rpartition("@")
    if not sep or not local or not domain:
        return "", ""
    return local, normalize_domain(domain)


def normalize_domain(domain: str) -> str:
    """A domain lower-cased, an internationalised one as its IDNA A-label (punycode):
    the one form routing compares and the outbox can hand to any relay. A name that is
    no valid IDN stays as it is (and fails `is_valid_address`)."""
    domain = domain.lower()
    if domain.isascii():
        return domain
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return domain


def normalize_address(address: str) -> str:
    """The form we compare and store: lower-case, no angle brackets or spaces."""
    local, domain = split_address(address)
    return f"{local.lower()}@{domain}" if local else ""


def is_valid_address(address: str) -> bool:
    local, domain = split_address(address)
    if not local or not domain or len(address) > 254:
        return False
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return False
    if not local.isascii() and not _utf8_local_ok(local):
        return False
    return bool(_LOCAL_RE.match(local)) and bool(_DOMAIN_RE.match(domain))


def _utf8_local_ok(local: str) -> bool:
    """A UTF-8 local part (RFC 6531): at most 64 bytes, letters and marks and symbols
    only, no spaces, controls, format characters (bidi overrides) or U+FFFD (the trace of
    a lossy decoding, never what someone's address is)."""
    return len(local.encode("utf-8", "surrogatepass")) <= 64 and "\ufffd" not in local \
        and not any(unicodedata.category(c)[0] in "CZ" for c in local if not c.isascii())


# --- recipients --------------------------------------------------------------------------


class RecipientKind(StrEnum):
    SUPPORT = "support"    # the plain support address
    PROJECT = "project"    # support+<project key>
    TOKEN = "token"        # support+<reply or note token>; verified later
    BOUNCE = "bounce"      # support+b.<id>: VERP address of one outgoing mail


@dataclass(frozen=True)
class Recipient:
    address: str           # normalized
    kind: RecipientKind
    detail: str = ""       # the part after the plus, lower-cased


@dataclass(frozen=True)
class RecipientRules:
    support_local: str
    domains: frozenset[str]

    def __post_init__(self) -> None:
        # the served domains in the form addresses are compared in (an IDN as A-label)
        object.__setattr__(self, "domains",
                           frozenset(normalize_domain(d) for d in self.domains))


@dataclass(frozen=True)
class Rejection:
    code: str              # full SMTP reply
    reason: str


def classify_recipient(address: str, rules: RecipientRules) -> Recipient | Rejection:
    """Accept the support address and its plus-addresses on our domains; refuse the rest.

    A plus detail containing a dot is a token (or the remains of one): project keys can
    never contain a dot, so the two are never confused. Whether the key or token is any
    good is decided at routing time, so a mistyped token still reaches a human.
    """
    local, domain = split_address(address)
    if not local or not is_valid_address(f"{local}@{domain}"):
        return Rejection("553 5.1.3 Malformed recipient address", "malformed")
    if domain not in rules.domains:
        return Rejection("550 5.1.1 Recipient domain not served here", "unknown domain")
    base, plus, detail = local.lower().partition(PLUS)
    if base != rules.support_local.lower():
        return Rejection("550 5.1.1 No such mailbox here", "unknown address")
    normalized = f"{local.lower()}@{domain}"
    if not plus:
        return Recipient(normalized, RecipientKind.SUPPORT)
    return Recipient(normalized, plus_kind(detail), detail)


def plus_kind(detail: str) -> RecipientKind:
    if detail.startswith("b."):
        return RecipientKind.BOUNCE
    if "." in detail:
        return RecipientKind.TOKEN
    return RecipientKind.PROJECT


def plus_address(support_address: str, detail: str) -> str:
    local, domain = split_address(support_address)
    return f"{local}{PLUS}{detail}@{domain}"


# --- senders ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sender:
    address: str | None    # normalized, or None when nobody can be trusted to be the sender
    name: str = ""
    problem: str = ""      # why address is None


def parse_sender(from_values: list[str]) -> Sender:
    """Read the From header strictly: exactly one header holding exactly one mailbox.

    `from_values` are the raw (undecoded, unfolded or folded) values of every From header.
    """
    if not from_values:
        return Sender(None, problem="no From header")
    if len(from_values) > 1:
        return Sender(None, problem=f"ambiguous sender: {len(from_values)} From headers")
    value = re.sub(r"\r?\n[ \t]", " ", from_values[0]).strip()
    if not value:
        return Sender(None, problem="empty From header")
    if _CONTROL_RE.search(value) or "\n" in value or "\r" in value:
        return Sender(None, problem="ambiguous sender: control characters in From")
    try:
        parts = _tokenize(value)
    except ValueError as exc:
        return Sender(None, problem=f"ambiguous sender: {exc}")
    return _sender_from_parts(parts)


@dataclass
class _Parts:
    angles: list[str]
    display: list[str]      # atoms and quoted strings before the angle address
    comments: list[str]
    after_angle: list[str]  # anything but comments after the angle address
    commas: int


def _tokenize(value: str) -> _Parts:
    parts = _Parts([], [], [], [], 0)
    i, n = 0, len(value)
    while i < n:
        c = value[i]
        if c == '"':
            j, buf = i + 1, []
            while j < n and value[j] != '"':
                if value[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(value[j])
                j += 1
            if j >= n:
                raise ValueError("unbalanced quote in From")
            (parts.after_angle if parts.angles else parts.display).append("".join(buf))
            i = j + 1
        elif c == "(":
            depth, j, start = 1, i + 1, i + 1
            while j < n and depth:
                if value[j] == "\\":
                    j += 1
                elif value[j] == "(":
                    depth += 1
                elif value[j] == ")":
                    depth -= 1
                j += 1
            if depth:
                raise ValueError("unbalanced parenthesis in From")
            parts.comments.append(value[start:j - 1])
            i = j
        elif c == ")":
            raise ValueError("unbalanced parenthesis in From")
        elif c == "<":
            j = value.find(">", i + 1)
            if j < 0 or "<" in value[i + 1:j]:
                raise ValueError("unbalanced angle bracket in From")
            parts.angles.append(value[i + 1:j].strip())
            i = j + 1
        elif c == ">":
            raise ValueError("unbalanced angle bracket in From")
        elif c == ",":
            parts.commas += 1
            i += 1
        elif c.isspace():
            i += 1
        else:
            j = i
            while j < n and value[j] not in '"()<>,' and not value[j].isspace():
                j += 1
            (parts.after_angle if parts.angles else parts.display).append(value[i:j])
            i = j
    return parts


def _sender_from_parts(p: _Parts) -> Sender:
    if p.commas or len(p.angles) > 1:
        return Sender(None, problem="ambiguous sender: several addresses in From")
    if p.angles:
        if p.after_angle:
            return Sender(None, problem="ambiguous sender: text after the address in From")
        address = p.angles[0]
        name = _decode_words(" ".join(p.display))
    else:
        if len(p.display) != 1:
            return Sender(None, problem="ambiguous sender: From is not one address")
        address, name = p.display[0], ""
    if not is_valid_address(address):
        return Sender(None, problem=f"invalid sender address {address[:80]!r}")
    normalized = normalize_address(address)
    # Any address-looking text in the display name or comments must be the address
    # itself; otherwise a reader could take it for the sender.
    for text in [name, *(_decode_words(c) for c in p.comments)]:
        if "<" in text or ">" in text:
            return Sender(None, problem="ambiguous sender: angle brackets in display name")
        for found in _ADDR_RE.findall(text):
            if normalize_address(found) != normalized:
                return Sender(None, problem="ambiguous sender: display name holds another "
                                            f"address ({found[:80]})")
    return Sender(normalized, clean_display_name(name))


def _decode_words(text: str) -> str:
    if "=?" not in text:
        return text
    try:
        out = []
        for chunk, charset in decode_header(text):
            if isinstance(chunk, bytes):
                out.append(chunk.decode(charset or "ascii", errors="replace"))
            else:
                out.append(chunk)
        return "".join(out)
    except (LookupError, ValueError):
        return text


def clean_display_name(name: str) -> str:
    """A display name safe to show and to put in a header: one line, no controls."""
    name = _CONTROL_RE.sub("", name.replace("\r", " ").replace("\n", " "))
    name = re.sub(r"\s+", " ", name).strip()
    if (len(name) >= 2 and name[0] == name[-1] == '"') or name.count('"') % 2:
        name = name.strip('"').strip()    # enclosing or stray quotes, not `Carla "CC"`
    return name[:200]


def parse_address_list(values: list[str]) -> list[str]:
    """Every valid address found in To/Cc style headers, normalized, in order, unique.

    Used for display and participant suggestions only, never to decide who sent a mail.
    """
    seen: dict[str, None] = {}
    for value in values:
        for found in _ADDR_RE.findall(value.replace("\r", " ").replace("\n", " ")):
            address = normalize_address(found)
            if is_valid_address(address):
                seen.setdefault(address, None)
    return list(seen)
