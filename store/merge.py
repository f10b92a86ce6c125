"""Merged tickets: moving one ticket's rows onto another, and finding where mail that
still names a merged ticket belongs.

Each takes a keyword-only `session` and never commits; `mailgate.handlers.desk_actions`
calls `move_ticket` inside its unit of work, `mailgate.handlers.gather` asks
`merged_targets` while it gathers a batch.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, delete, update
from sqlmodel import Session, select

from store.models import Event, Message, ThreadRef, Ticket, TicketContact, TimeBooking

MAX_CHAIN = 10          # N merged into M merged into K ...: followed this far
_TICKETS = Ticket.__table__
# built once (Core, an expanding IN list): asked for every batch of mail
_MERGED = select(_TICKETS.c.id, _TICKETS.c.merged_into_id).where(
    _TICKETS.c.id.in_(bindparam("numbers", expanding=True)),
    _TICKETS.c.merged_into_id.is_not(None))


def merged_targets(*, session: Session, numbers: Iterable[int]) -> dict[int, int]:
    """merged ticket -> the ticket its mail lands in now, for those of `numbers` that
    were merged (a chain N -> M -> K is followed to K). Unmerged numbers are left out."""
    wanted = set(numbers)
    found: dict[int, int] = {}
    for _ in range(MAX_CHAIN):
        if not wanted:
            break
        rows = dict(session.connection().execute(_MERGED, {"numbers": sorted(wanted)}).all())
        found.update(rows)
        wanted = {m for m in rows.values() if m not in found}
    out = {}
    for n in found:
        target, steps = found[n], 0
        while target in found and steps < MAX_CHAIN:
            target, steps = found[target], steps + 1
        out[n] = target
    return out


def move_ticket(*, session: Session, source: int, target: int) -> dict[str, int]:
    """Put `source`'s messages, log, Message-IDs, booked time and customers on `target`
    (its customers as cc, unless already there) and mark `source` merged. Returns how
    many rows of each kind moved."""
    moved = {}
    for name, model in (("messages", Message), ("events", Event), ("thread_refs", ThreadRef),
                        ("bookings", TimeBooking)):
        table = model.__table__
        result = session.execute(update(table).where(table.c.ticket_id == source)
                                 .values(ticket_id=target))
        moved[name] = result.rowcount or 0
    on_target = set(session.exec(select(TicketContact.contact_id)
                                 .where(TicketContact.ticket_id == target)))
    people = list(session.exec(select(TicketContact.contact_id)
                               .where(TicketContact.ticket_id == source)))
    new = [c for c in people if c not in on_target]
    if new:
        session.execute(TicketContact.__table__.insert(),
                        [{"ticket_id": target, "contact_id": c, "role": "cc"} for c in new])
    session.execute(delete(TicketContact).where(TicketContact.ticket_id == source))
    moved["participants"] = len(new)
    session.execute(update(Ticket.__table__).where(Ticket.__table__.c.id == source)
                    .values(merged_into_id=target))
    return moved
