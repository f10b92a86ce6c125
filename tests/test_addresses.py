"""Recipient classification and the strict From parser, as tables."""

from __future__ import annotations

import pytest

from routing.addresses import (
    Recipient,
    RecipientKind,
    RecipientRules,
    Rejection,
    classify_recipient,
    parse_sender,
)

RULES = RecipientRules("support", frozenset({"example.com", "example.org"}))


@pytest.mark.parametrize(("address", "expected"), [
    ("support@example.com", RecipientKind.SUPPORT),
    ("Support@EXAMPLE.com", RecipientKind.SUPPORT),
    ("support@example.org", RecipientKind.SUPPORT),
    ("support+acme@example.com", RecipientKind.PROJECT),
    ("support+ACME@example.com", RecipientKind.PROJECT),
    ("support+r42.4bq.abcdefghijklmnop@example.com", RecipientKind.TOKEN),
    ("support+r42.4bq@example.com", RecipientKind.TOKEN),        # truncated: still a token
    ("support+b.k3j5x7tqh2mzv6aa@example.com", RecipientKind.BOUNCE),
], ids=["plain", "case-insensitive", "second-domain", "project-key", "key-case",
        "token", "truncated-token-is-token", "verp"])
def test_accepted_recipients_are_classified(address, expected):
    verdict = classify_recipient(address, RULES)
    assert isinstance(verdict, Recipient)
    assert verdict.kind is expected


@pytest.mark.parametrize(("address", "code"), [
    ("support@other.example", "550 5.1.1"),
    ("sales@example.com", "550 5.1.1"),
    ("supportx@example.com", "550 5.1.1"),
    ("support@sub.example.com", "550 5.1.1"),
    ("not-an-address", "553 5.1.3"),
    ("support@", "553 5.1.3"),
    ("support..x@example.com", "553 5.1.3"),
], ids=["foreign-domain", "other-mailbox", "prefix-lookalike", "subdomain", "garbage",
        "no-domain", "double-dot"])
def test_recipients_we_do_not_serve_are_refused(address, code):
    verdict = classify_recipient(address, RULES)
    assert isinstance(verdict, Rejection)
    assert verdict.code.startswith(code)


def test_a_project_key_never_looks_like_a_token():
    """Project keys have no dot, tokens always do: the two kinds cannot be confused."""
    key = classify_recipient("support+r42@example.com", RULES)
    token = classify_recipient("support+r42.1.aaaaaaaaaaaaaaaa@example.com", RULES)
    assert key.kind is RecipientKind.PROJECT and key.detail == "r42"
    assert token.kind is RecipientKind.TOKEN


@pytest.mark.parametrize(("values", "address", "name"), [
    (["carla@client.example"], "carla@client.example", ""),
    (["Carla Kunde <Carla@Client.Example>"], "carla@client.example", "Carla Kunde"),
    (['"Kunde, Carla" <carla@client.example>'], "carla@client.example", "Kunde, Carla"),
    (['"carla@client.example" <carla@client.example>'], "carla@client.example",
     "carla@client.example"),
    (["=?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <juergen@kunde-gmbh.de>"],
     "juergen@kunde-gmbh.de", "Jürgen Müller"),
    (["carla@client.example (Carla K)"], "carla@client.example", ""),
    (["Carla\r\n <carla@client.example>"], "carla@client.example", "Carla"),
], ids=["bare", "named", "quoted-comma", "outlook-address-as-name", "encoded-name",
        "comment", "folded"])
def test_ordinary_senders_are_read(values, address, name):
    sender = parse_sender(values)
    assert sender.address == address, sender.problem
    assert sender.name == name


@pytest.mark.parametrize(("values", "problem"), [
    (["victim@client.example <attacker@evil.example>"], "another address"),
    (["a@client.example)<b@evil.example>"], "parenthesis"),
    (["a@client.example", "b@evil.example"], "2 From headers"),
    (["=?utf-8?q?victim=40client=2Eexample?= <attacker@evil.example>"], "another address"),
    (['"victim@client.example" <attacker@evil.example>'], "another address"),
    (["a@client.example, b@evil.example"], "several addresses"),
    (["<a@client.example> <b@evil.example>"], "several addresses"),
    (["<a@client.example> b@evil.example"], "text after"),
    (["=?utf-8?q?x_=3Cb=40evil=2Eexample=3E?= <a@client.example>"], "angle brackets"),
    (['"unterminated <a@client.example>'], "quote"),
    (["a@client.example (b@evil.example)"], "another address"),
    ([], "no From"),
    (["  "], "empty"),
    (["Nobody <nobody>"], "invalid sender"),
], ids=["name-is-other-address", "paren-trick", "two-from-headers", "encoded-name-address",
        "quoted-name-other-address", "two-mailboxes", "two-angles", "trailing-address",
        "encoded-angle", "unbalanced-quote", "comment-address", "missing", "blank",
        "no-domain"])
def test_ambiguous_senders_are_never_trusted(values, problem):
    sender = parse_sender(values)
    assert sender.address is None
    assert problem in sender.problem
