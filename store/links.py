"""Links between tickets: a follow-up to a closed ticket opened as a new ticket.

Each link is stored from both sides, so a ticket's links are one query by its own
number. Queries take a keyword-only `session` and never commit.
"""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session, select

from store.models import TicketLink

FOLLOWS, FOLLOWED_BY = "follows", "followed-by"


def link_follow_up(*, session: Session, new: int, old: int, now: dt.datetime) -> None:
    """Ticket `new` follows up closed ticket `old`: both sides stored."""
    session.connection().execute(TicketLink.__table__.insert(), [
        {"ticket_id": new, "other_id": old, "kind": FOLLOWS, "created_at": now},
        {"ticket_id": old, "other_id": new, "kind": FOLLOWED_BY, "created_at": now}])


def links_of(*, session: Session, number: int) -> list[tuple[str, int]]:
    """(kind, other ticket) of every link of ticket `number`, oldest first."""
    return [(kind, other) for kind, other in session.exec(
        select(TicketLink.kind, TicketLink.other_id).where(TicketLink.ticket_id == number)
        .order_by(TicketLink.created_at, TicketLink.other_id))]
