"""Change requests: a ticket whose type says the customer wants something changed.

Sitejet's agents are told of "Änderungswünsche" apart from other mail; here a ticket is a
change request when its type is one of `CHANGE_REQUEST_TYPES` (in any of the languages
the presets use, compared by `names.key`, so case and accents do not matter). Agents who
chose the `change_request` event are told when such a ticket is opened or its type is set
to one (`routing.announce.change_request_mails`). Pure.
"""

from __future__ import annotations

from routing.names import key

EVENT = "change_request"
CHANGE_REQUEST_TYPES = frozenset(key(t) for t in (
    "change", "change request", "change-request", "Änderungswunsch", "Änderung",
    "Ændringsønske"))


def is_change_request(ticket_type: str) -> bool:
    return bool(ticket_type) and key(ticket_type) in CHANGE_REQUEST_TYPES

