"""Queries about contingents and booked time (see `routing.quota` for what they mean).

Each takes a keyword-only `session` and never commits; the batch lookups answer many
projects or tickets with one statement each.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import func
from sqlmodel import Session, select

from store.models import QuotaEntry, TimeBooking


def project_budgets(*, session: Session, project_ids: Iterable[int],
                    ) -> dict[int, tuple[int, int]]:
    """(minutes added, minutes booked against it) of each project that has a contingent;
    a project without any entry is not in the result (it is unlimited)."""
    ids = sorted(set(project_ids))
    if not ids:
        return {}
    added = dict(session.exec(select(QuotaEntry.project_id, func.sum(QuotaEntry.minutes))
                              .where(QuotaEntry.project_id.in_(ids))
                              .group_by(QuotaEntry.project_id)).all())
    if not added:
        return {}
    used = dict(session.exec(select(TimeBooking.project_id, func.sum(TimeBooking.minutes))
                             .where(TimeBooking.project_id.in_(list(added)))
                             .where(TimeBooking.budget == "project")
                             .group_by(TimeBooking.project_id)).all())
    return {p: (int(m), int(used.get(p) or 0)) for p, m in added.items()}


def ticket_bookings(*, session: Session, numbers: Iterable[int]) -> dict[int, tuple[int, int]]:
    """(minutes booked in all, minutes booked against its offer) of each ticket."""
    numbers = sorted(set(numbers))
    out: dict[int, tuple[int, int]] = {}
    if not numbers:
        return out
    for ticket, budget, minutes in session.exec(
            select(TimeBooking.ticket_id, TimeBooking.budget, func.sum(TimeBooking.minutes))
            .where(TimeBooking.ticket_id.in_(numbers))
            .group_by(TimeBooking.ticket_id, TimeBooking.budget)):
        total, offer = out.get(ticket, (0, 0))
        out[ticket] = (total + int(minutes), offer + (int(minutes) if budget == "offer" else 0))
    return out


def add_entry(*, session: Session, project_id: int, minutes: int, note: str, actor: str,
              now: dt.datetime) -> None:
    session.add(QuotaEntry(project_id=project_id, minutes=minutes, note=note, actor=actor,
                           at=now))
    session.flush()


def entries(*, session: Session, project_id: int) -> list[QuotaEntry]:
    return list(session.exec(select(QuotaEntry).where(QuotaEntry.project_id == project_id)
                             .order_by(QuotaEntry.at, QuotaEntry.id)))


def bookings(*, session: Session, project_id: int) -> list[TimeBooking]:
    return list(session.exec(select(TimeBooking).where(TimeBooking.project_id == project_id)
                             .order_by(TimeBooking.at, TimeBooking.id)))


def insert_booking(*, session: Session, values: dict) -> None:
    session.execute(TimeBooking.__table__.insert().values(**values))
