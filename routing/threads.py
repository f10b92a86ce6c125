"""Which conversation a mail belongs to, by its Message-IDs alone (pure).

A conversation is named by its root: the oldest Message-ID a mail cites (the first of
References, else In-Reply-To), else the mail's own. Every mail of one thread has the same
root however its parts arrive, so the root is the key that lets only one ticket be
opened per thread, even when a reply is taken in before the mail it answers.
"""

from __future__ import annotations

from collections.abc import Sequence


def thread_root(message_id: str, in_reply_to: Sequence[str],
                references: Sequence[str]) -> str:
    """The root Message-ID of a mail's thread; "" for a mail that names none."""
    for ids in (references, in_reply_to):
        if ids:
            return ids[0]
    return message_id or ""


def with_own_id(thread_ids: tuple[str, ...], message_id: str) -> tuple[str, ...]:
    """The Message-IDs routing looks up for a mail: the ones it cites, then its own (a
    reply that arrived before it may already have opened its ticket)."""
    if not message_id or message_id in thread_ids:
        return thread_ids
    return (*thread_ids, message_id)
