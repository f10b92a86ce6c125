"""Mail templates: sandboxed Jinja2 with a subject block and a body block per template.

Templates are looked up in the configured override folder first, then in the shipped
`templates/` folder. A variable a template uses but the caller did not give is an
error (StrictUndefined), found by `check-config` before any customer sees a blank.
Values are inserted as text and never evaluated again, so `{{ 7*7 }}` written by a
customer stays literally `{{ 7*7 }}`; HTML templates (`*.html.j2`) autoescape.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "templates"
SUFFIX = ".txt.j2"


class TemplateProblem(Exception):
    pass


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


class Templates:
    def __init__(self, override_dir: str | Path | None = None) -> None:
        dirs = [Path(override_dir)] if override_dir else []
        dirs.append(DEFAULT_DIR)
        self.dirs = dirs
        self.env = SandboxedEnvironment(
            loader=ChoiceLoader([FileSystemLoader(str(d)) for d in dirs]),
            undefined=StrictUndefined,
            autoescape=lambda name: bool(name and name.endswith((".html.j2", ".html"))),
            keep_trailing_newline=True,
            auto_reload=False,   # read once per process; a restart picks up changes
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def names(self) -> list[str]:
        found: set[str] = set()
        for d in self.dirs:
            if d.is_dir():
                found.update(p.name[: -len(SUFFIX)] for p in d.glob(f"*{SUFFIX}"))
        return sorted(found)

    def source_of(self, name: str) -> str:
        for d in self.dirs:
            if (d / f"{name}{SUFFIX}").is_file():
                return str(d / f"{name}{SUFFIX}")
        raise TemplateProblem(f"no template named {name!r}")

    def render(self, name: str, variables: dict[str, Any]) -> Rendered:
        try:
            template = self.env.get_template(f"{name}{SUFFIX}")
            missing = {"subject", "body"} - set(template.blocks)
            if missing:
                raise TemplateProblem(f"template {name!r} lacks block(s): {sorted(missing)}")
            ctx = template.new_context(dict(variables))
            subject = "".join(template.blocks["subject"](ctx))
            body = "".join(template.blocks["body"](ctx))
        except TemplateProblem:
            raise
        except TemplateError as exc:
            where = getattr(exc, "lineno", None)
            at = f" line {where}" if where else ""
            raise TemplateProblem(f"template {name!r}{at}: {exc}") from None
        return Rendered(" ".join(subject.split()), body.strip("\n") + "\n")
