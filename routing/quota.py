"""Quota: a project's contingent of hours, a ticket's accepted offer, and the rule between.

The support document's one "ACHTUNG" rule: no work starts without a contingent, be it the
project's support contingent or an offer the customer accepted; bug tickets are exempt.
Here that is `may_enter`, a pure check of the facts the handler gathered (`Budget`, the
ticket's offer and booked time); `crossed` says when a booking takes a project over 80%
or 100% of its contingent, so its owner hears of it once per threshold. A project that
never had a contingent added is unlimited: quota is simply not in use there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

THRESHOLDS = (80, 100)
OFFER_STATES = ("sent", "accepted", "declined")
EXEMPT_TYPES = ("bug",)
_HM = re.compile(r"^(\d+)\s*h\s*(?:(\d+)\s*(?:m|min)?)?$")       # 1h30, 2h, 1h 30m
_COLON = re.compile(r"^(\d+):([0-5]\d)$")                          # 1:30
_HOURS = re.compile(r"^(\d+(?:[.,]\d+)?)\s*(?:h|std|t)?$")         # 1.5h, 1,5, 2
_MINUTES = re.compile(r"^(\d+)\s*(?:m|min)$")                      # 90m, 90min


def parse_duration(text: str) -> int:
    """Minutes in `1h30`, `90m`, `1.5h`, `1,5h`, `1:30` or `2` (hours); a leading `-` is
    a correction. Raises ValueError with a sentence for the sender."""
    raw = text.strip().lower().replace(" ", "")
    sign, body = (-1, raw[1:]) if raw.startswith("-") else (1, raw.lstrip("+"))
    minutes = None
    if m := _HM.match(body):
        minutes = int(m.group(1)) * 60 + int(m.group(2) or 0)
    elif m := _COLON.match(body):
        minutes = int(m.group(1)) * 60 + int(m.group(2))
    elif m := _MINUTES.match(body):
        minutes = int(m.group(1))
    elif m := _HOURS.match(body):
        minutes = round(float(m.group(1).replace(",", ".")) * 60)
    if minutes is None or minutes == 0 or minutes > 100_000 * 60:
        raise ValueError("a duration looks like 1h30, 90m, 1.5h or 1:30")
    return sign * minutes


def show_minutes(minutes: int) -> str:
    """1h30, 45m, 10h, -2h: the form people write back."""
    sign, m = ("-" if minutes < 0 else ""), abs(minutes)
    hours, rest = divmod(m, 60)
    if not hours:
        return f"{sign}{rest}m"
    return f"{sign}{hours}h" + (f"{rest:02d}" if rest else "")


@dataclass(frozen=True)
class Budget:
    """A project's contingent: minutes added (all entries, corrections included) and
    minutes booked against it."""

    added: int = 0
    used: int = 0

    @property
    def left(self) -> int:
        return self.added - self.used

    def percent(self, used: int | None = None) -> int:
        used = self.used if used is None else used
        return 100 if self.added <= 0 else used * 100 // self.added


def may_enter(work: bool, ticket_type: str, offer_state: str, offer_minutes: int,
              offer_used: int, budget: Budget | None, project: str = "") -> str | None:
    """None when a ticket may enter a status, else why not (for the transcript).

    `work` marks the statuses in which work is done; `budget` is None when the project
    has no quota in use."""
    if not work or ticket_type in EXEMPT_TYPES:
        return None
    if offer_state == "accepted":
        if offer_used < offer_minutes:
            return None
        return (f"the accepted offer ({show_minutes(offer_minutes)}) is used up "
                f"({show_minutes(offer_used)} booked); no work may start without a new "
                "offer (bug tickets are exempt)")
    if budget is None or budget.left > 0:
        return None
    return (f"the support contingent of project {project or '?'} is used up "
            f"({show_minutes(budget.used)} of {show_minutes(budget.added)} booked) and the "
            "ticket has no accepted offer; no work may start before the customer orders "
            "more (/offer accepted), bug tickets are exempt")


def crossed(before: int, after: int, added: int) -> int | None:
    """The highest threshold (percent of `added`) that booking from `before` to `after`
    minutes went over, or None."""
    if added <= 0 or after <= before:
        return None
    hit = [t for t in THRESHOLDS if before * 100 < t * added <= after * 100]
    return hit[-1] if hit else None
