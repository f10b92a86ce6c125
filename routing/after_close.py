"""The after_close policy of a workflow: its values, reading it from config, and what
it says for one closed ticket (`follow_up`). Kept apart from `routing.followup`, which
builds the effects, so that `routing.workflow` can read the policy without importing the
effects it does not need. Pure: `now` and the moment the ticket closed are passed in.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

REOPEN, NEW_TICKET, REJECT = "reopen", "new-ticket", "reject"
AFTER_CLOSE = (REOPEN, NEW_TICKET, REJECT)
APPEND = "append"                   # no policy: added to the closed ticket as before


@dataclass(frozen=True)
class FollowUp:
    """What a follow-up to a closed ticket does (`action`: append, reopen, new-ticket,
    reject) and why, in words for the stored disposition and the log."""

    action: str
    reason: str


def follow_up(policy: str, within_days: int | None, *, closed: bool,
              closed_at: dt.datetime | None, now: dt.datetime) -> FollowUp | None:
    """None when the ticket is not closed (no follow-up); else what the mail does. A
    closed ticket with no known closing time counts as closed long ago."""
    if not closed:
        return None
    if not policy:
        return FollowUp(APPEND, "added to the closed ticket (no after_close set)")
    age = (now - closed_at) if closed_at is not None else None
    days = f"{age.total_seconds() / 86400:.1f}" if age is not None else "unknown"
    if policy == REOPEN:
        return FollowUp(REOPEN, "after_close = reopen")
    if within_days is not None and age is not None and age <= dt.timedelta(days=within_days):
        return FollowUp(REOPEN, f"closed {days} days ago, within reopen_within_days = "
                                f"{within_days}")
    window = (f"closed {days} days ago, after reopen_within_days = {within_days}; "
              if within_days is not None else "")
    return FollowUp(policy, f"{window}after_close = {policy}")


def read_after_close(where: str, table: Any, error: type[Exception]
                     ) -> tuple[str, int | None]:
    """(after_close, reopen_within_days) of a `[workflows.NAME]` table, or `error`
    naming the key and what it may be."""
    policy = table.get("after_close", "")
    if policy != "" and policy not in AFTER_CLOSE:
        raise error(f"{where} after_close: expected one of "
                    f"{', '.join(repr(p) for p in AFTER_CLOSE)}, got {policy!r}")
    days = table.get("reopen_within_days")
    if days is None:
        return policy, None
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise error(f"{where} reopen_within_days: expected a whole number of days, 0 or "
                    f"more, got {days!r}")
    if policy not in (NEW_TICKET, REJECT):
        raise error(f"{where} reopen_within_days: only with after_close = 'new-ticket' or "
                    f"'reject' (it says what happens after the window), got after_close = "
                    f"{policy or 'unset'!r}")
    return policy, days
