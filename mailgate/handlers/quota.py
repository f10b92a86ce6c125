"""Contingents: the handlers behind `mailgate project quota` and the quota part of
`mailgate project show`. They run inside the caller's unit of work and never commit."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session

from mailgate.handlers import ServiceError
from mailgate.handlers.directory import require_project
from routing.quota import parse_duration, show_minutes
from store import quota


def add_quota(session: Session, *, slug: str, amount: str, note: str, actor: str,
              now: dt.datetime) -> int:
    """Adds (or, negative, corrects off) hours of a project's contingent; returns minutes."""
    project = require_project(session, slug)
    try:
        minutes = parse_duration(amount)
    except ValueError as exc:
        raise ServiceError(f"--add {amount!r}: {exc}") from None
    if "\n" in note or "\r" in note:
        raise ServiceError("the note must be one line")
    quota.add_entry(session=session, project_id=project.id, minutes=minutes,
                    note=note.strip()[:500], actor=actor, now=now)
    return minutes


def quota_report(session: Session, *, project_id: int) -> dict | None:
    """Added, used and left minutes with the entries and bookings; None when the project
    never had a contingent (it is unlimited)."""
    entries = quota.entries(session=session, project_id=project_id)
    bookings = quota.bookings(session=session, project_id=project_id)
    if not entries:
        return None if not bookings else {"in_use": False, "bookings": _bookings(bookings)}
    added = sum(e.minutes for e in entries)
    used = sum(b.minutes for b in bookings if b.budget == "project")
    return {"in_use": True, "added_minutes": added, "used_minutes": used,
            "left_minutes": added - used,
            "added": show_minutes(added), "used": show_minutes(used) if used else "0m",
            "left": show_minutes(added - used) if added != used else "0m",
            "entries": [{"at": e.at, "minutes": e.minutes, "note": e.note, "actor": e.actor}
                        for e in entries],
            "bookings": _bookings(bookings)}


def _bookings(rows) -> list[dict]:
    return [{"at": b.at, "ticket": b.ticket_id, "actor": b.actor, "minutes": b.minutes,
             "budget": b.budget} for b in rows]
