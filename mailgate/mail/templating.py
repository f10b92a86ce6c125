"""Mail templates: sandboxed Jinja2 with a subject block and a body block per template.

Templates are looked up in the configured override folder first, then in the templates
mailgate ships. A variable a template uses but the caller did not give is an
error (StrictUndefined), found by `check-config` before any customer sees a blank.
Values are inserted as text and never evaluated again, so `{{ 7*7 }}` written by a
customer stays literally `{{ 7*7 }}`; HTML templates (`*.html.j2`) autoescape.

A template exists per language as `NAME.LANG.txt.j2` (`ack.de.txt.j2`) beside the English
`NAME.txt.j2`. Each folder is asked for the language's file, then for the plain one,
before the next folder is asked: an operator's `ack.txt.j2` replaces the acknowledgement
in every language they have not written one for, so what they changed is what is sent.
The `date` filter writes a date as the mail's language does (mail/dates.py).
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    pass_context,
)
from jinja2.sandbox import SandboxedEnvironment

from mailgate.mail.dates import as_date, format_date

SUFFIX = ".txt.j2"
LANGUAGES = ("en", "de", "da")       # en is the plain file; the others have their own


@pass_context
def local_date(context, value, style: str = "short") -> str:
    """A date (or an ISO date string) as the mail's `language` writes it (mail/dates.py:
    03.12.2026 in German and Danish, 3 December 2026 in English; `date("long")`: 3.
    Dezember 2026); "" stays "", a value that is no date is shown as it is."""
    if not value:
        return ""
    day = as_date(value)
    if day is None:
        return str(value)
    return format_date(day, context.get("language", "en"), style)


def split_name(file_name: str) -> tuple[str, str] | None:
    """("ack", "de") for ack.de.txt.j2, ("ack", "en") for ack.txt.j2, else None."""
    if not file_name.endswith(SUFFIX):
        return None
    stem = file_name[: -len(SUFFIX)]
    base, dot, lang = stem.rpartition(".")
    return (base, lang) if dot and lang in LANGUAGES[1:] else (stem, "en")


def shipped_templates() -> Traversable:
    """The shipped templates: the `mailgate.templates` package wherever mailgate is
    installed (pyproject.toml maps the top-level templates/ folder there, so they travel
    in the wheel); the folder itself in a source checkout that was never installed."""
    try:
        return importlib.resources.files("mailgate.templates")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "templates"


class TraversableLoader(BaseLoader):
    """Templates from a resource container that is not a folder (a zipped install)."""

    def __init__(self, root: Traversable) -> None:
        self.root = root

    def get_source(self, environment, template: str):
        node = self.root.joinpath(template)
        if not node.is_file():
            raise TemplateNotFound(template)
        return node.read_text(encoding="utf-8"), None, lambda: True

    def list_templates(self) -> list[str]:
        return sorted(n.name for n in self.root.iterdir() if n.is_file())


def _loader(root: Traversable) -> BaseLoader:
    # a real folder (the usual case) keeps FileSystemLoader's file names in error messages
    return FileSystemLoader(str(root)) if isinstance(root, Path) else TraversableLoader(root)


class TemplateProblem(Exception):
    pass


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


class Templates:
    def __init__(self, override_dir: str | Path | None = None, *,
                 shipped: Traversable | None = None) -> None:
        dirs: list[Traversable] = [Path(override_dir)] if override_dir else []
        dirs.append(shipped if shipped is not None else shipped_templates())
        self.dirs = dirs
        self.env = SandboxedEnvironment(
            loader=ChoiceLoader([_loader(d) for d in dirs]),
            undefined=StrictUndefined,
            autoescape=lambda name: bool(name and name.endswith((".html.j2", ".html"))),
            keep_trailing_newline=True,
            auto_reload=False,   # read once per process; a restart picks up changes
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["date"] = local_date
        # (name, language) -> its compiled template, blocks checked: looked up, read and
        # compiled once per process, like `auto_reload=False` above
        self._compiled: dict[tuple[str, str], Any] = {}

    def names(self, folder: str = "") -> list[str]:
        return sorted({name for name, _ in self.variants(folder)})

    def variants(self, folder: str = "") -> list[tuple[str, str]]:
        """Every (template, language) some folder has a file for; with `folder` the
        templates in that subfolder (`replies`: the agents' canned replies)."""
        found: set[tuple[str, str]] = set()
        for d in self.dirs:
            d = d.joinpath(folder) if folder else d
            if d.is_dir():
                found.update(v for v in (split_name(p.name) for p in d.iterdir()
                                         if p.is_file()) if v)
        return sorted(found)

    def file_name(self, name: str, language: str = "en") -> str:
        """The file `name` is rendered from in `language` (see the module docstring)."""
        wanted = [f"{name}.{language}{SUFFIX}"] if language in LANGUAGES[1:] else []
        wanted.append(f"{name}{SUFFIX}")
        for d in self.dirs:
            for file_name in wanted:
                if d.joinpath(file_name).is_file():
                    return file_name
        raise TemplateProblem(f"no template named {name!r}")

    def source_of(self, name: str, language: str = "en") -> str:
        file_name = self.file_name(name, language)
        for d in self.dirs:
            if d.joinpath(file_name).is_file():
                return str(d.joinpath(file_name))
        raise TemplateProblem(f"no template named {name!r}")

    def _compile(self, name: str, language: str):
        template = self.env.get_template(self.file_name(name, language))
        missing = {"subject", "body"} - set(template.blocks)
        if missing:
            raise TemplateProblem(f"template {name!r} lacks block(s): {sorted(missing)}")
        self._compiled[(name, language)] = template
        return template

    def render(self, name: str, variables: dict[str, Any], language: str = "en") -> Rendered:
        try:
            template = self._compiled.get((name, language)) or self._compile(name, language)
            ctx = template.new_context({**variables, "language": language})
            subject = "".join(template.blocks["subject"](ctx))
            body = "".join(template.blocks["body"](ctx))
        except TemplateProblem:
            raise
        except TemplateError as exc:
            where = getattr(exc, "lineno", None)
            at = f" line {where}" if where else ""
            raise TemplateProblem(f"template {name!r}{at}: {exc}") from None
        return Rendered(" ".join(subject.split()), body.strip("\n") + "\n")
