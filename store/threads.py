"""Queries that keep several instances from stepping on each other while they apply mail.

Each takes a keyword-only `session` and never commits. On PostgreSQL a batch takes its
locks in two sweeps, each in one fixed order: first transaction advisory locks on the
keys its mails would insert (content keys, thread roots), then the rows of the tickets
it will change (`FOR UPDATE`, by number). Two instances holding mails of one thread or
copies of one mail queue on the first sweep, and the second one reads what the first
committed, so it appends instead of opening a second ticket, and marks a duplicate
instead of storing a second copy. The unique keys (`thread_root.root`,
`message.dedup_key`) decide if anything gets past the locks: the loser decides its mail
again. SQLite needs none of the locks: its writers are one at a time.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, bindparam, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from store import tickets
from store.models import ThreadRoot, Ticket, utcnow


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def lock_keys(*, session: Session, keys: Iterable[str]) -> None:
    """Transaction advisory locks on `keys`, taken in the order of their hashes (the
    same order in every instance: no deadlock between two batches)."""
    keys = sorted(set(k for k in keys if k))
    if not keys or not _postgres(session):
        return
    session.execute(text(
        "SELECT count(pg_advisory_xact_lock(h)) FROM (SELECT DISTINCT hashtext(k) AS h "
        "FROM unnest(CAST(:keys AS text[])) AS k ORDER BY h) AS locks"), {"keys": keys})


def lock_tickets(*, session: Session, numbers: Iterable[int]) -> None:
    """Hold the rows of these tickets until commit, in number order: two instances
    applying mail to one ticket take turns, each reading what the other wrote."""
    numbers = sorted(set(numbers))
    if numbers and _postgres(session):
        session.exec(select(Ticket.id).where(Ticket.id.in_(numbers))
                     .order_by(Ticket.id).with_for_update()).all()


def roots(*, session: Session, roots: Iterable[str]) -> dict[str, int]:
    """thread root -> the ticket it opened."""
    roots = sorted(set(r for r in roots if r))
    if not roots:
        return {}
    return dict(session.connection().execute(_ROOTS_OF, {"roots": roots}).all())


class ThreadTaken(Exception):
    """Another instance opened a ticket for this thread after the batch looked: the mail
    must be decided again (it will then find that ticket)."""


def claim_root(*, session: Session, root: str, ticket_id: int) -> int | None:
    """Record that `ticket_id` was opened for thread `root`, unless a ticket holds that
    root already (a follow-up to a closed ticket, a reply to a deleted one, or the race
    another instance won): returns the ticket that holds it, None for no root. The
    unique key decides the race, never a look beforehand; the caller tells a race
    (a holder it did not know) from a new ticket it meant to open."""
    if not root:
        return None
    root = root[:998]
    conn = session.connection()
    inserted = conn.execute(_CLAIM_ROOT[conn.dialect.name], {"root": root,
                                                             "ticket_id": ticket_id}).first()
    return ticket_id if inserted is not None else _holder(conn, root)


def _holder(conn, root: str) -> int:
    """The ticket that holds a root another claim got first."""
    return conn.execute(_ROOT_HOLDER, {"root": root}).scalar_one()


def open_ticket(*, session: Session, values: dict[str, Any], root: str) -> tuple[int, int | None]:
    """Insert a ticket opened for thread `root` and claim the root for it (`claim_root`):
    (its number, the ticket that holds the root). On PostgreSQL both go in one
    statement, one round trip for the two (the ticket is there whoever holds the root,
    as with two statements: the caller decides whether that is a race to roll back)."""
    conn = session.connection()
    if not root or conn.dialect.name != "postgresql":
        number = tickets.insert_ticket(session=session, values=values)
        return number, claim_root(session=session, root=root, ticket_id=number)
    root = root[:998]
    number, claimed = conn.execute(_open_statement(tuple(values)), {
        **{f"v_{k}": v for k, v in values.items()}, "root": root,
        "root_at": values.get("created_at") or utcnow()}).one()
    return number, claimed if claimed is not None else _holder(conn, root)


@functools.cache
def _open_statement(columns: tuple[str, ...]) -> Select:
    """WITH t AS (INSERT INTO ticket … RETURNING id), r AS (INSERT INTO thread_root …
    SELECT :root, t.id … ON CONFLICT DO NOTHING RETURNING ticket_id) SELECT t.id, r's:
    built once for the columns the caller gives."""
    tickets_t = Ticket.__table__
    ticket = (tickets_t.insert().values({c: bindparam(f"v_{c}") for c in columns})
              .returning(tickets_t.c.id).cte("opened"))
    claim = (postgresql.insert(_ROOTS)
             .from_select(["root", "ticket_id", "created_at"],
                          select(bindparam("root"), ticket.c.id, bindparam("root_at")))
             .on_conflict_do_nothing(index_elements=["root"])
             .returning(_ROOTS.c.ticket_id).cte("claimed"))
    return select(ticket.c.id, select(claim.c.ticket_id).scalar_subquery())


# built once per dialect: a statement built per call costs more than the insert itself
_ROOTS = ThreadRoot.__table__
_CLAIM_ROOT = {d.dialect().name: d.insert(_ROOTS).values(
    root=bindparam("root"), ticket_id=bindparam("ticket_id"))
    .on_conflict_do_nothing(index_elements=["root"]).returning(_ROOTS.c.ticket_id)
    for d in (postgresql, sqlite)}
_ROOTS_OF = select(_ROOTS.c.root, _ROOTS.c.ticket_id).where(
    _ROOTS.c.root.in_(bindparam("roots", expanding=True)))
_ROOT_HOLDER = select(_ROOTS.c.ticket_id).where(_ROOTS.c.root == bindparam("root"))
