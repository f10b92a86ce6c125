"""Queries about contingents and booked time (see `routing.quota` for what they mean).

Each takes a keyword-only `session` and never commits; the batch lookups answer many
projects or tickets with one statement each.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import bindparam, func
from sqlmodel import Session, select

from store.models import QuotaEntry, TimeBooking

# the lookups every batch of mail makes, built once (Core, expanding IN lists)
_ENTRIES, _BOOKINGS = QuotaEntry.__table__, TimeBooking.__table__
_ADDED = (select(_ENTRIES.c.project_id, func.sum(_ENTRIES.c.minutes))
          .where(_ENTRIES.c.project_id.in_(bindparam("ids", expanding=True)))
          .group_by(_ENTRIES.c.project_id))
_USED = (select(_BOOKINGS.c.project_id, func.sum(_BOOKINGS.c.minutes))
         .where(_BOOKINGS.c.project_id.in_(bindparam("ids", expanding=True)),
                _BOOKINGS.c.budget == "project")
         .group_by(_BOOKINGS.c.project_id))
_BOOKED = (select(_BOOKINGS.c.ticket_id, _BOOKINGS.c.budget, func.sum(_BOOKINGS.c.minutes))
           .where(_BOOKINGS.c.ticket_id.in_(bindparam("numbers", expanding=True)))
           .group_by(_BOOKINGS.c.ticket_id, _BOOKINGS.c.budget))


def project_budgets(*, session: Session, project_ids: Iterable[int],
                    ) -> dict[int, tuple[int, int]]:
    """(minutes added, minutes booked against it) of each project that has a contingent;
    a project without any entry is not in the result (it is unlimited)."""
    ids = sorted(set(project_ids))
    if not ids:
        return {}
    conn = session.connection()
    added = dict(conn.execute(_ADDED, {"ids": ids}).all())
    if not added:
        return {}
    used = dict(conn.execute(_USED, {"ids": list(added)}).all())
    return {p: (int(m), int(used.get(p) or 0)) for p, m in added.items()}


def ticket_bookings(*, session: Session, numbers: Iterable[int]) -> dict[int, tuple[int, int]]:
    """(minutes booked in all, minutes booked against its offer) of each ticket."""
    numbers = sorted(set(numbers))
    out: dict[int, tuple[int, int]] = {}
    if not numbers:
        return out
    for ticket, budget, minutes in session.connection().execute(_BOOKED, {"numbers": numbers}):
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
