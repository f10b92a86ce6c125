"""Packaging: a wheel installed into a fresh venv (not editable) serves mail.

The slow test builds the wheel from a copy of the source, installs it into a new venv and
runs that venv's `mailgate` from a folder outside the checkout, so nothing can come from
the source tree: templates must come out of the wheel through importlib.resources.
"""

from __future__ import annotations

import os
import shutil
import signal
import smtplib
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

from mailgate.mail.templating import Templates
from mailgate.mail.variables import SAMPLE_VARS, check_templates
from tests.support.harness import SUPPORT, make_mail, toml_dumps
from tests.support.relay import free_port

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CODE = ("mailgate", "routing", "store", "scheduler")
CARLA = "carla@client.example"


def source_packages() -> set[str]:
    """Every folder of Python code in the checkout, as a dotted package name."""
    found = set()
    for top in CODE:
        for init in (ROOT / top).rglob("*.py"):
            if "__pycache__" not in init.parts:
                found.add(".".join(init.parent.relative_to(ROOT).parts))
    return found


def test_pyproject_lists_every_package_and_ships_templates_inside_mailgate():
    setuptools = PYPROJECT["tool"]["setuptools"]
    assert set(setuptools["packages"]) == source_packages() | {"mailgate.templates"}
    assert setuptools["package-dir"] == {"mailgate.templates": "templates"}
    assert setuptools["package-data"]["mailgate.templates"] == ["*.j2", "replies/*.j2"]


def test_templates_load_from_a_zipped_install(tmp_path):
    """Where the shipped templates are not a folder (mailgate imported from a zip),
    they are read through importlib.resources' Traversable."""
    archive = tmp_path / "site.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for j2 in (ROOT / "templates").rglob("*.j2"):
            zf.write(j2, f"mailgate/templates/{j2.relative_to(ROOT / 'templates').as_posix()}")
    root = zipfile.Path(archive, "mailgate/templates/")
    from_zip = Templates(shipped=root)
    from_folder = Templates(shipped=ROOT / "templates")
    assert from_zip.names() == from_folder.names() and "ack" in from_zip.names()
    assert from_zip.source_of("ack").endswith("site.zip/mailgate/templates/ack.txt.j2")
    assert check_templates(from_zip) == []          # each one renders through the zip
    assert from_zip.render("ack", SAMPLE_VARS) == from_folder.render("ack", SAMPLE_VARS)
    # the canned replies live in a subfolder, read through the zip as well
    assert from_zip.names("replies") == from_folder.names("replies") != []
    assert from_zip.render("replies/need-login", SAMPLE_VARS, "de") == \
        from_folder.render("replies/need-login", SAMPLE_VARS, "de")


# --- a wheel in a fresh venv ---------------------------------------------------------------


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A new venv with the wheel installed (not editable). Its dependencies come from
    this checkout's venv through a .pth line, which adds that folder to sys.path but does
    not run the editable-install hook inside it."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=lambda d, names: [
        n for n in names if n in {".venv", ".git", "__pycache__", "build", "tests", "bench",
                                  ".ruff_cache", ".pytest_cache"} or n.endswith(".egg-info")])
    dist = tmp / "dist"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    done = subprocess.run([*pip, "wheel", "-q", "--no-deps", "-w", str(dist), str(src)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = dist.glob("mailgate-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    done = subprocess.run([*pip, "--python", str(venv / "bin" / "python"), "install", "-q",
                           "--no-deps", "--no-index", str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    site = Path(subprocess.run([venv / "bin" / "python", "-c",
                                "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "checkout-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def run(venv: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MAILGATE_") and k != "PYTHONPATH"}
    return subprocess.run([str(venv / "bin" / "mailgate"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.slow
def test_the_wheel_holds_the_code_and_templates_and_no_top_level_templates(installed):
    site = next((installed / "lib").glob("python*/site-packages"))
    for package in source_packages():
        folder = site.joinpath(*package.split("."))
        for module in ROOT.joinpath(*package.split(".")).glob("*.py"):
            assert (folder / module.name).is_file(), f"{package}/{module.name} not shipped"
    shipped = {p.name for p in (site / "mailgate" / "templates").glob("*.j2")}
    assert shipped == {p.name for p in (ROOT / "templates").glob("*.j2")}
    replies = {p.name for p in (site / "mailgate" / "templates" / "replies").glob("*.j2")}
    assert replies == {p.name for p in (ROOT / "templates" / "replies").glob("*.j2")}
    assert not (site / "templates").exists(), "a generic top-level package in site-packages"


@pytest.mark.slow
def test_a_wheel_in_a_fresh_venv_serves_mail(installed, tmp_path, relay):
    outside = tmp_path / "site"           # not the checkout: its code must not be found
    outside.mkdir()
    where = subprocess.run([str(installed / "bin" / "python"), "-c",
                            "import mailgate, mailgate.mail.templating as t; "
                            "print(mailgate.__file__); print(t.shipped_templates())"],
                           cwd=outside, capture_output=True, text=True, check=True)
    module, templates = where.stdout.split()
    assert module.startswith(str(installed)) and templates.startswith(str(installed))

    version = run(installed, outside, "--version")
    assert version.returncode == 0 and version.stdout == \
        f"mailgate {PYPROJECT['project']['version']}\n"

    port = free_port()
    config = outside / "mailgate.toml"      # found as ./mailgate.toml
    config.write_text(toml_dumps({
        "database": {"url": f"sqlite:///{outside}/mailgate.db"},
        "smtp": {"port": port, "shutdown_timeout_seconds": 2.0},
        "outbound": {"port": relay.port, "retry_min_seconds": 0.2},
        "processing": {"poll_seconds": 0.2},
        "log": {"level": "warning"}}))
    listed = run(installed, outside, "template", "list")
    assert listed.returncode == 0 and "ack" in listed.stdout, listed.stdout + listed.stderr
    canned = run(installed, outside, "template", "list", "--replies")
    assert "/mailgate/templates/replies/thanks-received.txt.j2" in canned.stdout, \
        canned.stdout + canned.stderr
    assert f"{installed}/lib/" in listed.stdout and "/mailgate/templates/ack.txt.j2" in \
        listed.stdout
    checked = run(installed, outside, "check-config")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    added = run(installed, outside, "project", "add", "acme", "--name", "ACME",
                "--customer", CARLA)
    assert added.returncode == 0, added.stderr

    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MAILGATE_") and k != "PYTHONPATH"}
    proc = subprocess.Popen([str(installed / "bin" / "mailgate"), "serve"], cwd=outside,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert f"SMTP on 127.0.0.1:{port}" in proc.stdout.readline(), proc.stderr.read()
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.sendmail(CARLA, [SUPPORT], make_mail(sender=CARLA, subject="Drucker"))
        (ack,) = relay.wait_for(CARLA)        # rendered from the wheel's ack template
        assert "Drucker" in ack.subject and "[#1]" in ack.subject
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
        proc.stdout.close()
        stderr = proc.stderr.read()
        proc.stderr.close()
    assert code == 0 and "Traceback" not in stderr, stderr
