"""Templates: a missing variable fails check-config, overrides replace shipped templates,
and each processed mail leaves one structured log event."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.harness import make_mail, toml_dumps

ROOT = Path(__file__).resolve().parent.parent


def check_config(tmp_path: Path, override: Path) -> subprocess.CompletedProcess:
    config = tmp_path / "mailgate.toml"
    config.write_text(toml_dumps({"database": {"url": f"sqlite:///{tmp_path}/db.sqlite"},
                                  "templates": {"override_dir": str(override)}}))
    return subprocess.run([sys.executable, "-m", "mailgate", "--config", str(config),
                           "check-config"], capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def test_a_template_using_an_unknown_variable_fails_check_config(tmp_path):
    override = tmp_path / "templates"
    override.mkdir()
    (override / "ack.txt.j2").write_text(
        "{% block subject %}{{ ticket.subject }}{% endblock %}"
        "{% block body %}Hello {{ customer.nickname }}{% endblock %}")
    result = check_config(tmp_path, override)
    assert result.returncode == 1
    assert "ack.txt.j2" in result.stderr and "nickname" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_shipped_templates_pass_check_config(tmp_path):
    override = tmp_path / "empty"
    override.mkdir()
    result = check_config(tmp_path, override)
    assert result.returncode == 0, result.stderr
    assert ": OK" in result.stdout


def test_an_override_replaces_the_shipped_template(harness_factory, sqlite_url, tmp_path):
    override = tmp_path / "mine"
    override.mkdir()
    (override / "ack.txt.j2").write_text(
        "{% block subject %}Danke: {{ ticket.subject }}{% endblock %}"
        "{% block body %}Ticket {{ ticket.number }} ist angelegt.\n{{ signature }}"
        "{% endblock %}")
    h = harness_factory(sqlite_url, templates={"override_dir": str(override)}).start()
    assert h.cli("project", "add", "acme", "--name", "A", "--customer",
                 "carla@client.example").code == 0
    h.send(make_mail(sender="carla@client.example", subject="Drucker"))
    h.settle()
    (ack,) = h.relay.wait_for("carla@client.example")
    assert ack.subject.endswith("Danke: Drucker")
    assert "ist angelegt" in ack.text
    listed = {t["name"]: t["file"] for t in json.loads(h.cli("template", "list", "--json").out)}
    assert listed["ack"].startswith(str(override))


def test_each_processed_mail_logs_one_event_with_its_decision(harness_factory, sqlite_url,
                                                              capsys):
    # the event is written by the ingest handler: run it in this process to capture it
    h = harness_factory(sqlite_url, log={"level": "info", "format": "json"},
                        processing={"in_process": True}).start()
    h.send(make_mail(sender="stranger@else.example", subject="Wer bin ich"))
    h.settle()
    h.stop()
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines()
              if line.startswith("{") and '"mail processed"' in line]
    (event,) = events
    assert event["state"] == "unassigned" and "not a contact of any project" in event["reason"]
    assert event["inbound"] == h.inbound()[0].id and event["sender"] == "stranger@else.example"
