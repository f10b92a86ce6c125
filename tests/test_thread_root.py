"""One ticket per conversation, whichever of its mails comes first (both databases)."""

from __future__ import annotations

import pytest

from routing.threads import thread_root, with_own_id
from tests.support.harness import make_mail

CARLA = "carla@client.example"


@pytest.mark.parametrize(("message_id", "in_reply_to", "references", "root"), [
    ("<a@x>", (), (), "<a@x>"),                                  # a new conversation
    ("<b@x>", ("<a@x>",), (), "<a@x>"),                          # a reply without References
    ("<c@x>", ("<b@x>",), ("<a@x>", "<b@x>"), "<a@x>"),          # the oldest reference
    ("", (), (), ""),                                            # nothing to name it by
    ("", ("<a@x>",), (), "<a@x>"),
])
def test_a_thread_is_named_by_the_oldest_message_id_it_cites(message_id, in_reply_to,
                                                             references, root):
    assert thread_root(message_id, in_reply_to, references) == root


def test_routing_looks_up_a_mails_own_message_id_last():
    assert with_own_id(("<b@x>", "<a@x>"), "<c@x>") == ("<b@x>", "<a@x>", "<c@x>")
    assert with_own_id(("<c@x>",), "<c@x>") == ("<c@x>",)
    assert with_own_id((), "") == ()


def test_a_reply_taken_in_before_the_mail_it_answers_shares_its_ticket(harness_factory,
                                                                       db_url):
    h = harness_factory(db_url).start()
    assert h.cli("project", "add", "acme", "--name", "ACME", "--customer", CARLA).code == 0
    first = make_mail(sender=CARLA, subject="Drucker", body="Er druckt nicht.",
                      msgid="<first@client.example>")
    reply = make_mail(sender=CARLA, subject="Re: Drucker", body="Foto anbei.",
                      msgid="<second@client.example>",
                      headers={"In-Reply-To": "<first@client.example>",
                               "References": "<first@client.example>"})
    h.send(reply)
    h.settle()
    h.send(first)
    h.settle()
    (ticket,) = h.tickets()
    assert {(r.state, r.ticket_id) for r in h.inbound()} == {("done", ticket.id)}
