"""Whose turn it is, for `ticket list` (`--waiting-on`, a column, `waiting_on` in JSON)
and `ticket show`. Reading only: the roles, owners, assignees and customers of the
tickets listed are looked up once for all of them (see `routing.roles`)."""

from __future__ import annotations

from mailgate.cli import EX_USAGE, CliError
from mailgate.cli.common import me
from routing.roles import CUSTOMER, Turn, find_role, role_label, turns, waits_on, workflow_roles
from routing.workflow import workflow_named
from store import people, roles, tickets
from store.models import Ticket


def ticket_turns(session, app, pairs: list[tuple[Ticket, str]],
                 ) -> dict[int, tuple[tuple[Turn, ...], str]]:
    """Whose turn it is on each ticket, and the language of its project (number ->
    (turns, language)), in four queries."""
    maps = roles.role_maps(session=session)
    projects = {p.slug: p for p in people.projects(session=session)}
    agents = people.agent_emails(session=session, ids=[i for t, _ in pairs
                                                       for i in (t.assignee_id, t.owner_id) if i])
    on = tickets.people_of(session=session, numbers=[t.id for t, _ in pairs])
    out = {}
    for t, slug in pairs:
        p = projects.get(slug)
        wf = workflow_named(app.workflows, p.workflow if p else "support")
        out[t.id] = (turns(wf, t.status, t.substatus, maps.get(slug, {}),
                           owner=agents.get(t.owner_id, "") if t.owner_id else "",
                           assignee=agents.get(t.assignee_id, "") if t.assignee_id else "",
                           customers=tuple(e for e, _, _ in on.get(t.id, ()))),
                     p.language if p else "en")
    return out


def turns_json(found: tuple[Turn, ...], language: str = "en") -> list[dict]:
    return [{"role": t.role, "label": role_label(t.role, language), "people": list(t.people)}
            for t in found]


def shown(rows: list[dict]) -> str:
    """"Digital Coach (anna@…), Kunde (carla@…)"; a role nobody plays says so."""
    return ", ".join(f"{r['label']} ({', '.join(r['people']) or 'nobody'})" for r in rows)


def waiting_filter(session, app, args, project: str | None) -> dict[str, str] | None:
    """What `--waiting-on` asks for: {"role": key} or {"email": agent}; None without it.
    `me` is --as, else `[cli] agent`, else $MAILGATE_AGENT. An unknown role or agent is
    a usage error (a typo must not look like an empty list)."""
    wanted = (args.waiting_on or "").strip()
    if not wanted:
        return None
    if wanted.lower() == "me":
        wanted = me(args.actor, app.config)
        if not wanted:
            raise CliError("--waiting-on me needs --as EMAIL (or [cli] agent, or "
                           "$MAILGATE_AGENT)", EX_USAGE)
    if "@" in wanted:
        email = wanted.lower()
        if email not in people.agent_ids(session=session, emails=[email]):
            raise CliError(f"unknown agent {email!r} (see: mailgate agent list; customers: "
                           "--waiting-on customer)", EX_USAGE)
        return {"email": email}
    known = _known_roles(session, app, project)
    role = find_role(wanted, known)
    if role is None:
        raise CliError(f"unknown role {wanted!r} (known: {', '.join(known)})", EX_USAGE)
    return {"role": role}


def _known_roles(session, app, project: str | None) -> tuple[str, ...]:
    slugs = {project} if project else None
    names = {p.workflow for p in people.projects(session=session)
             if slugs is None or p.slug in slugs}
    found: dict[str, None] = dict.fromkeys([CUSTOMER])
    for name in sorted(names) or ["support"]:
        wf = workflow_named(app.workflows, name)
        found.update(dict.fromkeys(workflow_roles(wf)))
    return tuple(found)


def keep(found: tuple[Turn, ...], wanted: dict[str, str]) -> bool:
    return waits_on(found, role=wanted.get("role", ""), email=wanted.get("email", ""))
