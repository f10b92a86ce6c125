"""`project set`: a project's language and the fields its mails may name."""

from __future__ import annotations

import argparse
from pathlib import Path

from mailgate.cli import Context
from mailgate.cli.output import answer
from mailgate.handlers import ServiceError
from mailgate.handlers.directory import LANGUAGES, set_project

# option -> project field; each is shown to templates as project.<field>
OPTIONS = {"language": "language", "domain": "domain", "contact_person": "contact_person",
           "invitation_url": "invitation_url"}


def register(ps) -> None:
    s = ps.add_parser("set", help="set a project's language and the fields its mails name",
                      description="Give an empty value to clear a field. Templates see them "
                                  "as project.domain, project.contact_person, "
                                  "project.invitation_url; a project signature replaces "
                                  "[mail] signature in its mails.")
    s.add_argument("slug")
    s.add_argument("--language", choices=LANGUAGES,
                   help="language of the mails its customers get")
    s.add_argument("--domain", help="the website's domain")
    s.add_argument("--contact-person", metavar="NAME")
    s.add_argument("--invitation-url", metavar="URL")
    s.add_argument("--signature-file", metavar="FILE",
                   help="file holding the project's signature ('' clears it)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=cmd_project_set)


def fields_of(p) -> dict:
    return {"language": p.language, "domain": p.domain, "contact_person": p.contact_person,
            "invitation_url": p.invitation_url, "signature": p.signature}


def cmd_project_set(args: argparse.Namespace, ctx: Context) -> int:
    values = {field: getattr(args, opt).strip() for opt, field in OPTIONS.items()
              if getattr(args, opt) is not None}
    if args.signature_file is not None:
        values["signature"] = _read_signature(args.signature_file)
    if not values:
        raise ServiceError("nothing to set (see: mailgate project set --help)")
    app = ctx.app()
    with app.db.unit() as session:
        data = {"slug": args.slug} | fields_of(set_project(session, slug=args.slug,
                                                           values=values))
    answer(args, data, f"project {args.slug}: "
           + ", ".join(f"{k} = {data[k]!r}" for k in values))
    return 0


def _read_signature(path: str) -> str:
    if not path:
        return ""
    try:
        return Path(path).read_text(encoding="utf-8").strip("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise ServiceError(f"cannot read the signature file {path}: {exc}") from None
