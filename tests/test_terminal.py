"""Mail text cannot drive the admin's terminal: what the CLI writes for people has every
control, ESC sequence and bidi override from a mail shown escaped; JSON escapes them the
JSON way. Real SMTP in, the CLI as a subprocess, both databases."""

from __future__ import annotations

import json
import subprocess
import sys
from email.header import Header

import pytest

from mailgate.cli.output import emit_json, safe
from tests.support.harness import make_mail

SAFE_CASES = [
    ("plain ASCII", "Drucker kaputt", "Drucker kaputt"),
    ("letters beyond ASCII", "Grüße 日本 😀 ½", "Grüße 日本 😀 ½"),
    ("ESC sequence", "\x1b[2Kgone", "\\x1b[2Kgone"),
    ("OSC 52 clipboard write", "\x1b]52;c;ZXZpbA==\x07", "\\x1b]52;c;ZXZpbA==\\x07"),
    ("DEL", "a\x7fb", "a\\x7fb"),
    ("C1 CSI", "\u009b31mred", "\\x9b31mred"),
    ("C1 NEL and OSC", "\u0085\u009d", "\\x85\\x9d"),
    ("bidi override", "abc\u202etxt.exe", "abc\\u202etxt.exe"),
    ("bidi isolates", "\u2066x\u2069", "\\u2066x\\u2069"),
    ("bidi marks", "\u200e\u200f\u061c", "\\u200e\\u200f\\u061c"),
    ("newline on one line", "a\nb", "a\\x0ab"),
    ("carriage return", "a\rb", "a\\x0db"),
    ("tab", "a\tb", "a b"),
    ("lone surrogate", "a\udcffb", "a\\udcffb"),
    ("nothing", None, ""),
]


@pytest.mark.parametrize(("text", "shown"), [(t, s) for _, t, s in SAFE_CASES],
                         ids=[name for name, _, _ in SAFE_CASES])
def test_safe_shows_what_a_terminal_would_act_on_escaped(text, shown):
    assert safe(text) == shown


MULTILINE_CASES = [
    ("newlines stay", "one\ntwo\n", "one\ntwo\n"),
    ("CRLF is a newline", "one\r\ntwo", "one\ntwo"),
    ("a lone CR is not", "one\rtwo", "one\\x0dtwo"),
    ("controls are still escaped", "\x1b[2K\n\u009b\n\u202e", "\\x1b[2K\n\\x9b\n\\u202e"),
]


@pytest.mark.parametrize(("text", "shown"), [(t, s) for _, t, s in MULTILINE_CASES],
                         ids=[name for name, _, _ in MULTILINE_CASES])
def test_safe_multiline_keeps_only_newlines(text, shown):
    assert safe(text, multiline=True) == shown


def test_json_output_escapes_them_and_reads_back_the_same(capsys):
    value = {"subject": "\x1b]0;t\x07 \u009b \x7f \u202e \u2066 ok é"}
    emit_json(value)
    out = capsys.readouterr().out
    assert not any(c in out for c in "\x1b\x07\u009b\x7f\u202e\u2066")
    assert "\\u009b" in out and "\\u202e" in out and "é" in out
    assert json.loads(out) == value


# What an attacker puts in a mail: a clipboard write (OSC 52) ended by BEL, an erased
# line, an 8-bit CSI and a right-to-left override.
HOSTILE = "\x1b]52;c;ZXZpbA==\x07\x1b[2K\u009b31m\u202e"
BAD_BYTES = [b"\x1b", b"\x07", "\u009b".encode(), "\u202e".encode()]


def hostile_mail() -> bytes:
    subject = Header(f"\u009b\u202eRechnung {HOSTILE} offen", "utf-8").encode()
    name = Header(f"Eve {HOSTILE}", "utf-8").encode()
    raw = make_mail(sender="eve@client.example", subject="placeholder",
                    body=f"Hallo,\n{HOSTILE}zweite Zeile\n")
    raw = raw.replace(b"Subject: placeholder", f"Subject: {subject}".encode())
    return raw.replace(b"From: eve@client.example",
                       f"From: {name} <eve@client.example>".encode())


def run_cli(h, *args: str) -> bytes:
    proc = subprocess.run([sys.executable, "-m", "mailgate", "--config", str(h.config_path),
                           *args], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def assert_harmless(out: bytes, *escaped: str) -> None:
    for bad in BAD_BYTES:
        assert bad not in out, (bad, out)
    for form in escaped:
        assert form.encode() in out, (form, out)


def test_mail_text_reaches_the_terminal_escaped(mg):
    mg.send(hostile_mail(), mail_from="eve@client.example")
    mg.settle()
    (row,) = json.loads(mg.cli("unassigned", "list", "--json").out)
    assert "\u009b" in row["subject"]          # the stored text is left as it came

    # the subject leads with the C1 control, so even a cut-off column shows it escaped
    assert_harmless(run_cli(mg, "unassigned", "list"), "\\x9b")
    assert_harmless(run_cli(mg, "unassigned", "show", str(row["id"])),
                    "\\x9b", "\\x1b]52;c;ZXZpbA==\\x07", "\\x1b[2K", "\\u202e")

    assigned = mg.cli("unassigned", "assign", str(row["id"]), "--project", "acme", "--json")
    assert assigned.code == 0, assigned.err
    number = json.loads(assigned.out)["ticket"]
    assert_harmless(run_cli(mg, "ticket", "list"), "\\x9b")
    shown = run_cli(mg, "ticket", "show", str(number))
    assert_harmless(shown, "\\x9b", "\\x1b]52;c;ZXZpbA==\\x07", "\\x1b[2K", "\\u202e")
    assert b"   zweite Zeile" not in shown and b"zweite Zeile" in shown   # same line as ESC

    # scripts get the text back exactly, and a terminal is safe from JSON too
    data = run_cli(mg, "ticket", "show", str(number), "--json")
    assert_harmless(data)
    assert HOSTILE in json.loads(data)["messages"][0]["text"]
    assert_harmless(run_cli(mg, "template", "preview", "ack", "--ticket", str(number)),
                    "\\x9b")
