"""Participants: which To/Cc addresses of a customer's mail join the ticket's customer side.

`[mail] participants` says whom: "all" (everyone copied), "same-domain" (the default:
colleagues at the customer's own domain) or "none". Never our own addresses or their
plus-addresses (support+…, reply and VERP addresses), never an agent, never the writer
or someone already on the ticket. Participants are the ticket's Cc people (the same as
`/cc add`): their replies thread into the ticket and they get the agents' answers. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from routing.actors import Staff
from routing.addresses import is_valid_address, normalize_address, split_address

MODES = ("all", "same-domain", "none")
MAX_ADDED = 10        # a mail copied to a whole distribution list does not flood a ticket


@dataclass(frozen=True)
class Participants:
    added: tuple[str, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()     # (address, why not)

    def notes(self) -> tuple[str, ...]:
        return tuple(f"{a} not added as a participant: {why}" for a, why in self.skipped)


def is_system_address(address: str, own: frozenset[str]) -> bool:
    """One of our own addresses, or a plus-address of one (support+acme@, support+r1.…@)."""
    local, domain = split_address(address)
    base = re.sub(r"\+.*$", "", local.lower())
    return address in own or f"{base}@{domain}" in own


def new_participants(copied: Iterable[str], *, writer: str, mode: str,
                     known: frozenset[str], staff: Staff, own: frozenset[str]) -> Participants:
    """The addresses of `copied` (a mail's To and Cc) that join the ticket."""
    if mode == "none":
        return Participants()
    domain = split_address(writer)[1]
    added: list[str] = []
    skipped: list[tuple[str, str]] = []
    for raw in dict.fromkeys(copied):
        address = normalize_address(raw)
        if not address or not is_valid_address(address) or address == writer \
                or address in known or address in added:
            continue
        if is_system_address(address, own):
            continue
        if staff.get(address) is not None:
            skipped.append((address, "an agent"))
        elif mode == "same-domain" and split_address(address)[1] != domain:
            skipped.append((address, f"not at {domain} ([mail] participants = same-domain)"))
        elif len(added) >= MAX_ADDED:
            skipped.append((address, f"more than {MAX_ADDED} addresses copied"))
        else:
            added.append(address)
    return Participants(tuple(added), tuple(skipped))
