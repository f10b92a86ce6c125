"""What several verbs share beyond argument types: the project and status filters of
`ticket list` and `search`, and how a project is shown (`project add|list|show`).

Reading only; nothing here writes a row.
"""

from __future__ import annotations

import os

from mailgate.cli import EX_USAGE, CliError
from routing.addresses import plus_address
from routing.names import key
from routing.workflow import workflow_named
from store import people


def me(given: str | None, config) -> str:
    """Who "I" am on the command line: --as, else `[cli] agent` in the config, else
    $MAILGATE_AGENT; "" when none says. One rule for every verb that acts or filters."""
    return (given or config.cli.agent or os.environ.get("MAILGATE_AGENT") or "").strip().lower()


def status_names(workflows, wanted: str) -> frozenset[str]:
    """The statuses `wanted` names in any of `workflows`, as `/status` reads it
    (`Workflow.find_status`). An exact name, label or alias in one workflow wins over a
    prefix in another ("waiting" is not "waiting-for-data")."""
    found = [s for s in (wf.find_status(wanted) for wf in workflows) if s is not None]
    exact = [s for s in found if key(wanted) in {key(n) for n in s.names}]
    return frozenset(s.name for s in exact or found)


def filters(session, app, args) -> tuple[str | None, frozenset[str] | None]:
    """The project (`args.project`) and statuses (`args.status`) to filter by; an
    unknown one is a usage error (a typo must not look like an empty result)."""
    workflows = list(app.workflows.values())
    if args.project:
        project = people.project_by_slug(session=session, slug=args.project)
        if project is None:
            known = ", ".join(p.slug for p in people.projects(session=session)) or "none"
            raise CliError(f"unknown project {args.project!r} (known: {known})", EX_USAGE)
        workflows = [workflow_named(app.workflows, project.workflow)]
    if not args.status:
        return args.project, None
    names = status_names(workflows, args.status)
    if not names:
        known = sorted({s for wf in workflows for s in wf.statuses})
        where = f" in project {args.project}" if args.project else ""
        raise CliError(f"unknown status {args.status!r}{where} (known: {', '.join(known)})",
                       EX_USAGE)
    return args.project, names


def project_json(app, p) -> dict:
    return {"slug": p.slug, "name": p.name, "key": p.key,
            "address": plus_address(app.config.mail.support_address, p.key),
            "workflow": p.workflow, "language": p.language}
