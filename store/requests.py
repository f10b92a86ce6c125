"""A customer's own requests: the tickets an address is on, for their overview (/list).

One statement for any number of addresses; takes a keyword-only `session`, never
commits. Only tickets the address itself is on (as requester or added to it) are
returned: the overview never shows anyone else's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import Select, bindparam, or_, select
from sqlmodel import Session

from store.models import Contact, Project, Ticket, TicketContact

PER_ADDRESS = 50            # at most this many requests per address (newest first)


def requests_of(*, session: Session, emails: Iterable[str], closed_since: dt.datetime,
                ) -> dict[str, list[tuple[int, str, str, str, str, dt.datetime]]]:
    """address -> [(number, subject, project slug, status, sub-status, last change)] of
    the tickets it is on that are open or were closed since `closed_since`, newest
    first; deleted tickets never."""
    emails = sorted(set(e for e in emails if e))
    out: dict[str, list] = {e: [] for e in emails}
    if not emails:
        return out
    rows = session.connection().execute(_REQUESTS, {
        "emails": emails, "closed_since": closed_since, "limit": PER_ADDRESS * len(emails) * 4})
    for email, *row in rows:
        if len(out[email]) < PER_ADDRESS:
            out[email].append(tuple(row))
    return out


def _requests() -> Select:
    """Built once (Core, an expanding IN list): most of a small query's cost is building it."""
    c, t, p, tc = (Contact.__table__, Ticket.__table__, Project.__table__,
                   TicketContact.__table__)
    return (select(c.c.email, t.c.id, t.c.subject, p.c.slug, t.c.status, t.c.substatus,
                   t.c.updated_at)
            .join(tc, tc.c.contact_id == c.c.id)
            .join(t, t.c.id == tc.c.ticket_id)
            .join(p, p.c.id == t.c.project_id)
            .where(c.c.email.in_(bindparam("emails", expanding=True)), t.c.deleted_at.is_(None),
                   or_(t.c.closed_at.is_(None), t.c.closed_at >= bindparam("closed_since")))
            .order_by(t.c.updated_at.desc(), t.c.id.desc())
            .limit(bindparam("limit")))


_REQUESTS = _requests()
