"""The variables every template gets, and the sample set `check-config` renders with.

When a mail is queued, the ticket and project are snapshotted into the outbox row as
plain data (`ticket_vars`, `project_vars`), so the mail shows the ticket as it was when
the event happened, however late it is rendered. `template_vars` adds what only the
sending side knows (reply and note addresses, signature). A template that uses any other
name fails `check-config` instead of leaving a blank in a customer's mail.
"""

from __future__ import annotations

from typing import Any

from mailgate.mail.templating import TemplateProblem, Templates
from routing.context import PRIORITY_NAMES, ProjectInfo, TicketState
from routing.workflow import Workflow, customer_commands


def ticket_vars(state: TicketState, subject: str, wf: Workflow, assignee_name: str) -> dict:
    return {"number": state.number, "subject": subject, "status": state.status,
            "status_label": wf.status_label(state.status), "substatus": state.substatus,
            "substatus_label": wf.substatus_labels.get(state.substatus, state.substatus),
            "priority": state.priority,
            "priority_label": PRIORITY_NAMES.get(state.priority, str(state.priority)),
            "group": state.group, "type": state.type,
            "due": state.due.isoformat() if state.due else "", "urgent": state.urgent,
            "assignee": state.assignee, "assignee_name": assignee_name,
            # the customer verbs the workflow accepts now: a mail offers only these
            "customer_commands": list(customer_commands(wf, state.status, state.substatus))}


def project_vars(p: ProjectInfo, address: str) -> dict:
    return {"name": p.name, "slug": p.slug, "key": p.key, "address": address,
            "language": p.language, "domain": p.domain, "contact_person": p.contact_person,
            "invitation_url": p.invitation_url, "signature": p.signature}


def language_of(payload: dict[str, Any]) -> str:
    """The language a queued mail is written in: its project's (mails queued before
    projects had one are English)."""
    return (payload.get("project") or {}).get("language") or "en"


def template_vars(payload: dict[str, Any], *, text: str, reply_address: str,
                  note_address: str, signature: str, support_address: str,
                  today: str = "") -> dict:
    """Everything a template may use, from a queued mail's snapshot. A project's own
    signature replaces the global one."""
    project = {"language": "en", "domain": "", "contact_person": "", "invitation_url": "",
               "signature": ""} | (payload.get("project") or {})
    return {
        "ticket": payload["ticket"],
        "project": project,
        "customer": {"name": "", "email": ""} | (payload.get("customer") or {}),
        "agent": {"name": "", "email": ""} | (payload.get("agent") or {}),
        "message": {"text": text},
        "signature": project["signature"] or signature,
        "support_address": support_address,
        "today": today,                   # the day the mail was decided (ISO)
        "reply_address": reply_address,
        # agents only: mail to this address becomes an internal note (like RT's comment)
        "note_address": note_address,
        "change": {"old": "", "new": "", "old_label": "", "new_label": "", "actor": ""}
        | (payload.get("change") or {}),
        "transcript": payload.get("transcript", ""),
        "reminder": {"days": 0, "since": ""} | (payload.get("reminder") or {}),
    }


# Templates must render with exactly these variables: a template that uses anything
# else would leave a blank (or crash) in a real mail, so it fails here instead.
SAMPLE_VARS = {
    "ticket": {"number": 42, "subject": "Sample subject", "status": "open",
               "status_label": "Open", "substatus": "", "substatus_label": "", "priority": 2,
               "priority_label": "normal", "group": "web", "type": "question",
               "due": "2026-12-31", "urgent": False, "assignee": "anna@agency.example",
               "assignee_name": "Anna Agent", "customer_commands": ["close", "reopen",
                                                                   "approve"]},
    "project": {"name": "Sample project", "slug": "sample", "key": "sample",
                "address": "support+sample@example.com", "language": "en",
                "domain": "www.sample.example", "contact_person": "Carla Customer",
                "invitation_url": "https://sample.example/invite/abc", "signature": ""},
    "customer": {"name": "Carla Customer", "email": "carla@client.example"},
    "agent": {"name": "Anna Agent", "email": "anna@agency.example"},
    "message": {"text": "Sample text"},
    "signature": "Sample signature",
    "support_address": "support@example.com",
    "today": "2026-12-24",
    "reply_address": "support+r42.abc.defghijklmnopqrs@example.com",
    "note_address": "support+n42.abc.defghijklmnopqrs@example.com",
    "change": {"old": "new", "new": "open", "old_label": "New", "new_label": "Open",
               "actor": "anna@agency.example"},
    "transcript": "> /status open\ndone: status is now Open\n",
    "reminder": {"days": 4, "since": "2026-12-27"},
}


def check_templates(templates: Templates) -> list[str]:
    problems = []
    for name, language in templates.variants():
        try:
            templates.render(name, SAMPLE_VARS, language)
        except TemplateProblem as exc:
            problems.append(f"{templates.source_of(name, language)}: {exc}")
    return problems
