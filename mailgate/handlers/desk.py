"""Ticking messages off as dealt with (`message done` / `message undone`).

All or nothing: one unknown id refuses the whole request, so a typo in a list of ids
never leaves half of them marked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlmodel import Session

from mailgate.handlers import ServiceError
from store import desk


def mark_done(session: Session, *, ids: Sequence[int], done: bool, actor: str,
              now: dt.datetime) -> list[int]:
    """Mark the messages done by `actor` now (or not done); returns the ids whose mark
    changed (marking a done message done again keeps its first who and when)."""
    found = desk.messages_on_tickets(session=session, ids=ids)
    missing = sorted(set(ids) - set(found))
    if missing:
        raise ServiceError(f"no message {', '.join(map(str, missing))} on a ticket")
    changed = sorted(i for i, m in found.items() if (m.done_at is None) == done)
    desk.set_done(session=session, ids=changed, at=now if done else None,
                  by=actor if done else "")
    return changed
