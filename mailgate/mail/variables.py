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
from routing.roles import CUSTOMER, acting_roles, customer_todo
from routing.workflow import Workflow, customer_commands


def ticket_vars(state: TicketState, subject: str, wf: Workflow, assignee_name: str,
                language: str = "en") -> dict:
    """The ticket as templates see it; `todo` is what the customer is asked to do when
    it is their turn, if the workflow's texts are in the project's `language`."""
    return {"number": state.number, "subject": subject, "status": state.status,
            "status_label": wf.status_label(state.status), "substatus": state.substatus,
            "substatus_label": wf.substatus_labels.get(state.substatus, state.substatus),
            "priority": state.priority,
            "priority_label": PRIORITY_NAMES.get(state.priority, str(state.priority)),
            "group": state.group, "type": state.type,
            "due": state.due.isoformat() if state.due else "", "urgent": state.urgent,
            "assignee": state.assignee, "assignee_name": assignee_name,
            # the customer verbs the workflow accepts now: a mail offers only these
            "customer_commands": list(customer_commands(wf, state.status, state.substatus)),
            # what the customer is to do now, and whether it is their turn
            "todo": customer_todo(wf, state.status, state.substatus, language),
            "customer_acts": CUSTOMER in acting_roles(wf, state.status, state.substatus)}


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
        # mails queued before a ticket knew what is to be done render without it
        "ticket": {"todo": "", "customer_acts": False} | payload["ticket"],
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
        # todo, role, assigned: a turn mail's (routing.turn_mails)
        "change": {"old": "", "new": "", "old_label": "", "new_label": "", "actor": "",
                   "todo": "", "role": "", "assigned": ""} | (payload.get("change") or {}),
        "transcript": payload.get("transcript", ""),
        "reminder": {"days": 0, "since": ""} | (payload.get("reminder") or {}),
        # a follow-up's new ticket: the closed ticket it follows up (0: none)
        "follows": payload.get("follows") or 0,
        # {field, old, new} per change the customer is told of (routing.every_change)
        "changes": payload.get("changes") or [],
        # the recipient's own requests: /list, an acknowledgement (routing.overview)
        "requests": payload.get("requests") or [],
    }


# Templates must render with exactly these variables: a template that uses anything
# else would leave a blank (or crash) in a real mail, so it fails here instead.
SAMPLE_VARS = {
    "ticket": {"number": 42, "subject": "Sample subject", "status": "open",
               "status_label": "Open", "substatus": "", "substatus_label": "", "priority": 2,
               "priority_label": "normal", "group": "web", "type": "question",
               "due": "2026-12-31", "urgent": False, "assignee": "anna@agency.example",
               "assignee_name": "Anna Agent", "customer_commands": ["close", "reopen",
                                                                   "approve"],
               "todo": "Check the finished site and send the go-ahead.",
               "customer_acts": True},
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
               "actor": "anna@agency.example", "todo": "Set the owner and the priority.",
               "role": "Digital Coach", "assigned": "handler"},
    "transcript": "> /status open\ndone: status is now Open\n",
    "reminder": {"days": 4, "since": "2026-12-27"},
    "follows": 41,
    "changes": [{"field": "status", "old": "New", "new": "Open"},
                {"field": "priority", "old": "normal", "new": "high"},
                {"field": "assignee", "old": "", "new": "Anna Agent"},
                {"field": "due", "old": "", "new": "2027-01-10"}],
    "requests": [{"number": 41, "subject": "Sample request", "project": "Sample project",
                  "status_label": "Open", "open": True, "turn": "team",
                  "updated": "2026-12-20"},
                 {"number": 40, "subject": "Older request", "project": "Sample project",
                  "status_label": "Closed", "open": False, "turn": "",
                  "updated": "2026-12-01"}],
}


def check_templates(templates: Templates) -> list[str]:
    problems = []
    # the agents' canned replies (replies/NAME.txt.j2) get the same variables
    for name, language in [*templates.variants(),
                           *((f"replies/{n}", lang) for n, lang in templates.variants("replies"))]:
        try:
            templates.render(name, SAMPLE_VARS, language)
        except TemplateProblem as exc:
            problems.append(f"{templates.source_of(name, language)}: {exc}")
    return problems
