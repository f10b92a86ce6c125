"""Export tickets to a directory other tools can read, and import such a directory.

DIR/export.json        what was exported, when, and an id (an import is done once)
DIR/ticket-N.mbox      the ticket's mails as they arrived (or were sent), one mbox each
DIR/ticket-N.json      the ticket, its people, messages, log and thread references;
                       each message names its mail in the mbox and its files by sha256
DIR/attachments/SHA256 the bytes of every file

`import_export` checks everything (each mail and file against its checksum) before it
writes a row, then writes the whole import in one transaction: tickets keep their
numbers where free and are renumbered otherwise.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import mailbox
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.types import Date

from mailgate.bootstrap import App
from mailgate.handlers import ServiceError
from mailgate.mail.mbox import for_mbox, from_line, restore
from store import people, tickets, transfer
from store.models import Attachment, Event, Inbound, Message, Project, ThreadRef, Ticket
from store.models import UTCDateTime as _UTC

FORMAT, VERSION = "mailgate-export", 1
_PROJECT_KEYS = ("slug", "name", "key", "workflow", "language", "domain", "contact_person",
                 "invitation_url", "signature")
_INBOUND_DROP = ("id", "raw", "ticket_id", "lease_until", "imap_key")


@dataclass
class Exported:
    export_id: str
    tickets: list[int] = field(default_factory=list)
    mails: int = 0
    files: int = 0


@dataclass
class Imported:
    numbers: dict[int, int] = field(default_factory=dict)     # exported -> now
    mails: int = 0
    files: int = 0

    @property
    def renumbered(self) -> dict[int, int]:
        return {old: new for old, new in self.numbers.items() if old != new}


# --- export -------------------------------------------------------------------------------


def export_tickets(app: App, out: Path, *, project: str | None = None,
                   ticket: int | None = None) -> Exported:
    if (out / "export.json").exists():
        raise ServiceError(f"{out} holds an export already; choose an empty directory")
    with app.db.unit(write=False) as session:
        if ticket is not None:
            if tickets.ticket(session=session, number=ticket) is None:
                raise ServiceError(f"no ticket #{ticket}")
            numbers = [ticket]
        else:
            project_id = None
            if project is not None:
                found = people.project_by_slug(session=session, slug=project)
                if found is None:
                    raise ServiceError(f"unknown project {project!r}")
                project_id = found.id
            numbers = transfer.ticket_numbers(session=session, project_id=project_id)
    (out / "attachments").mkdir(parents=True, exist_ok=True)
    done = Exported(uuid.uuid4().hex)
    for number in numbers:
        with app.db.unit(write=False) as session:     # one ticket in memory at a time
            rows = transfer.ticket_rows(session=session, number=number)
        if rows is not None:
            _write_ticket(out, rows, done)
            done.tickets.append(number)
    manifest = {"format": FORMAT, "version": VERSION, "export_id": done.export_id,
                "exported_at": _json(app.now()), "database": app.db.describe(),
                "tickets": [{"number": n, "json": f"ticket-{n}.json", "mbox": f"ticket-{n}.mbox"}
                            for n in done.tickets]}
    (out / "export.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    app.log.info("tickets exported", directory=str(out), tickets=len(done.tickets),
                 mails=done.mails, files=done.files)
    return done


def _write_ticket(out: Path, rows: dict[str, Any], done: Exported) -> None:
    t: Ticket = rows["ticket"]
    box = mailbox.mbox(str(out / f"ticket-{t.id}.mbox"), create=True)
    box.lock()
    messages = []
    try:
        for m, raw, inbound, files in rows["messages"]:
            entry = None
            if raw is not None:
                mbox = for_mbox(raw)
                key = box.add(from_line(m.from_addr, m.created_at) + b"\n" + mbox.text)
                entry = {"mbox_index": key,
                         "sha256": hashlib.sha256(raw).hexdigest(), "size": len(raw),
                         "from_lines": list(mbox.from_lines),
                         "ends_with_newline": mbox.ends_with_newline}
                done.mails += 1
            for a, data in files:
                path = out / "attachments" / a.sha256
                if not path.exists():
                    path.write_bytes(data)
                    done.files += 1
            messages.append({
                **_plain(m, "id", "ticket_id", "inbound_id"), "raw": entry,
                "inbound": None if inbound is None else _plain(inbound, *_INBOUND_DROP)
                | {"id": inbound.id},
                "attachments": [_plain(a, "id", "message_row_id", "data") for a, _ in files]})
        box.flush()
    finally:
        box.unlock()
        box.close()
    project: Project = rows["project"]
    data = {"format": "mailgate-ticket", "version": VERSION, "number": t.id,
            "ticket": _plain(t, "id", "project_id", "requester_id", "assignee_id", "owner_id"),
            "project": {k: getattr(project, k) for k in _PROJECT_KEYS},
            "assignee": rows["assignee"], "owner": rows["owner"],
            "contacts": [{"email": c.email, "name": c.name, "role": role}
                         for c, role in rows["contacts"]],
            "messages": messages,
            "events": [_plain(e, "id", "ticket_id") for e in rows["events"]],
            "thread_refs": rows["thread_refs"]}
    (out / f"ticket-{t.id}.json").write_text(json.dumps(data, indent=2, ensure_ascii=False)
                                            + "\n", encoding="utf-8")


def _plain(row, *leave_out: str) -> dict[str, Any]:
    return {k: _json(v) for k, v in transfer.columns(row, leave_out=leave_out).items()}


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date | dt.datetime) else value


# --- import -------------------------------------------------------------------------------


def import_export(app: App, src: Path) -> Imported:
    manifest = _manifest(src)
    bundles = [_checked_ticket(src, entry) for entry in manifest["tickets"]]
    done = Imported()
    with app.db.unit() as session:
        previous = transfer.imported(session=session, export_id=manifest["export_id"])
        if previous is not None:
            raise ServiceError(f"this export was imported already on "
                               f"{previous.imported_at:%Y-%m-%d %H:%M} UTC (tickets "
                               f"{previous.tickets or 'none'}); nothing was imported")
        taken = transfer.taken_numbers(session=session, numbers=[b["number"] for b, _ in bundles])
        # the numbers kept first, then the sequence moved past them: a renumbered ticket
        # must not be given a number a kept one is about to take
        for keep in (True, False):
            for bundle, raws in bundles:
                if (bundle["number"] not in taken) is keep:
                    done.numbers[bundle["number"]] = _import_ticket(session, bundle, raws,
                                                                    keep, done, app.now())
            transfer.fix_ticket_sequence(session=session)
        done.numbers = dict(sorted(done.numbers.items()))
        for bundle, _ in bundles:        # a merge names a ticket that may be renumbered
            into = bundle["ticket"].get("merged_into_id")
            if into in done.renumbered:
                tickets.update_ticket(session=session, number=done.numbers[bundle["number"]],
                                      values={"merged_into_id": done.renumbered[into]})
        transfer.mark_imported(session=session, export_id=manifest["export_id"],
                               source=str(src), tickets_map=",".join(
                                   f"{o}->{n}" for o, n in done.numbers.items()))
    app.log.info("tickets imported", directory=str(src), tickets=len(done.numbers),
                 renumbered=len(done.renumbered), mails=done.mails)
    return done


def _manifest(src: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((src / "export.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ServiceError(f"{src}: no export.json (not a mailgate export)") from None
    except (OSError, ValueError) as exc:
        raise ServiceError(f"{src}/export.json: cannot read: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ServiceError(f"{src}/export.json: not a mailgate export")
    if manifest.get("version") != VERSION:
        raise ServiceError(f"{src}/export.json: export format version "
                           f"{manifest.get('version')!r}; this mailgate reads {VERSION}")
    return manifest


def _checked_ticket(src: Path, entry: dict[str, Any]) -> tuple[dict[str, Any], dict]:
    """A ticket's JSON, and its raw mails by mbox index, each checked by checksum."""
    try:
        bundle = json.loads((src / entry["json"]).read_text(encoding="utf-8"))
        box = mailbox.mbox(str(src / entry["mbox"]), create=False)
        texts = [box.get_bytes(k) for k in box.iterkeys()]
        box.close()
    except (OSError, ValueError, KeyError) as exc:
        raise ServiceError(f"{src}: ticket {entry.get('number')}: cannot read: {exc}") from None
    raws = {}
    for m in bundle["messages"]:
        r = m.get("raw")
        if r is not None:
            i = r["mbox_index"]
            raw = restore(texts[i], r["from_lines"], r["ends_with_newline"]) \
                if i < len(texts) else b""
            if hashlib.sha256(raw).hexdigest() != r["sha256"]:
                raise ServiceError(f"{entry['mbox']}: mail {i} does not match its checksum; "
                                   "nothing was imported")
            raws[i] = raw
        for a in m["attachments"]:
            path = src / "attachments" / a["sha256"]
            if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != a["sha256"]:
                raise ServiceError(f"{path}: missing or not matching its checksum; nothing "
                                   "was imported")
    bundle["_src"] = str(src)       # where its files are read from when it is written
    return bundle, raws


def _import_ticket(session, bundle: dict[str, Any], raws: dict[int, bytes], keep: bool,
                   done: Imported, now: dt.datetime) -> int:
    project = _project(session, bundle["project"], now)
    contacts = {c["email"]: people.contact_row(session=session, email=c["email"],
                                               name=c["name"])[0]
                for c in bundle["contacts"]}
    staff = transfer.agents_by_email(session=session, emails=[bundle["assignee"],
                                                              bundle["owner"]])
    requester = next((c["email"] for c in bundle["contacts"] if c["role"] == "requester"),
                     None)
    values = _typed(Ticket, bundle["ticket"]) | {
        "project_id": project, "requester_id": contacts.get(requester),
        "assignee_id": staff.get(bundle["assignee"]), "owner_id": staff.get(bundle["owner"])}
    number = transfer.insert_ticket(session=session, values=values,
                                    number=bundle["number"] if keep else None)
    transfer.add_contacts(session=session, ticket_id=number,
                          people=[(contacts[c["email"]], c["role"]) for c in bundle["contacts"]])
    inbound_ids = _messages(session, bundle, raws, number, done)
    tickets.insert_rows(session=session, model=Event, rows=[
        _typed(Event, e) | {"ticket_id": number, "inbound_id": inbound_ids.get(e.get(
            "inbound_id"))} for e in bundle["events"]])
    tickets.insert_rows(session=session, model=ThreadRef, rows=[
        {"msgid": msgid, "ticket_id": number, "created_at": now}
        for msgid in bundle["thread_refs"]])
    return number


def _messages(session, bundle: dict[str, Any], raws: dict[int, bytes], number: int,
              done: Imported) -> dict[int, int]:
    """Insert the messages with their incoming rows and files; old -> new inbound ids."""
    taken = transfer.taken_dedup_keys(session=session,
                                      keys=[m.get("dedup_key") for m in bundle["messages"]])
    inbound_ids: dict[int, int] = {}
    for m in bundle["messages"]:
        inbound_id = None
        if m.get("inbound") is not None and m.get("raw") is not None:
            old = m["inbound"]
            inbound_id = transfer.insert_inbound(session=session, raw=raws[m["raw"]["mbox_index"]],
                                                 values=_typed(Inbound, old) | {
                                                     "ticket_id": number})
            inbound_ids[old["id"]] = inbound_id
            done.mails += 1
        values = _typed(Message, {k: v for k, v in m.items()
                                  if k not in ("raw", "inbound", "attachments")})
        if values.get("dedup_key") in taken:
            values["dedup_key"] = None       # the same mail is here already, on another ticket
        row_id = transfer.insert_one(session=session, model=Message, values=values | {
            "ticket_id": number, "inbound_id": inbound_id})
        files = []
        for a in m["attachments"]:
            data = (Path(bundle["_src"]) / "attachments" / a["sha256"]).read_bytes()
            files.append(_typed(Attachment, a) | {"message_row_id": row_id, "data": data})
        tickets.insert_attachments(session=session, rows=files)
        done.files += len(files)
    return inbound_ids


def _project(session, data: dict[str, Any], now: dt.datetime) -> int:
    """The project of the same slug, or a new one as it was exported."""
    found = people.project_by_slug(session=session, slug=data["slug"])
    if found is not None:
        return found.id
    return transfer.insert_one(session=session, model=Project, values={
        **{k: data[k] for k in _PROJECT_KEYS if k in data}, "created_at": now})


def _typed(model, values: dict[str, Any]) -> dict[str, Any]:
    """JSON values back into column types (dates and times come as ISO text); keys the
    model does not have (an export from a newer mailgate) are left out."""
    cols = {c.name: c for c in model.__table__.columns}
    out = {}
    for k, v in values.items():
        if k not in cols or k == "id":
            continue
        if isinstance(v, str) and isinstance(cols[k].type, _UTC):
            v = dt.datetime.fromisoformat(v)
        elif isinstance(v, str) and isinstance(cols[k].type, Date):
            v = dt.date.fromisoformat(v)
        out[k] = v
    return out
