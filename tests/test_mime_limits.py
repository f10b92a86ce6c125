"""MIME limits that cannot be walked around: parts, depth, header fields and header size
are counted as the standard library's parser will build the tree (every boundary form,
every line-end style, every structure that makes parts), refused in the pre-check and,
should that ever miss, during the parse itself. Over SMTP a bomb, or a mail over the
parse time, is quarantined on its first attempt and ordinary mail keeps flowing."""

from __future__ import annotations

import base64
import dataclasses
import email
import email.policy
import hashlib
import json
import os
import random
import smtplib
import time
from email.message import Message

import pytest
from sqlmodel import select

from mailgate.config import ProcessingConfig
from mailgate.mail.mimecheck import Limits, ParseRejected, check_mime_shape
from mailgate.mail.parsing import parse_limited, parse_mail
from store.models import Inbound
from tests.support.harness import SUPPORT, make_mail

CARLA = "carla@client.example"
B = "mgbomb-0123456789.abcdefghij"


def boundary_param(form: str, b: str = B) -> str:
    """The Content-Type parameter that names boundary `b`, in one of five forms."""
    return {
        "quoted": f'boundary="{b}"',
        "token": f"boundary={b}",
        "2231-continued": f'boundary*0="{b[:7]}"; boundary*1="{b[7:17]}"; boundary*2={b[17:]}',
        "2231-charset": f"boundary*=utf-8'en'{b}",
        "2231-charset-continued": f"boundary*0*=utf-8''{b[:9]}; boundary*1*={b[9:]}",
    }[form]


FORMS = ["quoted", "token", "2231-continued", "2231-charset", "2231-charset-continued"]
EOLS = {"cr": "\r", "lf": "\n", "crlf": "\r\n", "mixed": None}
UNLIMITED = Limits(10**9, 10**9, 10**9, 10**9)
_DEFAULTS = ProcessingConfig()
DEFAULT = Limits(max_parts=_DEFAULTS.max_mime_parts, max_depth=_DEFAULTS.max_mime_depth,
                 max_header_count=_DEFAULTS.max_header_count,
                 max_header_bytes=_DEFAULTS.max_header_bytes)


def _lines(lines: list[str], eol: str) -> str:
    return "".join(line + eol for line in lines)


def wide(n: int, form: str = "quoted", eol: str | None = "\n", pad: int = 1) -> bytes:
    """A multipart/mixed with n text parts; eol None mixes CR, LF and CRLF between parts
    and within one (never a CR-ended line before an empty LF one: that reads as CRLF)."""
    head = ["From: a@client.example", "To: support@example.com", "Subject: wide",
            "MIME-Version: 1.0", f"Content-Type: multipart/mixed; {boundary_param(form)}", ""]
    part = [f"--{B}", "Content-Type: text/plain", "", "p" * pad]
    if eol is None:
        unit = (_lines(part, "\r") + _lines(part, "\n") + _lines(part, "\r\n")
                + f"--{B}\nContent-Type: text/plain\r\n\r{'p' * pad}\n")
        return (_lines(head, "\r\n") + unit * (n // 4) + _lines(part, "\n") * (n % 4)
                + f"--{B}--\r\n").encode()
    return (_lines(head, eol) + _lines(part, eol) * n + f"--{B}--{eol}").encode()


def folded(n: int, eol: str = "\r") -> bytes:
    """The boundary parameter on folded lines, in RFC 2231 pieces."""
    head = ["From: a@client.example", "Subject: folded", "Content-Type: multipart/mixed;",
            f' boundary*0="{B[:10]}";', f"\tboundary*1={B[10:]}", ""]
    return (_lines(head, eol) + _lines([f"--{B}", "", "p"], eol) * n).encode()


def headerless(n: int) -> bytes:
    """No blank line anywhere: each header block ends at the next delimiter."""
    return ("From: a@client.example\nContent-Type: multipart/mixed; boundary=y\n"
            + "--y\nX-N: 1\n" * n + "--y--\n").encode()


def report_blocks(n: int) -> bytes:
    """A delivery-status report: every blank-line separated block is a part."""
    return ("From: mailer-daemon@client.example\nContent-Type: message/delivery-status\n\n"
            + "Status: 5.1.1\n\n" * n).encode()


def digest(n: int) -> bytes:
    """A multipart/digest: a part without headers is a mail, two parts each."""
    return ("From: a@client.example\nContent-Type: multipart/digest; boundary=d\n\n"
            + "--d\n\nSubject: inner\n\nhi\n" * n + "--d--\n").encode()


def wrapped(n: int) -> bytes:
    """message/global (any message/* type) holds a mail, and that one a multipart."""
    return ("From: a@client.example\nContent-Type: message/global\n\n"
            "Content-Type: multipart/mixed; boundary=z\n\n" + "--z\n\np\n" * n
            + "--z--\n").encode()


def nested(depth: int, form: str = "quoted", eol: str = "\r\n") -> bytes:
    body = "innermost" + eol
    for level in range(depth):
        b = f"{B}{level}"
        body = (f"Content-Type: multipart/mixed; {boundary_param(form, b)}{eol}{eol}"
                f"--{b}{eol}" + body + f"{eol}--{b}--{eol}")
    return f"From: a@client.example{eol}Subject: deep{eol}{body}".encode()


def mails_in_mails(depth: int) -> bytes:
    return ("From: a@client.example\n" + "Content-Type: message/rfc822\n\n" * depth
            + "Subject: innermost\n\nhi\n").encode()


def header_bomb(lines: int, *, inside: bool = False, eol: str = "\r\n") -> bytes:
    fields = [f"X-Bomb-{n}: {'v' * 40}" for n in range(lines)]
    if not inside:
        return _lines(["From: a@client.example", *fields, "", "body"], eol).encode()
    return _lines(["From: a@client.example", "Content-Type: multipart/mixed; boundary=h", "",
                   "--h", *fields, "", "body", "--h--"], eol).encode()


def long_header(size: int, *, folds: int = 0) -> bytes:
    value = "\r\n ".join(["w" * (size // folds)] * folds) if folds else "w" * size
    return f"From: a@client.example\r\nX-Long: {value}\r\n\r\nbody\r\n".encode()


# (name, bytes, expected shape fields, the limit the default verdict names)
def bombs():
    # 20,000 parts is twenty times the default limit: every boundary form and line-end
    # style is covered at that size, and the 200,000-part RFC 2231 CR-only bomb once
    yield ("200k-parts-2231-continued-cr", lambda: wide(200_000, "2231-continued", "\r"),
           {"parts": 200_001, "depth": 1}, "max_mime_parts")
    for form in FORMS:
        for style, eol in EOLS.items():
            yield (f"20k-parts-{form}-{style}", lambda f=form, e=eol: wide(20_000, f, e),
                   {"parts": 20_001, "depth": 1}, "max_mime_parts")
    yield ("20k-parts-folded-2231-cr", lambda: folded(20_000), {"parts": 20_001},
           "max_mime_parts")
    yield ("20k-parts-no-blank-lines", lambda: headerless(20_000), {"parts": 20_001},
           "max_mime_parts")
    yield ("20k-delivery-status-blocks", lambda: report_blocks(20_000),
           {"parts": 20_001, "depth": 1}, "max_mime_parts")
    yield ("digest-of-10k-mails", lambda: digest(10_000), {"parts": 20_001, "depth": 2},
           "max_mime_parts")
    yield ("20k-parts-in-message-global", lambda: wrapped(20_000),
           {"parts": 20_002, "depth": 2}, "max_mime_parts")
    for form in ("quoted", "2231-continued", "2231-charset"):
        yield (f"2000-levels-{form}", lambda f=form: nested(2000, f, "\r"),
               {"parts": 2001, "depth": 2000}, "max_mime_depth")
    yield ("2000-mails-in-mails", lambda: mails_in_mails(2000),
           {"parts": 2001, "depth": 2000}, "max_mime_depth")
    yield ("100k-header-lines", lambda: header_bomb(100_000),
           {"parts": 1, "header_fields": 100_001}, "max_header_count")
    yield ("100k-header-lines-cr-in-a-part", lambda: header_bomb(100_000, inside=True,
                                                                  eol="\r"),
           {"parts": 2, "header_fields": 100_000}, "max_header_count")
    yield ("2mb-header-line", lambda: long_header(2_000_000),
           {"parts": 1, "header_fields": 2}, "max_header_bytes")
    yield ("2mb-header-folded-40k-times", lambda: long_header(2_000_000, folds=40_000),
           {"parts": 1, "header_fields": 2}, "max_header_bytes")


BOMBS = list(bombs())


@pytest.mark.slow
@pytest.mark.parametrize(("build", "shape", "limit"), [b[1:] for b in BOMBS],
                         ids=[b[0] for b in BOMBS])
def test_the_pre_check_counts_every_bomb_and_refuses_it(build, shape, limit):
    raw = build()
    counted = check_mime_shape(raw, UNLIMITED)
    assert {k: getattr(counted, k) for k in shape} == shape
    with pytest.raises(ParseRejected, match=rf"\[processing\] {limit}\)$"):
        check_mime_shape(raw, DEFAULT)
    if limit == "max_header_bytes":
        assert counted.header_bytes >= 2_000_000


def _parser_tree(raw: bytes) -> tuple[int, int, int, int]:
    """Parts, depth, and the largest header block, as the standard library builds them."""
    from mailgate.mail.mimecheck import header_block_sizes
    from mailgate.mail.parsing import LimitedParser

    blocks: list[tuple[int, int]] = []

    class Watching(LimitedParser):
        def _parse_headers(self, lines):
            blocks.append(header_block_sizes(lines))
            super()._parse_headers(lines)

    parser = Watching(UNLIMITED)
    parser.feed(raw.decode("ascii", "surrogateescape"))
    root = parser.close()
    parts, depth, todo = 0, 0, [(root, 0)]
    while todo:
        msg, level = todo.pop()
        parts, depth = parts + 1, max(depth, level)
        payload = msg.get_payload()
        if isinstance(payload, list):
            todo.extend((p, level + 1) for p in payload if isinstance(p, Message))
    return parts, depth, max(f for f, _ in blocks), max(b for _, b in blocks)


SMALL = {   # the same structures, small enough for the standard library to build
    **{f"{form}-{style}": (lambda f=form, e=eol: wide(301, f, e))
       for form in FORMS for style, eol in EOLS.items()},
    "folded-2231-cr": lambda: folded(300),
    "folded-2231-lf": lambda: folded(300, "\n"),
    "no-blank-lines": lambda: headerless(300),
    "delivery-status": lambda: report_blocks(300),
    "digest": lambda: digest(150),
    "message-global": lambda: wrapped(300),
    "nested-2231-cr": lambda: nested(40, "2231-continued", "\r"),
    "nested-charset-lf": lambda: nested(40, "2231-charset", "\n"),
    "mails-in-mails": lambda: mails_in_mails(40),
    "header-block-in-a-part": lambda: header_bomb(300, inside=True, eol="\r"),
    "folded-header": lambda: long_header(3000, folds=60),
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_the_pre_check_reads_the_tree_as_the_parser_builds_it(name):
    raw = SMALL[name]()
    shape = check_mime_shape(raw, UNLIMITED)
    assert (shape.parts, shape.depth, shape.header_fields, shape.header_bytes) \
        == _parser_tree(raw)


def random_mail(rnd: random.Random) -> bytes:
    """Header lines, folded lines, mbox lines, delimiters of open and unknown boundaries,
    blank lines and bodies in random order and line ends: trees no one writes by hand."""
    pieces = ["Content-Type: multipart/mixed; boundary=a", "Content-Type: multipart/digest;"
              " boundary*0=b; boundary*1=c", "Content-Type: message/delivery-status",
              "Content-Type: message/rfc822", "Content-Type: message/global", "X-A: 1",
              " folded", "From x", ":odd", "Name : v", "--a", "--a--", "--bc", "--bc--",
              "--zz", "", "", "body"]
    return "".join(rnd.choice(pieces) + rnd.choice(("\r", "\n", "\r\n"))
                   for _ in range(rnd.randint(1, 40))).encode()


def test_the_pre_check_agrees_with_the_parser_on_random_trees():
    rnd = random.Random(2047)
    for _ in range(3000):
        raw = b"From: a@client.example\r\n" + random_mail(rnd)
        shape = check_mime_shape(raw, UNLIMITED)
        assert (shape.parts, shape.depth, shape.header_fields, shape.header_bytes) \
            == _parser_tree(raw), raw


@pytest.mark.parametrize("name", sorted(SMALL))
def test_the_parse_itself_stops_at_each_limit(name):
    """Should the pre-check ever read a tree differently, the parser refuses the same
    mail at the same limit while it builds it."""
    raw = SMALL[name]()
    shape = check_mime_shape(raw, UNLIMITED)
    exact = Limits(shape.parts, shape.depth, shape.header_fields, shape.header_bytes)
    parse_limited(raw, exact)                           # at the limit: fine
    for limit, value in (("max_parts", shape.parts), ("max_depth", shape.depth),
                         ("max_header_count", shape.header_fields),
                         ("max_header_bytes", shape.header_bytes)):
        if value == 0:
            continue
        below = dataclasses.replace(exact, **{limit: value - 1})
        with pytest.raises(ParseRejected) as precheck:
            check_mime_shape(raw, below)
        with pytest.raises(ParseRejected) as during:
            parse_limited(raw, below)
        assert str(during.value) == str(precheck.value)


def test_a_mail_within_the_limits_parses_as_before():
    raw = wide(50, "2231-continued", None, pad=20)
    mail = parse_mail(raw, DEFAULT)
    reference = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert len(reference.get_payload()) == 50
    assert mail.text.count("p" * 20) == 50


def test_a_large_text_body_stays_the_text():
    """Over 256 KB, a text/plain body that is no attachment is not cut out of the mail
    (mail.large took `Content-Type: text/plain` for an attachment and the text was lost)."""
    mail = parse_mail(make_mail(sender=CARLA, body="Zeile\n" * 100_000), DEFAULT)
    assert mail.text.count("Zeile") == 100_000 and mail.attachments == ()


@pytest.mark.parametrize("form", ["quoted", "2231-continued"])
@pytest.mark.parametrize("eol", ["\r\n", "\n", "\r"], ids=["crlf", "lf", "cr"])
def test_a_large_attachment_is_cut_out_and_decoded_as_the_parser_would(form, eol):
    """mail.large decodes big attachments from the leaves the pre-check found: the bytes
    must be those the parser itself would decode, whatever the line ends."""
    data = os.urandom(400_000)
    lines = ["From: a@client.example", "Subject: big",
             f"Content-Type: multipart/mixed; {boundary_param(form)}", "", f"--{B}",
             "Content-Type: text/plain", "", "hello", f"--{B}",
             "Content-Type: application/octet-stream",
             "Content-Disposition: attachment; filename=data.bin",
             "Content-Transfer-Encoding: base64", "",
             *base64.encodebytes(data).decode().splitlines(), f"--{B}--"]
    raw = _lines(lines, eol).encode()
    (attachment,) = parse_mail(raw, DEFAULT).attachments
    parsed = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert parsed.get_payload()[1].get_payload(decode=True) == data
    assert attachment.sha256 == hashlib.sha256(data).hexdigest()


# --- over SMTP ----------------------------------------------------------------------------


def send_exact(port: int, raw: bytes, mail_from: str = "bomber@client.example") -> str:
    """Send `raw` byte for byte (smtplib's sendmail would turn bare CR and LF into CRLF);
    returns the 250 reply's text."""
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        smtp.ehlo()
        smtp.mail(mail_from)
        smtp.rcpt(SUPPORT)
        smtp.putcmd("data")
        assert smtp.getreply()[0] == 354
        stuffed = raw.replace(b"\r\n.", b"\r\n..")
        smtp.send(stuffed + (b"" if raw.endswith(b"\r\n") else b"\r\n") + b".\r\n")
        code, reply = smtp.getreply()
        assert code == 250, reply
        return reply.decode()


def _row_id(reply: str) -> int:
    return int(reply.rsplit(" ", 1)[1])


def _state(h, row_id: int) -> tuple[str, str, int | None]:
    """One row's state, without loading anyone's 25 MB of raw bytes."""
    with h.app.db.unit(write=False) as s:
        return s.exec(select(Inbound.state, Inbound.reason, Inbound.ticket_id)
                      .where(Inbound.id == row_id)).one()


def cr_parts_bomb() -> bytes:
    """~24 MB: 200,000 parts, an RFC 2231 continued boundary, CR-only line ends."""
    return wide(200_000, "2231-continued", "\r", pad=70)


def deep_header_bomb() -> bytes:
    """~24 MB: 25 levels deep (under the depth limit), then a part whose header block
    has 100,000 lines."""
    fields = "".join(f"X-Bomb-{n:06d}: {'h' * 220}\r\n" for n in range(100_000))
    head, tail = "From: a@client.example\r\nSubject: deep header bomb\r\n", ""
    for level in range(25):
        head += (f"Content-Type: multipart/mixed; boundary=L{level}\r\n\r\n"
                 f"--L{level}\r\n")
        tail = f"\r\n--L{level}--\r\n" + tail
    return (head + fields + "\r\nbody" + tail).encode()


@pytest.fixture
def bombable(harness_factory, db_url):
    # A CR-only mail is one SMTP line: let it through to the parser, as IMAP and the pipe
    # would (the default 1 MiB line limit would refuse it at DATA).
    h = harness_factory(db_url, smtp={"max_line_bytes": 32 * 1024 * 1024}).start()
    assert h.cli("project", "add", "acme", "--name", "ACME", "--customer", CARLA).code == 0
    return h


@pytest.mark.slow
def test_two_bombs_are_quarantined_at_once_and_a_mail_behind_them_is_final_in_2s(bombable):
    h = bombable
    bombs = [cr_parts_bomb(), deep_header_bomb()]
    assert all(20_000_000 < len(b) < 25 * 1024 * 1024 for b in bombs)
    ids = [_row_id(send_exact(h.port, b)) for b in bombs]
    reply = send_exact(h.port, make_mail(sender=CARLA, subject="hinter den Bomben"), CARLA)
    accepted = time.monotonic()
    ordinary = _row_id(reply)
    while time.monotonic() - accepted < 10:
        state, reason, ticket = _state(h, ordinary)
        if state not in ("pending", "processing"):
            break
        time.sleep(0.01)
    took = time.monotonic() - accepted
    print(f"ordinary mail final {took:.3f} s after its 250")
    assert state == "done" and ticket is not None, (state, reason)
    assert took < 2.0, took
    h.settle(timeout=30)
    listed = json.loads(h.cli("quarantine", "list", "--json").out)
    quarantined = {q["id"]: q for q in listed}
    assert set(quarantined) == set(ids)
    assert all(q["attempts"] == 1 for q in listed), listed
    assert "max_mime_parts" in quarantined[ids[0]]["reason"]
    assert "max_header_count" in quarantined[ids[1]]["reason"]
    assert [t.subject for t in h.tickets()] == ["hinter den Bomben"]


def slow_to_parse() -> bytes:
    """Within every limit, but 3,000,000 lines for the parser to split and join (some
    seconds; an ordinary mail takes milliseconds)."""
    return make_mail(sender=CARLA, subject="langsam", body="x\n" * 3_000_000)


@pytest.mark.slow
def test_a_mail_over_the_parse_time_is_quarantined_on_its_first_attempt(harness_factory,
                                                                         sqlite_url):
    h = harness_factory(sqlite_url, processing={"parse_timeout_seconds": 0.3}).start()
    assert h.cli("project", "add", "acme", "--name", "ACME", "--customer", CARLA).code == 0
    slow = _row_id(send_exact(h.port, slow_to_parse(), CARLA))
    h.settle(timeout=30)
    (row,) = json.loads(h.cli("quarantine", "list", "--json").out)
    assert row["id"] == slow and row["attempts"] == 1
    assert "parse_timeout_seconds" in row["reason"], row["reason"]
    h.send(make_mail(sender=CARLA, subject="danach"), mail_from=CARLA)  # a fresh worker
    h.settle(timeout=30)
    assert [t.subject for t in h.tickets()] == ["danach"]
