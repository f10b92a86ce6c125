"""A customer's own requests: the tickets an address is on, for their overview (/list).

One statement for any number of addresses; takes a keyword-only `session`, never
commits. Only tickets the address itself is on (as requester or added to it) are
returned: the overview never shows anyone else's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import or_
from sqlmodel import Session, select

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
    rows = session.exec(
        select(Contact.email, Ticket.id, Ticket.subject, Project.slug, Ticket.status,
               Ticket.substatus, Ticket.updated_at)
        .join(TicketContact, TicketContact.contact_id == Contact.id)
        .join(Ticket, Ticket.id == TicketContact.ticket_id)
        .join(Project, Project.id == Ticket.project_id)
        .where(Contact.email.in_(emails), Ticket.deleted_at.is_(None),
               or_(Ticket.closed_at.is_(None), Ticket.closed_at >= closed_since))
        .order_by(Ticket.updated_at.desc(), Ticket.id.desc())
        .limit(PER_ADDRESS * len(emails) * 4))
    for email, *row in rows:
        if len(out[email]) < PER_ADDRESS:
            out[email].append(tuple(row))
    return out
