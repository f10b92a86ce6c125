"""Why a mail went where it went: the record kept with every stored message.

A frozen, versioned value: the routing decision with every rule's hit, how the mail was
classed (automatic or not), who the sender turned out to be, whether the sender was
verified, what each command line did, and the notes `decide` left ("no acknowledgement:
automatic mail"). `to_json` is what the database keeps; `from_json` reads every version
written so far, including the untyped records of schema 4 and earlier.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from routing.loops import AutoClass
from routing.rules import RouteDecision, RuleHit, Target
from routing.trust import Verdict

VERSION = 1


@dataclass(frozen=True)
class CommandResult:
    line: str
    ok: bool
    result: str


@dataclass(frozen=True)
class Disposition:
    route: RouteDecision
    auto: AutoClass = field(default_factory=AutoClass.human)
    actor: str = ""
    verified: Verdict | None = None
    commands: tuple[CommandResult, ...] = ()
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        r = self.route
        out: dict[str, Any] = {
            "v": VERSION, "target": str(r.target), "rule": str(r.rule), "reason": r.reason,
            "ticket": r.ticket, "project": r.project, "purpose": r.purpose,
            "hits": [{"rule": str(h.rule), "matched": h.matched, "detail": h.detail}
                     for h in r.hits],
            "auto": self.auto.as_dict(), "actor": self.actor,
            "commands": [{"line": c.line, "ok": c.ok, "result": c.result}
                         for c in self.commands],
            "notes": list(self.notes)}
        if self.verified is not None:
            out["verified"] = {"ok": self.verified.ok, "reason": self.verified.reason}
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Disposition:
        data = data or {}
        hits = tuple(RuleHit(h.get("rule", ""), bool(h.get("matched")), h.get("detail", ""))
                     for h in data.get("hits") or [])
        try:
            target = Target(data.get("target") or "unassigned")
        except ValueError:
            target = Target.UNASSIGNED
        route = RouteDecision(target, data.get("rule", ""), data.get("reason", ""),
                              data.get("ticket"), data.get("project"),
                              data.get("purpose", "reply"), hits)
        auto = data.get("auto") or {}
        verified = data.get("verified")
        return cls(
            route=route,
            auto=AutoClass(bool(auto.get("automatic")), bool(auto.get("suppress_reply")),
                           tuple(auto.get("reasons") or ())),
            actor=data.get("actor", ""),
            verified=Verdict(bool(verified.get("ok")), verified.get("reason", ""))
            if verified else None,
            commands=tuple(CommandResult(c.get("line", ""), bool(c.get("ok")),
                                         c.get("result", ""))
                           for c in data.get("commands") or []),
            notes=tuple(data.get("notes") or ()))

    @property
    def no_auto_reply(self) -> bool:
        return self.auto.no_auto_reply
