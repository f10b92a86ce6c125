"""The `retention` job: prune what [retention] says is no longer needed.

Raw bytes of processed mail, spam and dismissed quarantine, and outgoing mail that was
done with, each older than its setting in days (0 = kept for ever). One transaction per
kind, under the job's lock, so two instances do not do the same work twice. Logged and
counted; the summary it returns is what `mailgate jobs list` shows of the last run.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from mailgate.bootstrap import App
from store import retention
from store.db import lock_job

_KINDS = (("raw", "raw_after_days", retention.prune_raw),
          ("spam", "spam_after_days", retention.prune_spam),
          ("outbox", "outbox_after_days", retention.prune_outbox))


@dataclass(frozen=True)
class Pruned:
    counts: dict[str, int]      # kind -> rows touched; kinds that are off are left out

    def summary(self) -> str:
        if not self.counts:
            return "off ([retention] sets no days)"
        return ", ".join(f"{kind} {n}" for kind, n in self.counts.items())


def run_retention(app: App, *, now: dt.datetime) -> Pruned:
    cfg = app.config.retention
    counts: dict[str, int] = {}
    for kind, key, prune in _KINDS:
        days = getattr(cfg, key)
        if days <= 0:
            continue
        with app.db.unit() as session:
            lock_job(session, "retention")
            counts[kind] = prune(session=session, before=now - dt.timedelta(days=days))
    pruned = Pruned(counts)
    if counts:
        app.log.info("retention pruned", **{f"{k}_rows": n for k, n in counts.items()})
    return pruned
