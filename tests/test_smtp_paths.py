"""The MAIL FROM / RCPT TO path parser: mailgate's fast way for plain addresses gives
exactly what aiosmtpd's own parser gives, for plain and unusual paths alike."""

from __future__ import annotations

import pytest
from aiosmtpd.smtp import SMTP

from mailgate.edges.smtp import MailgateSMTP

PATHS = ["<a@b.c>", "<a@b.c> SIZE=100", "<a@b.c>  BODY=8BITMIME SMTPUTF8", "<a@b.c>\tSIZE=1",
         "<alice.smith+tag@x-y.example.org>", "<o'neil@b.c>", "<A@B.C>", "<a@b>", "<a@b.c> ",
         "<a@b.c>x", "<a@b.c>SIZE=1", "<a@b.c> (comment) SIZE=1", "<a@b.c>(c)", "<a@b.c>>",
         "<a.@b.c>", "<a..b@c>", "<a@b..c>", "<a@-b.c>", "<a@b.c.>", "<a@[1.2.3.4]>",
         "< a@b.c>", '<"x y"@b.c>', "<@relay.example:a@b.c>", "<a b@c>", "<a@b_c.d>",
         "<ä@b.c>", "", "<>", "<> SIZE=1", "a@b.c", "a@b.c SIZE=1", "<abcdefghij@b.c>",
         "<abcdefghijk@b.c>"]


class _Parser(MailgateSMTP):
    def __init__(self, local_part_limit: int) -> None:   # no server: only the parser
        self.local_part_limit = local_part_limit


@pytest.mark.parametrize("limit", [0, 10])
@pytest.mark.parametrize("path", PATHS)
def test_paths_parse_as_aiosmtpd_parses_them(path, limit):
    parser = _Parser(limit)
    assert parser._getaddr(path) == SMTP._getaddr(parser, path)
