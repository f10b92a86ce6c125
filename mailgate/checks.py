"""Start-up and `check-config` checks that need more than the config file itself."""

from __future__ import annotations

from mailgate.config import Config
from mailgate.templating import TemplateProblem, Templates

# Templates must render with exactly these variables: a template that uses anything
# else would leave a blank (or crash) in a real mail, so it fails here instead.
SAMPLE_VARS = {
    "ticket": {"number": 42, "subject": "Sample subject", "status": "open",
               "status_label": "Open", "substatus": "", "substatus_label": "", "priority": 2,
               "priority_label": "normal", "group": "web", "type": "question",
               "due": "2026-12-31", "urgent": False, "assignee": "anna@agency.example",
               "assignee_name": "Anna Agent"},
    "project": {"name": "Sample project", "slug": "sample", "key": "sample",
                "address": "support+sample@example.com"},
    "customer": {"name": "Carla Customer", "email": "carla@client.example"},
    "agent": {"name": "Anna Agent", "email": "anna@agency.example"},
    "message": {"text": "Sample text"},
    "signature": "Sample signature",
    "support_address": "support@example.com",
    "reply_address": "support+r42.abc.defghijklmnopqrs@example.com",
    "note_address": "support+n42.abc.defghijklmnopqrs@example.com",
    "change": {"old": "new", "new": "open", "old_label": "New", "new_label": "Open",
               "actor": "anna@agency.example"},
    "transcript": "> /status open\ndone: status is now Open\n",
    "reminder": {"days": 4, "since": "2026-12-27"},
}


def check_templates(cfg: Config) -> list[str]:
    templates = Templates(cfg.templates.override_dir or None)
    problems = []
    for name in templates.names():
        try:
            templates.render(name, SAMPLE_VARS)
        except TemplateProblem as exc:
            problems.append(f"{templates.source_of(name)}: {exc}")
    return problems
