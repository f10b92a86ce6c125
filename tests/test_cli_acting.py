"""Acting on tickets from the command line (`ticket reply|note|set|new|log|merge`): the
same commands, permissions and effects as an agent's mail. Over the real CLI and real
SMTP, on both databases; the options -> commands part as a table."""

from __future__ import annotations

import email
import io
import json
import re
import sys
from email.policy import SMTP

import pytest
from sqlmodel import select

from routing import acting
from routing.acting import SetOptions, command_lines, commands_of
from routing.effects import MailKind
from routing.guards import GuardFacts
from routing.quota import Budget
from store.models import Outbox
from tests import test_decide as td
from tests.support.harness import make_mail, reply_to

CARLA = "carla@client.example"
ANNA = "anna@agency.example"
DIETER = "dieter@client.example"


# --- the pure part: options -> the command lines a mail would carry -----------------------

@pytest.mark.parametrize(("options", "lines"), [
    (SetOptions(), ()),
    (SetOptions(status="waiting"), ("/status waiting",)),
    (SetOptions(priority="high", due="2026-12-24"), ("/priority high", "/due 2026-12-24")),
    (SetOptions(due="none"), ("/due none",)),
    # a group brings its owner; an explicit owner or assignee is written after it and wins
    (SetOptions(assign="bob", owner="anna", group="web"),
     ("/group web", "/owner anna", "/assign bob")),
    # the status comes last: it wins over a workflow's move on assignment
    (SetOptions(status="open", assign="me"), ("/assign me", "/status open")),
    (SetOptions(type="incident", cc_add=("a@x.example", "b@x.example"),
                cc_remove=("c@x.example",)),
     ("/type incident", "/cc add a@x.example", "/cc add b@x.example",
      "/cc remove c@x.example")),
])
def test_set_options_become_the_command_lines_of_a_mail(options, lines):
    assert command_lines(options) == lines


@pytest.mark.parametrize(("options", "verb", "value", "error"), [
    (SetOptions(status="waiting, data"), "status", ("waiting", "data"), ""),
    (SetOptions(priority="hoch"), "priority", 3, ""),
    (SetOptions(priority="urgent"), "priority", None, "priority must be low, normal or high"),
    (SetOptions(due="soon"), "due", None, "due date must look like 2026-12-31"),
    (SetOptions(cc_add=("not an address",)), "cc", None, "use /cc add EMAIL"),
    (SetOptions(status=""), "status", None, "/status needs a value"),
])
def test_set_options_parse_as_the_same_commands(options, verb, value, error):
    (cmd,) = commands_of(options)
    assert (cmd.verb, cmd.error[:len(error)] if error else cmd.error) == (verb, error)
    if not error:
        assert cmd.value == value


# --- the pure part: the same decision as the agent's mail ------------------------------------

def _by_mail(text: str, ctx):
    """What the same agent's reply mail (to a reply token) decides."""
    return td.run(td.mail(td.ANNA.email, text), td.to_ticket(), ctx)


def _comparable(effects):
    return ([(m.kind, m.to.email, m.template) for m in effects.mails
             if m.kind is not MailKind.TRANSCRIPT],
            [e for e in effects.events if e.kind != "reply"], effects.changes, effects.after)


@pytest.mark.parametrize("options", [
    SetOptions(status="closed"),
    SetOptions(priority="high", due="2026-12-24", assign="ben"),
    SetOptions(cc_add=("eve@customer.example",), cc_remove=(td.DORA.email,), type="bug"),
])
def test_ticket_set_decides_as_the_same_commands_in_a_mail(options):
    ctx, s = td.ticket(), td.site()
    guard = GuardFacts(s.policy, frozenset({"support@example.com"}))
    cli = acting.set_fields(ctx, s, guard, td.ANNA.email, commands_of(options))
    assert cli.message is None                   # no empty message, as no text was written
    assert _comparable(cli) == _comparable(_by_mail("\n".join(command_lines(options)), ctx))


def test_ticket_reply_and_note_decide_as_the_agents_mail():
    ctx, s = td.ticket(), td.site()
    guard = GuardFacts(s.policy, frozenset({"support@example.com"}))
    for note, text in ((False, "Bitte ein Foto."), (True, "Kunde ohne Vertrag.")):
        cli = acting.reply(ctx, s, guard, td.ANNA.email, text=text, note=note)
        by_mail = _by_mail(("/note\n" if note else "") + text, ctx)
        assert _comparable(cli) == _comparable(by_mail)
        assert cli.message == by_mail.message


@pytest.mark.parametrize(("who", "options", "ctx", "why"), [
    (td.CARL.email, SetOptions(status="closed"), td.ticket(), "is not an agent"),
    (td.OTTO.email, SetOptions(status="closed"), td.ticket(),
     "is not an agent of project acme"),
    (td.ANNA.email, SetOptions(status="flying"), td.ticket(), "/status flying: unknown status"),
    (td.ANNA.email, SetOptions(priority="high", status="flying"), td.ticket(),
     "/status flying: unknown status"),
    (td.ANNA.email, SetOptions(status="open"),
     td.ticket(status="new", quota=Budget(600, 600)),
     "/status open: Offen cannot be entered: the support"),
    (td.ANNA.email, SetOptions(), td.ticket(), "nothing to set"),
])
def test_ticket_set_is_refused_as_a_whole(who, options, ctx, why):
    s = td.site()
    result = acting.set_fields(ctx, s, GuardFacts(s.policy, frozenset()), who,
                               commands_of(options))
    assert isinstance(result, acting.Refused) and why in result.reason, result


# --- end to end ------------------------------------------------------------------------------

# parsing and processing in the daemon's own process: the same code, without starting a
# worker process per test (seconds each)
IN_PROCESS = {"in_process": True, "parse_workers": 0}


def desk(harness_factory, db_url, **overrides):
    """A running mailgate with the acme project, its customer Carla and agent Anna."""
    h = harness_factory(db_url, processing=IN_PROCESS, **overrides).start()
    assert h.cli("project", "add", "acme", "--name", "ACME Corp", "--customer", CARLA).code == 0
    assert h.cli("agent", "add", ANNA, "--name", "Anna Agent").code == 0
    return h


@pytest.fixture
def mg(harness_factory, db_url):
    return desk(harness_factory, db_url)


def act(mg, verb: str, *args: str):
    """`mailgate ticket VERB ARGS`, then the daemon's sender is woken: the command line
    is another process, whose mail the sender would otherwise find on its next poll."""
    result = mg.cli("ticket", verb, *args)
    mg.daemon.daemon.wake_sender()
    return result


def reply_address(received) -> str:
    return received.message["Reply-To"].addresses[0].addr_spec


def open_ticket(mg, subject: str, body: str = "Er druckt nicht.") -> tuple[int, object, object]:
    """Carla writes; returns the ticket, her acknowledgement and Anna's notification."""
    mg.send(make_mail(sender=CARLA, subject=subject, body=body), mail_from=CARLA)
    mg.settle()
    return mg.tickets()[-1].id, mg.relay.to(CARLA)[-1], mg.relay.to(ANNA)[-1]


def show(mg, n: int) -> dict:
    return json.loads(mg.cli("ticket", "show", str(n), "--json").out)


def outbox(mg, n: int) -> list[tuple]:
    """The mails queued for ticket `n` as comparable rows (the transcript answers a mail
    and has no counterpart on the command line, which prints it)."""
    with mg.app.db.unit(write=False) as s:
        rows = s.exec(select(Outbox.kind, Outbox.rcpt, Outbox.template, Outbox.audience)
                      .where(Outbox.ticket_id == n)).all()
    return sorted(tuple(r) for r in rows if r[0] != "transcript")


def events(data: dict, skip=("created", "reply")) -> list[tuple]:
    return [(e["kind"], e["actor"], e["old"], e["new"], e["detail"])
            for e in data["events"] if e["kind"] not in skip]


def mail_reply(mg, notification, body: str, files: dict[str, bytes] | None = None) -> None:
    """Anna hits Reply on her notification."""
    raw = reply_to(notification.message, sender=ANNA, body=body, quote=False)
    if files:
        msg = email.message_from_bytes(raw, policy=SMTP)
        for name, data in files.items():
            msg.add_attachment(data, maintype="application", subtype="pdf", filename=name)
        raw = msg.as_bytes()
    mg.send(raw, rcpt=reply_address(notification), mail_from=ANNA)
    mg.settle()


def files_of(received) -> dict[str, bytes]:
    return {p.get_filename(): p.get_content() for p in received.message.iter_attachments()}


def untagged(text: str) -> str:
    return re.sub(r"#\d+", "#N", text)


def test_reply_and_set_cause_the_same_mails_and_log_as_by_mail(mg, tmp_path):
    offer = b"%PDF-1.4 offer\n" * 50
    (tmp_path / "angebot.pdf").write_bytes(offer)
    by_mail, _, notification = open_ticket(mg, "Drucker A")
    by_cli, _, _ = open_ticket(mg, "Drucker B")

    mail_reply(mg, notification, "Bitte schicken Sie ein Foto.", {"angebot.pdf": offer})
    done = act(mg, "reply", str(by_cli), "--as", ANNA,
                  "--file", str(tmp_path / "angebot.pdf"), "Bitte schicken Sie ein Foto.")
    assert done.code == 0, done.err
    mg.settle()
    assert outbox(mg, by_cli) == outbox(mg, by_mail)
    assert events(show(mg, by_cli)) == events(show(mg, by_mail))
    a, b = show(mg, by_mail), show(mg, by_cli)
    assert [(m["direction"], m["text"], [f["filename"] for f in m["attachments"]])
            for m in b["messages"]] == \
           [(m["direction"], m["text"], [f["filename"] for f in m["attachments"]])
            for m in a["messages"]]
    # the customer's copy reads the same: the agent's name, the text, the file
    (sent_mail,), (sent_cli,) = ([m for m in mg.relay.to(CARLA) if f"[#{n}]" in m.subject
                                  and "Foto" in m.text] for n in (by_mail, by_cli))
    assert sent_cli.message["From"].addresses[0].display_name == "Anna Agent"
    assert str(sent_cli.message["From"]) == str(sent_mail.message["From"])
    assert untagged(sent_cli.text) == untagged(sent_mail.text)
    assert files_of(sent_cli) == files_of(sent_mail) == {"angebot.pdf": offer}
    assert sent_cli.header("Auto-Submitted") is None

    mail_reply(mg, notification, "/priority high\n/status waiting")
    done = act(mg, "set", str(by_cli), "--as", ANNA, "--priority", "high",
                  "--status", "waiting")
    assert done.code == 0, done.err
    assert "status: new -> waiting  (/status waiting)" in done.out
    mg.settle()
    a, b = show(mg, by_mail), show(mg, by_cli)
    assert (b["status"], b["priority"]) == (a["status"], a["priority"]) == ("waiting", 3)
    assert outbox(mg, by_cli) == outbox(mg, by_mail)
    assert events(b) == events(a)
    assert [e for e in events(b) if e[0] == "status"] == [
        ("status", ANNA, "new", "waiting", "/status waiting")]


def test_a_non_agent_or_a_refused_command_changes_nothing(mg):
    n, _, _ = open_ticket(mg, "Drucker")
    mg.settle()
    before, queued = show(mg, n), outbox(mg, n)
    for args in (("reply", str(n), "--as", CARLA, "Ich bin der Agent."),
                 ("set", str(n), "--as", CARLA, "--status", "closed"),
                 ("note", str(n), "--as", "mallory@evil.example", "psst"),
                 ("set", str(n), "--as", ANNA, "--priority", "high", "--status", "flying"),
                 ("set", str(n), "--as", ANNA, "--due", "soon"),
                 ("reply", "999", "--as", ANNA, "Hallo"),
                 ("log", str(n), "--as", CARLA, "--kind", "call", "Anruf")):
        result = mg.cli("ticket", *args)
        assert result.code == 1, args
        assert result.err.count("\n") == 1 and result.err.startswith("mailgate: "), result.err
    assert "not an agent" in act(mg, "set", str(n), "--as", CARLA,
                                    "--status", "closed").err
    assert "unknown status 'flying'" in act(mg, "set", str(n), "--as", ANNA,
                                               "--status", "flying").err
    assert act(mg, "note", str(n), "hi").code == 2          # no --as, no [cli] agent
    mg.settle()
    assert show(mg, n) == before
    assert outbox(mg, n) == queued


def test_a_new_conversation_threads_the_customers_answers(mg):
    done = act(mg, "new", "--project", "acme", "--to", f"Dieter <{DIETER}>",
                  "--subject", "Ihr Wartungsvertrag", "--as", ANNA,
                  "Guten Tag, Ihr Vertrag läuft aus.")
    assert done.code == 0, done.err
    (first,) = mg.relay.wait_for(DIETER)
    n = mg.tickets()[-1].id
    assert first.subject == f"[#{n}] Ihr Wartungsvertrag"          # no "Re:" on a first mail
    assert "Ihr Vertrag läuft aus." in first.text
    assert first.message["From"].addresses[0].display_name == "Anna Agent"
    data = show(mg, n)
    assert (data["requester"], data["assignee"], data["project"]) == (DIETER, ANNA, "acme")
    # the answer to the Reply-To address
    mg.send(reply_to(first.message, sender=DIETER, body="Bitte verlängern."),
            rcpt=reply_address(first), mail_from=DIETER)
    # and one that names the sent Message-ID only (no token, no [#N] in the subject)
    mg.send(make_mail(sender=DIETER, subject="Noch eine Frage", body="Was kostet das?",
                      headers={"In-Reply-To": str(first.message["Message-ID"])}),
            mail_from=DIETER)
    mg.settle()
    assert len(mg.tickets()) == 1
    texts = [(m["direction"], m["text"]) for m in show(mg, n)["messages"]]
    assert texts == [("out", "Guten Tag, Ihr Vertrag läuft aus."),
                     ("in", "Bitte verlängern."), ("in", "Was kostet das?")]


def test_a_call_is_logged_and_never_mailed(harness_factory, db_url, monkeypatch):
    """With `[cli] agent` set, --as may be left out; `-` reads the text from stdin."""
    mg = desk(harness_factory, db_url, cli={"agent": ANNA})
    n, _, _ = open_ticket(mg, "Rechnung")
    mg.settle()
    sent = len(mg.relay.to(CARLA))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(
        b"Frau Kunde rief an: Rechnung 4711 ist doppelt.\n")))
    done = act(mg, "log", str(n), "--kind", "call", "--from-customer", "-")
    assert done.code == 0, done.err
    (entry,) = json.loads(mg.cli("log", "acme", "--kind", "call", "--json").out)
    assert (entry["ticket"], entry["author"], entry["kind"]) == (n, ANNA, "call")
    assert "Rechnung 4711 ist doppelt" in entry["text"]
    (call,) = [e for e in show(mg, n)["events"] if e["kind"] == "call"]
    assert (call["new"], call["actor"]) == ("from customer", ANNA)
    assert act(mg, "reply", str(n), "Wir prüfen das.").code == 0
    mg.settle()
    (answer,) = mg.relay.wait_for(CARLA, sent + 1)[sent:]
    assert "Wir prüfen das." in answer.text
    assert all("4711" not in m.text for m in mg.relay.to(CARLA))
    assert all("4711" not in m.text for m in mg.relay.messages)


def test_merge_moves_the_conversation_and_redirects_later_mail(mg):
    keep, _, _ = open_ticket(mg, "Drucker druckt nicht")
    gone, gone_ack, _ = open_ticket(mg, "Nochmal: Drucker", "Immer noch kaputt.")
    done = act(mg, "merge", str(gone), "--into", str(keep), "--as", ANNA)
    assert done.code == 0, done.err
    merged, kept = show(mg, gone), show(mg, keep)
    assert (merged["merged_into"], merged["status"]) == (keep, "closed")
    assert [m["text"] for m in merged["messages"]] == []
    assert [m["text"] for m in kept["messages"]] == ["Er druckt nicht.", "Immer noch kaputt."]
    assert [e["detail"] for e in merged["events"] if e["kind"] == "merged"] == \
           [f"merged into #{keep}"]
    assert re.search(rf"^merged into +#{keep}$", mg.cli("ticket", "show", str(gone)).out, re.M)
    # Carla answers the merged ticket's acknowledgement: by its reply token...
    mg.send(reply_to(gone_ack.message, sender=CARLA, body="Hallo?"),
            rcpt=reply_address(gone_ack), mail_from=CARLA)
    # ... and by its Message-ID alone
    mg.send(make_mail(sender=CARLA, subject="Und?", body="Noch da?",
                      headers={"In-Reply-To": str(gone_ack.message["Message-ID"])}),
            mail_from=CARLA)
    mg.settle()
    assert len(mg.tickets()) == 2
    assert [m["text"] for m in show(mg, keep)["messages"]][-2:] == ["Hallo?", "Noch da?"]
    assert show(mg, gone)["messages"] == []
    refused = act(mg, "reply", str(gone), "--as", ANNA, "Hallo")
    assert refused.code == 1 and f"merged into #{keep}" in refused.err


def test_a_canned_reply_comes_first_in_a_cli_reply(harness_factory, db_url, tmp_path):
    pytest.importorskip("mailgate.handlers.canned", reason="canned replies not yet built")
    override = tmp_path / "templates"
    (override / "replies").mkdir(parents=True)
    (override / "replies" / "foto.txt.j2").write_text(
        "{% block subject %}Foto{% endblock %}{% block body %}Ticket #{{ ticket.number }}: "
        "bitte ein Foto, {{ customer.email }}.{% endblock %}\n")
    mg = desk(harness_factory, db_url, templates={"override_dir": str(override)})
    n, _, _ = open_ticket(mg, "Drucker")
    done = act(mg, "reply", str(n), "--as", ANNA, "--template", "foto", "Danke!")
    assert done.code == 0, done.err
    mg.settle()
    (answer,) = [m for m in mg.relay.to(CARLA) if "Danke!" in m.text]
    assert f"Ticket #{n}: bitte ein Foto, {CARLA}.\n\nDanke!" in answer.text.replace("\r\n", "\n")
    assert act(mg, "reply", str(n), "--as", ANNA, "--template", "nope").code == 1
