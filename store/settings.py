"""Small named values kept in the database (the generated token secret, mailbox status)."""

from __future__ import annotations

from sqlmodel import Session

from store.models import Setting


def get_setting(*, session: Session, key: str) -> str | None:
    row = session.get(Setting, key)
    return row.value if row else None


def set_setting(*, session: Session, key: str, value: str) -> None:
    row = session.get(Setting, key)
    if row is None:
        session.add(Setting(key=key, value=value))
    else:
        row.value = value


def bump(*, session: Session, key: str) -> None:
    """Count a change (a version others compare against)."""
    row = session.get(Setting, key)
    if row is None:
        session.add(Setting(key=key, value="1"))
    else:
        row.value = str(int(row.value or 0) + 1)
