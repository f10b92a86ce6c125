"""Config: defaults, the example file, and one-line errors naming file, key and expectation."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from mailgate.config import ConfigError, describe_defaults, find_config, load_config
from mailgate.config_sections import ProcessingConfig
from tests.support.harness import toml_dumps
from tests.support.relay import free_port

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.toml"


def test_no_file_means_every_default(monkeypatch, tmp_path):
    monkeypatch.delenv("MAILGATE_CONFIG", raising=False)
    cfg = load_config(None, candidates=(tmp_path / "mailgate.toml",))
    assert cfg.source == "built-in defaults"
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


@pytest.mark.parametrize(("configured", "dialect", "batch"), [
    (0, "sqlite", 32),           # one write lock, shared with the accepting side
    (0, "postgresql", 64),       # row locks: longer batches share the lookups
    (10, "sqlite", 10),          # as configured, whatever the database
    (100, "postgresql", 100),
])
def test_processing_batch_by_database_unless_configured(configured, dialect, batch):
    assert ProcessingConfig(batch_size=configured).batch_for(dialect) == batch


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
    ("[processing]\nnice = 20\n", ["[processing] nice", "between 0 and 19", "20"]),
    ("[processing]\nbatch_size = -1\n", ["[processing] batch_size", "0 or more"]),
], ids=["misspelt-key", "string-for-int", "port-range", "bool-for-int", "string-for-list",
        "plus-in-support", "domain-missing", "db-scheme", "log-format", "unknown-section",
        "scalar-section", "bad-toml", "missing-secret-file", "bad-date", "nice-range",
        "negative-batch"])
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


# --- which file: --config, $MAILGATE_CONFIG, ./mailgate.toml, /etc/mailgate/mailgate.toml ---

LOCAL, SYSTEM = Path("mailgate.toml"), Path("/etc/mailgate/mailgate.toml")


@pytest.mark.parametrize(("explicit", "env", "existing", "expected"), [
    ("given.toml", "env.toml", {LOCAL, SYSTEM}, Path("given.toml")),
    (None, "env.toml", {LOCAL, SYSTEM}, Path("env.toml")),
    (None, None, {LOCAL, SYSTEM}, LOCAL),
    (None, None, {SYSTEM}, SYSTEM),
    (None, None, set(), None),                         # built-in defaults
    ("missing.toml", None, {LOCAL}, Path("missing.toml")),  # named: no quiet fall back
    (None, "", {SYSTEM}, SYSTEM),                      # MAILGATE_CONFIG= (empty) is unset
], ids=["flag-first", "env-second", "cwd-third", "etc-fourth", "defaults-last",
        "named-missing-is-kept", "empty-env"])
def test_config_discovery_order(explicit, env, existing, expected):
    assert find_config(explicit, env, (LOCAL, SYSTEM), exists=existing.__contains__) \
        == expected


def run_cli(cwd: Path, *args: str, env_config: str | None = None
            ) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILGATE_")}
    env["PYTHONPATH"] = str(ROOT)
    if env_config is not None:
        env["MAILGATE_CONFIG"] = env_config
    return subprocess.run([sys.executable, "-m", "mailgate", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def write_config(path: Path, db: str) -> Path:
    path.write_text(toml_dumps({"database": {"url": db}}))
    return path


@pytest.fixture
def three_configs(tmp_path):
    """./mailgate.toml in the working folder, another for MAILGATE_CONFIG, a third for
    --config; each names its own database, which is how the tests tell them apart."""
    work = tmp_path / "work"
    work.mkdir()
    return {name: write_config(path, f"sqlite:///{tmp_path}/{name}.db") for name, path in
            (("local", work / "mailgate.toml"), ("env", tmp_path / "env.toml"),
             ("flag", tmp_path / "flag.toml"))}


def test_mailgate_toml_in_the_working_folder_is_found(three_configs):
    local = three_configs["local"]
    done = run_cli(local.parent, "check-config")
    assert done.returncode == 0, done.stderr
    assert f"config:    {local}\n" in done.stdout
    assert "local.db" in done.stdout
    status = run_cli(local.parent, "status", "--json")
    shown = json.loads(status.stdout)
    assert shown["config"] == str(local) and shown["database"].endswith("/local.db")


def test_mailgate_config_wins_over_the_working_folder(three_configs):
    done = run_cli(three_configs["local"].parent, "check-config",
                   env_config=str(three_configs["env"]))
    assert done.returncode == 0, done.stderr
    assert f"config:    {three_configs['env']}\n" in done.stdout and "env.db" in done.stdout


def test_config_flag_wins_over_both(three_configs):
    done = run_cli(three_configs["local"].parent, "--config", str(three_configs["flag"]),
                   "status", env_config=str(three_configs["env"]))
    assert f"config:       {three_configs['flag']}\n" in done.stdout, done.stderr
    assert "flag.db" in done.stdout


def test_without_any_file_status_says_built_in_defaults(tmp_path):
    if Path("/etc/mailgate/mailgate.toml").exists():
        pytest.skip("this machine has /etc/mailgate/mailgate.toml")
    done = run_cli(tmp_path, "status")
    assert "config:       built-in defaults\n" in done.stdout, done.stderr
    assert "database:     sqlite:///mailgate.db\n" in done.stdout


@pytest.mark.postgres
def test_the_database_is_shown_with_its_password_masked(tmp_path, pg_url):
    url = make_url(pg_url).set(password="hunter2")   # trust auth: the password is ignored
    config = write_config(tmp_path / "pg.toml", url.render_as_string(hide_password=False))
    done = run_cli(tmp_path, "--config", str(config), "check-config")
    assert done.returncode == 0, done.stderr
    assert "database:  postgresql+psycopg://postgres:***@" in done.stdout
    status = run_cli(tmp_path, "--config", str(config), "status", "--json")
    assert json.loads(status.stdout)["database"].startswith("postgresql+psycopg://postgres:***@")
    assert "hunter2" not in done.stdout + done.stderr + status.stdout + status.stderr


def test_check_config_says_when_the_database_is_unavailable(tmp_path):
    url = f"postgresql+psycopg://mailgate:pw@127.0.0.1:{free_port()}/mailgate"
    done = run_cli(tmp_path, "--config", str(write_config(tmp_path / "c.toml", url)),
                   "check-config")
    assert done.returncode == 75
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("mailgate: database unavailable: postgresql+psycopg://mailgate:***@")
    assert "pw@" not in line


def test_check_config_refuses_a_missing_override_dir(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(toml_dumps({"database": {"url": f"sqlite:///{tmp_path}/x.db"},
                                  "templates": {"override_dir": str(tmp_path / "nope")}}))
    done = run_cli(tmp_path, "--config", str(config), "check-config")
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert f"{config}: [templates] override_dir: expected a readable folder" in line


def test_check_config_reads_the_schema_without_creating_a_database(tmp_path):
    config = write_config(tmp_path / "c.toml", f"sqlite:///{tmp_path}/fresh.db")
    done = run_cli(tmp_path, "--config", str(config), "check-config")
    assert done.returncode == 0, done.stderr
    assert "created with the schema on first start" in done.stdout
    assert not (tmp_path / "fresh.db").exists()
    assert run_cli(tmp_path, "--config", str(config), "project", "list").returncode == 0
    done = run_cli(tmp_path, "--config", str(config), "check-config")
    assert re.search(r"fresh\.db \(schema version \d+, current\)", done.stdout), done.stdout
