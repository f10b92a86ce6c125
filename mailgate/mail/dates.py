"""Dates as a German, Danish or English reader writes them.

    short   03.12.2026          03.12.2026          3 December 2026
    long    3. Dezember 2026    3. december 2026    3 December 2026

The shipped templates use the short form (`{{ ticket.due | date }}`); the long one
(`{{ ticket.due | date("long") }}`) is there for operators' own templates. English has
one form: a numeric date is read as 12/3 or 3/12 depending on the reader, so English
mails spell the month.

The month names are a table here rather than Babel or the C library's locale: Babel is
not a dependency and three languages do not justify one, and `strftime("%B")` follows
the process locale, which is global, usually C/English on a server, and not safe to
switch per mail in a threaded daemon.
"""

from __future__ import annotations

import datetime as dt

MONTHS = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
    "de": ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August",
           "September", "Oktober", "November", "Dezember"),
    "da": ("januar", "februar", "marts", "april", "maj", "juni", "juli", "august",
           "september", "oktober", "november", "december"),
}
STYLES = ("short", "long")


def as_date(value) -> dt.date | None:
    """A date from a date, a datetime or an ISO string ("2026-12-03", "2026-12-03T10:00");
    None when it is none of them."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def format_date(day: dt.date, language: str = "en", style: str = "short") -> str:
    """`day` written the way `language` writes it (see the module docstring); an unknown
    language is written as English."""
    if language in ("de", "da"):
        if style == "long":
            return f"{day.day}. {MONTHS[language][day.month - 1]} {day.year}"
        return f"{day.day:02d}.{day.month:02d}.{day.year}"
    return f"{day.day} {MONTHS['en'][day.month - 1]} {day.year}"
