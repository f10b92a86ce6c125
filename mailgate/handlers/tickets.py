"""Ticket administration from the command line (deleting, for now)."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session

from mailgate.handlers import ServiceError
from store import tickets
from store.models import Event, Ticket


def load_ticket(session: Session, number: int) -> Ticket:
    t = tickets.ticket(session=session, number=number)
    if t is None or t.deleted_at is not None:
        raise ServiceError(f"no ticket #{number}")
    return t


def delete_ticket(session: Session, *, number: int, actor: str, now: dt.datetime) -> None:
    """Delete a ticket: it leaves every listing and its reply addresses stop working."""
    t = load_ticket(session, number)
    tickets.update_ticket(session=session, number=number, values={"deleted_at": now})
    tickets.insert_rows(session=session, model=Event, rows=[{
        "ticket_id": number, "at": now, "actor": actor, "kind": "deleted", "old": "",
        "new": "", "status": t.status, "detail": ""}])
