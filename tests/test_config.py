"""Config: defaults, the example file, and one-line errors naming file, key and expectation."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from mailgate.config import ConfigError, describe_defaults, load_config

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.toml"


def test_no_file_means_every_default(monkeypatch):
    monkeypatch.delenv("MAILGATE_CONFIG", raising=False)
    cfg = load_config(None)
    assert cfg.database.url == "sqlite:///mailgate.db"
    assert (cfg.smtp.host, cfg.smtp.port) == ("127.0.0.1", 2525)
    assert (cfg.outbound.host, cfg.outbound.port) == ("127.0.0.1", 25)
    assert cfg.smtp.max_message_bytes == 26214400


def test_mailgate_config_env_is_used(tmp_path, monkeypatch):
    path = tmp_path / "c.toml"
    path.write_text('[smtp]\nport = 2600\n')
    monkeypatch.setenv("MAILGATE_CONFIG", str(path))
    assert load_config(None).smtp.port == 2600


def test_example_file_loads_and_equals_the_defaults():
    cfg = load_config(EXAMPLE)
    data = tomllib.loads(EXAMPLE.read_text())
    defaults = describe_defaults()
    for section, values in data.items():
        for key, value in values.items():
            assert getattr(getattr(cfg, section), key) == value == defaults[section][key], key


def test_example_file_documents_every_key():
    text = EXAMPLE.read_text()
    for section, keys in describe_defaults().items():
        assert f"[{section}]" in text, section
        for key in keys:
            assert re.search(rf"^{key} = ", text, re.M), f"[{section}] {key} undocumented"


@pytest.mark.parametrize(("content", "words"), [
    ("[smtp]\nprot = 25\n", ["[smtp] prot", "unknown key", "did you mean 'port'"]),
    ("[smtp]\nport = \"25\"\n", ["[smtp] port", "expected an integer", "'25'"]),
    ("[smtp]\nport = 70000\n", ["[smtp] port", "between 0 and 65535", "70000"]),
    ("[smtp]\nport = true\n", ["[smtp] port", "expected an integer"]),
    ("[mail]\ndomains = \"example.com\"\n", ["[mail] domains", "expected a list"]),
    ("[mail]\nsupport_address = \"support+x@example.com\"\n", ["support_address",
                                                             "without a +suffix"]),
    ("[mail]\nsupport_address = \"help@other.example\"\n", ["[mail] domains",
                                                            "other.example"]),
    ("[database]\nurl = \"mysql://x\"\n", ["[database] url", "sqlite:///PATH"]),
    ("[log]\nformat = \"xml\"\n", ["[log] format", "'console', 'json'"]),
    ("[bogus]\nx = 1\n", ["bogus", "unknown key"]),
    ("smtp = 3\n", ["smtp", "expected a table"]),
    ("[smtp\n", ["not valid TOML"]),
    ("[mail]\nsecret_file = \"/nonexistent/secret\"\n", ["secret_file", "readable file"]),
    ("[[mail.retired_secrets]]\nvalid_until = \"soon\"\n", ["valid_until",
                                                            "a date like 2026-12-31"]),
], ids=["misspelt-key", "string-for-int", "port-range", "bool-for-int", "string-for-list",
        "plus-in-support", "domain-missing", "db-scheme", "log-format", "unknown-section",
        "scalar-section", "bad-toml", "missing-secret-file", "bad-date"])
def test_bad_config_names_file_key_and_expectation(tmp_path, content, words):
    path = tmp_path / "bad.toml"
    path.write_text(content)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message
    assert "\n" not in message
    for w in words:
        assert w in message


def test_bad_config_stops_startup_with_exit_2_and_one_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[smtp]\nport = \"x\"\n")
    proc = subprocess.run([sys.executable, "-m", "mailgate", "--config", str(path), "serve"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "bad.toml: [smtp] port: expected an integer" in lines[0]
    assert "Traceback" not in proc.stderr


def test_missing_config_file_is_a_one_line_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mailgate", "--config",
                           str(tmp_path / "nope.toml"), "check-config"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "file not found" in proc.stderr
