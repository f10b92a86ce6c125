"""`mailgate search` over the real CLI (a subprocess) and real SMTP, on SQLite and
PostgreSQL: words, phrases, prefixes, quoted text, attachment names and date ranges
find the right messages and nothing else; no query is an FTS syntax error; German
inflected forms are found on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import select

from store.models import Message
from store.search import Term, fts5_match, parse_query, pg_tsquery
from tests.support.harness import SUPPORT, make_mail

ROOT = Path(__file__).resolve().parent.parent
CARLA = "carla@client.example"


def run_cli(h, *args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    """The installed entry point as a person runs it: output as bytes."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MAILGATE_")}
    environ.update({"PYTHONPATH": str(ROOT), "COLUMNS": "100", **env})
    return subprocess.run([sys.executable, "-m", "mailgate", "--config", str(h.config_path),
                           *args], capture_output=True, timeout=60, env=environ,
                          cwd=cwd or h.tmp_path)


def search_json(h, *args: str, subprocess: bool = False) -> list[dict]:
    """Hits as JSON; in-process unless `subprocess` (each process start costs a second
    on a shared machine; the bytes-level checks below run as a subprocess)."""
    if subprocess:
        done = run_cli(h, "search", *args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)
    result = h.cli("search", *args, "--json")
    assert result.code == 0, result.err
    return json.loads(result.out)


def mail_with_file(subject: str, body: str, filename: str, data: bytes) -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = f"Carla Client <{CARLA}>"
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="client.example")
    msg.set_content(body)
    msg.add_attachment(data, maintype="application", subtype="octet-stream",
                       filename=filename)
    return msg.as_bytes()


def set_created(h, subject: str, when: dt.datetime) -> int:
    """Date a stored message back (mail arrives 'now' in a test)."""
    with h.app.db.unit() as s:
        m = s.exec(select(Message).where(Message.subject == subject)).one()
        s.execute(update(Message).where(Message.id == m.id).values(created_at=when))
        return m.id


@pytest.mark.parametrize(("query", "terms"), [
    ("zertifikat", (Term(("zertifikat",)),)),
    ("SSL Zertifikat", (Term(("ssl",)), Term(("zertifikat",)))),
    ('"certificate expired" march', (Term(("certificate", "expired")), Term(("march",)))),
    ("zert*", (Term(("zert",), prefix=True),)),
    ("Grüße Ærø", (Term(("grüße",)), Term(("ærø",)))),
    ("cert.pem", (Term(("cert",)), Term(("pem",)))),
    ('"unclosed phrase', (Term(("unclosed", "phrase")),)),
    ('NEAR(a b) OR c* ^d -e :f', (Term(("near",)), Term(("a",)), Term(("b",)), Term(("or",)),
                                  Term(("c",), prefix=True), Term(("d",)), Term(("e",)),
                                  Term(("f",)))),
    ('" " * ( ) - ^ :', ()),
    ("", ()),
    ("word word", (Term(("word",)),)),
    (" ".join(f"w{i}" for i in range(100)), tuple(Term((f"w{i}",)) for i in range(32))),
])
def test_a_query_becomes_words_phrases_and_prefixes(query, terms):
    assert parse_query(query) == terms


def test_engine_queries_quote_every_word_so_input_is_never_syntax():
    terms = parse_query('"certificate expired" zert* or')
    assert fts5_match(terms) == '"certificate expired" "zert"* "or"'
    assert pg_tsquery(terms) == "(certificate <-> expired) & zert:* & or"


def test_search_finds_words_phrases_prefixes_quotes_files_and_dates(mg):
    mg.send(make_mail(sender=CARLA, subject="Printer trouble",
                      body="The SSL certificate expired in March.\n"), mail_from=CARLA)
    mg.send(mail_with_file("Website down", "Our homepage shows an error since Monday.",
                           "report-final.pdf", b"%PDF-1.4\x00\xff"), mail_from=CARLA)
    mg.send(make_mail(sender=CARLA, subject="Invoice question",
                      body="Please send the certificate again.\n\n"
                           "On Monday, Support wrote:\n> The zebra crossing is closed.\n"),
            mail_from=CARLA)
    mg.settle()
    march = set_created(mg, "Printer trouble", dt.datetime(2026, 3, 10, 9, tzinfo=dt.UTC))
    may = set_created(mg, "Website down", dt.datetime(2026, 5, 1, 9, tzinfo=dt.UTC))
    now = set_created(mg, "Invoice question", dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC))

    def found(*args: str) -> list[int]:
        return [h["message"] for h in search_json(mg, *args)]

    assert found("homepage") == [may]                            # a body word
    assert found('"certificate expired"') == [march]             # a phrase, not both words
    assert sorted(found("certif*")) == sorted([march, now])      # a prefix
    assert found("certificate", "--since", "2026-03-01", "--until", "2026-03-31") == [march]
    assert found("certificate", "--since", "2026-11-20") == [now]   # both days count whole
    assert found("zebra") == [now]                               # the quoted part
    assert found("report") == [may]                              # an attachment name
    assert found("homepage", "--direction", "out") == []
    assert found("homepage", "--from", CARLA.upper()) == [may]
    assert found("nosuchword") == []
    march_ticket = search_json(mg, '"certificate expired"')[0]["ticket"]
    assert found("certif*", "--ticket", str(march_ticket)) == [march]
    assert sorted(found("certif*", "--status", "new")) == sorted([march, now])
    assert found("certif*", "--done") == [] and len(found("certif*", "--undone")) == 2
    assert found("certif*", "--limit", "1") in ([march], [now])
    assert mg.cli("search", "certif*", "--status", "nosuch").code == 2
    events = search_json(mg, "opened", "--ticket", str(march_ticket))   # the log, too
    assert [(e["kind"], e["message"]) for e in events] == [("event", None)]

    (hit,) = search_json(mg, "homepage", subprocess=True)
    assert set(hit) >= {"ticket", "message", "date", "from", "direction", "subject",
                        "snippet", "score"}
    assert (hit["from"], hit["direction"], hit["subject"]) == (CARLA, "in", "Website down")
    assert "«homepage»" in hit["snippet"].lower()

    hostile = run_cli(mg, "search", 'certificate" OR (NEAR* ^-: ""')
    assert hostile.returncode == 0, hostile.stderr
    text = run_cli(mg, "search", "homepage")
    assert text.returncode == 0 and b"Website down" in text.stdout
    nothing = run_cli(mg, "search", '" * "')
    assert nothing.returncode == 2 and nothing.stderr.count(b"\n") == 1
    unknown = run_cli(mg, "search", "homepage", "--project", "nope")
    assert unknown.returncode == 2


def test_german_inflected_forms_are_found_on_postgresql(harness_factory, pg_url):
    h = harness_factory(pg_url).start()
    assert h.cli("project", "add", "shop", "--name", "Shop", "--language", "de",
                 "--customer", CARLA).code == 0
    h.send(make_mail(sender=CARLA, subject="SSL", body="Das Zertifikat ist abgelaufen."),
           mail_from=CARLA)
    h.settle()
    (hit,) = search_json(h, "Zertifikate", "--project", "shop", subprocess=True)
    assert hit["subject"] == "SSL" and "«Zertifikat»" in hit["snippet"]
    assert len(search_json(h, "abgelaufenen")) == 1


def test_an_upgraded_database_finds_the_messages_it_already_had(db_url):
    """The migration step indexes existing rows; later inserts are indexed by triggers."""
    from sqlalchemy import text

    from store.db import Database
    from store.migrations import migrate
    from store.search import SearchQuery, search
    from tests.test_store import _load_v1

    db = Database(db_url)
    try:
        _load_v1(db)
        with db.write_engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO message (ticket_id, direction, author, message_id, in_reply_to, "
                "\"references\", from_addr, from_name, to_addrs, cc_addrs, subject, text, "
                "full_text, html, decision, defects, created_at) VALUES (1, 'in', 'customer', "
                "'', '', '', :who, '', '[]', '[]', 'Old mail', 'The backup failed twice.', "
                "'The backup failed twice.', '', '{}', '[]', :now)"),
                {"who": CARLA, "now": dt.datetime(2026, 1, 2)})
        migrate(db)
        with db.unit(write=False) as s:
            (hit,) = search(s, SearchQuery(terms=parse_query("backup")))
            assert (hit.ticket, hit.subject) == (1, "Old mail")
            assert search(s, SearchQuery(terms=parse_query("backup"), done=True)) == []
    finally:
        db.dispose()


def test_a_search_index_without_dates_gets_them_and_date_and_project_filters_work(pg_url):
    """PostgreSQL: the step that copies each message's date and project into the index
    backfills rows indexed before it, and the trigger keeps them for new rows."""
    from sqlalchemy import text

    from store.db import Database
    from store.migrations import SCHEMA_VERSION, STEPS, migrate
    from store.models import Project, Ticket
    from store.search import SearchQuery, search
    from store.search_index import add_search_keys

    (step,) = [st.version for st in STEPS if st.apply is add_search_keys]
    day = dt.datetime(2026, 3, 10, tzinfo=dt.UTC)
    db = Database(pg_url)
    try:
        migrate(db)
        with db.unit() as s:
            s.add(Project(slug="acme", name="Acme", key="acme", language="en"))
            s.flush()
            s.add(Ticket(project_id=1, subject="Backups", status="open"))
            s.flush()
            s.add(Message(ticket_id=1, subject="Backup", text="The backup failed.",
                          full_text="The backup failed.", created_at=day))
        with db.write_engine.begin() as conn:     # as the previous schema left it
            conn.execute(text("ALTER TABLE message_search DROP COLUMN created_at, "
                              "DROP COLUMN project_id"))
            conn.execute(text("UPDATE schema_version SET version = :v"),
                         {"v": step - 1})
        assert migrate(db) == (step - 1, SCHEMA_VERSION)
        with db.unit() as s:
            s.add(Message(ticket_id=1, subject="Backup", text="The backup failed again.",
                          full_text="The backup failed again.",
                          created_at=day + dt.timedelta(days=30)))
        with db.unit(write=False) as s:
            rows = s.connection().execute(text(
                "SELECT s.created_at = m.created_at, s.project_id FROM message_search s "
                "JOIN message m ON m.id = s.message_id")).all()
            assert rows == [(True, 1), (True, 1)]
            found = search(s, SearchQuery(terms=parse_query("backup"), project="acme",
                                          since=day, until=day + dt.timedelta(days=1)))
            assert [h.date for h in found] == [day]
            assert search(s, SearchQuery(terms=parse_query("backup"), project="nope")) == []
    finally:
        db.dispose()
