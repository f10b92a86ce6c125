"""Reply splitting and HTML-to-text: tables over real reply bodies and hand-written cases."""

from __future__ import annotations

import pytest

from mailgate.mail.htmltext import html_to_text
from mailgate.mail.parsing import parse_mail
from routing.replytext import split_reply, top_lines
from tests.conftest import corpus_dir

# (file under reply-bodies/, text the body must keep, text the body must lose, signature has)
BODIES = [
    ("zapier/email_1_2.txt", "You can list the keys", "What is the best way", ""),
    ("zapier/email_1_2.txt", "Hi,", "Abhishek Kona wrote", ""),
    ("zapier/email_2_1.txt", "Outlook with a reply", "Google Apps Sync user", ""),
    ("zapier/email_2_2.txt", "directly above line", "CRM Comments", ""),
    ("zapier/email_headers_no_delimiter.txt", "And another reply!", "A reply", ""),
    ("zapier/email_gmail.txt", "This is a test for inbox", "personally too lazy", ""),
    ("zapier/pathological.txt", "I think you're onto something", "debugging output", ""),
    ("zapier/greedy_on.txt", "telnet 127.0.0.1 52698", "port forwarding stopped", ""),
    ("zapier/correct_sig.txt", "correct -- signature", "rick", "rick"),
    ("zapier/email_sig_delimiter_in_middle_of_line.txt", "this is not a signature", "", ""),
    ("zapier/email_sig_delimiter_in_middle_of_line.txt", "kthxbai", "", ""),
    ("zapier/email_iPhone.txt", "Here is another email", "Sent from my iPhone",
     "Sent from my iPhone"),
    ("zapier/email_BlackBerry.txt", "Here is another email", "BlackBerry", "BlackBerry"),
    ("zapier/email_sent_from_my_not_signature.txt", "Sent from my desk", "", ""),
    ("zapier/email_bullets.txt", "- how about bullets", "Joe Smith", "Joe Smith"),
    ("github/email_1_8.txt", "and under this.", "this is my signature",
     "this is my signature"),
    ("github/email_2_3.txt", "directly above line", "CRM Comments", ""),
]


@pytest.mark.parametrize(("name", "keeps", "loses", "signature"), BODIES)
def test_reply_bodies(name, keeps, loses, signature):
    path = corpus_dir() / "reply-bodies" / name
    parts = split_reply(path.read_bytes().decode("utf-8", "replace"))
    assert keeps in parts.body
    if loses:
        assert loses not in parts.body
    if signature:
        assert signature in parts.signature


# Reply headers of the mail clients our users run, in English, German and Danish.
HEADERS = [
    "On Mon, 3 Nov 2025 at 10:02, Carla Client <carla@client.example> wrote:",
    "On 3 Nov 2025, at 10:02, Carla Client wrote:",
    "Am Mo., 3. Nov. 2025 um 10:02 Uhr schrieb Carla Client <carla@client.example>:",
    "Am 03.11.2025 um 10:02 schrieb Carla Client:",
    "Den man. 3. nov. 2025 kl. 10.02 skrev Carla Client <carla@client.example>:",
    "Den 3. nov. 2025 kl. 10:02 skrev Carla Client:",
    "carla@client.example skrev:",
    "-----Original Message-----",
    "-----Ursprüngliche Nachricht-----",
    "-----Oprindelig meddelelse-----",
    "________________________________",
    "From: Carla Client <carla@client.example>\nSent: Monday, November 3, 2025 10:02\n"
    "To: support@example.com",
    "Von: Carla Client <carla@client.example>\nGesendet: Montag, 3. November 2025 10:02\n"
    "An: support@example.com\nBetreff: AW: Drucker",
    "Fra: Carla Client <carla@client.example>\nSendt: 3. november 2025 10:02\n"
    "Til: support@example.com\nEmne: SV: Printer",
]


@pytest.mark.parametrize("header", HEADERS)
def test_reply_headers_end_the_new_text(header):
    text = f"/status waiting\nThanks, looking into it.\n\n{header}\n\n/close\nOld text here.\n"
    parts = split_reply(text)
    assert parts.body == "/status waiting\nThanks, looking into it."
    assert "Old text here." in parts.quoted or "Old text here." not in parts.body
    assert top_lines(text) == ["/status waiting", "Thanks, looking into it.", ""]


def test_a_wrapped_attribution_is_recognised():
    text = ("Fine.\n\nOn Mon, 3 Nov 2025 at 10:02, Carla Client <carla@client.example>\n"
            "wrote:\n\n> old\n")
    assert split_reply(text).body == "Fine."


def test_a_line_ending_in_wrote_inside_prose_is_kept_when_no_quote_follows_it():
    text = "Hi,\nmy colleague said she wrote:\nnothing."
    assert "nothing." in split_reply(text).body or split_reply(text).quoted


def test_inline_answers_between_quotes_are_kept():
    text = ("> first question?\nfirst answer\n\n> second question?\nsecond answer\n")
    body = split_reply(text).body
    assert "first answer" in body and "second answer" in body and "question" not in body


def test_top_lines_stop_at_quotes_and_signatures_and_are_bounded():
    assert top_lines("/close\n> /reopen\n") == ["/close"]
    assert top_lines("/close\n-- \n/reopen") == ["/close"]
    many = "\n".join(f"line {n}" for n in range(100))
    assert len(top_lines(many)) == 20 and len(top_lines(many, limit=5)) == 5


def test_huge_input_is_bounded():
    text = "x\n" * 200_000
    parts = split_reply(text)
    assert len(parts.body) < 20_000


# HTML-only mail becomes text with quotes marked, so replies split the same way.
HTML = [
    ("<p>Hello</p><p>World</p>", "Hello\n\nWorld"),
    ("line<br>next", "line\nnext"),
    ("<ul><li>one</li><li>two</li></ul>", "- one\n- two"),
    ("<style>p{color:red}</style><script>alert(1)</script><p>kept</p>", "kept"),
    ("<p>new</p><blockquote><p>old</p></blockquote>", "new\n\n> old"),
    ('<div>new</div><div class="gmail_quote">On x wrote:<blockquote>old</blockquote></div>',
     "new\n> On x wrote:\n> > old"),
    ('<a href="https://example.com/x">the link</a>', "the link <https://example.com/x>"),
    ("caf&eacute; &amp; &lt;tag&gt;", "café & <tag>"),
    ("<pre>a\n  b</pre>", "a\n  b"),
    ("<p>unclosed <b>bold", "unclosed bold"),
]


@pytest.mark.parametrize(("markup", "expected"), HTML)
def test_html_to_text(markup, expected):
    assert html_to_text(markup) == expected


def test_html_output_is_capped():
    assert len(html_to_text("<p>" + "a" * 50_000 + "</p>", max_chars=1000)) <= 1000


# Whole mails from the corpus: HTML-only and mixed replies give the reply text only.
MAILS = [
    ("html_reply.eml", "This is a HTML reply", "wrote"),
    ("gmail_html_reply.eml", "This is a GMAIL reply", "Lorem"),
    ("exchange_html_reply.eml", "This is the body", "From:"),
    ("html_only.eml", "The EC2 instance", "Grizzly B"),
    ("outlook.eml", "Microsoft Outlook 2010", "talk@openmrs.org"),
    ("multiline_wrote.eml", "Thanks!", "You look great today"),
    ("original_message.eml", "This is a reply :)", "should not be included"),
    ("on_date_contact_wrote.eml", "This is the actual reply.", "wrote"),
    ("windows_8_metro.eml", "reply from default mail client", "Arpit Jalan"),
]


@pytest.mark.parametrize(("name", "keeps", "loses"), MAILS)
def test_corpus_replies(name, keeps, loses):
    mail = parse_mail((corpus_dir() / "discourse" / name).read_bytes())
    body = split_reply(mail.text).body
    assert keeps in body
    assert loses not in body
