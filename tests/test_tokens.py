"""Reply tokens: every way a token can be wrong has its own reason."""

from __future__ import annotations

import datetime as dt

import pytest

from routing.tokens import TicketFacts, TokenKey, make_token, parse_token, verify_token

KEY = TokenKey(b"current-secret")
OLD = TokenKey(b"old-secret", valid_until=dt.date(2026, 12, 31))
TODAY = dt.date(2026, 11, 23)
CARLA, ANNA, MALLORY = "carla@client.example", "anna@agency.example", "mallory@evil.example"
TICKET = TicketFacts(True, False, frozenset({CARLA, ANNA}))


def token(ticket=7, who=CARLA, purpose="reply", secret=KEY.secret, issued=TODAY):
    return make_token(secret=secret, purpose=purpose, ticket=ticket, recipient=who,
                      issued=issued)


def check(detail, *, sender=CARLA, ticket=TICKET, keys=(KEY,), today=TODAY, sender_tickets=()):
    return verify_token(detail, sender=sender, keys=keys, today=today, max_age_days=365,
                        ticket=ticket, sender_tickets=sender_tickets)


def _flip(s: str, i: int) -> str:
    return s[:i] + ("a" if s[i] != "a" else "b") + s[i + 1:]


def test_tokens_are_short_lowercase_and_fit_a_local_part():
    t = token(ticket=123456789012)
    assert t == t.lower()
    assert len("support+" + t) <= 64


def test_a_valid_token_names_its_ticket_and_purpose():
    v = check(token(purpose="note", who=ANNA), sender=ANNA)
    assert (v.ok, v.ticket, v.purpose) == (True, 7, "note")


def test_tokens_compare_case_insensitively():
    assert check(token().upper()).ok


CASES = [
    ("flipped", lambda: _flip(token(), len(token()) - 3), {}, "token-bad-signature"),
    ("truncated", lambda: token()[:-4], {}, "token-malformed"),
    ("other-ticket-id", lambda: token(ticket=8).replace("r8.", "r7.", 1),
     {"sender_tickets": (7, 8)}, "token-other-ticket"),
    ("expired", lambda: token(issued=TODAY - dt.timedelta(days=400)), {}, "token-expired"),
    ("deleted-ticket", lambda: token(), {"ticket": TicketFacts(True, True, TICKET.participants)},
     "token-ticket-deleted"),
    ("missing-ticket", lambda: token(), {"ticket": TicketFacts(False)}, "token-no-ticket"),
    ("forwarded", lambda: token(who=CARLA), {"sender": MALLORY}, "token-other-recipient"),
    ("forged-secret", lambda: token(secret=b"guess"), {}, "token-bad-signature"),
    ("retired-after-grace", lambda: token(secret=OLD.secret),
     {"keys": (KEY, OLD), "today": dt.date(2027, 1, 5)}, "token-retired"),
    ("future", lambda: token(issued=TODAY + dt.timedelta(days=30)), {}, "token-future"),
    ("no-sender", lambda: token(), {"sender": None}, "token-no-sender"),
    ("garbage", lambda: "r7.zz.!!!!", {}, "token-malformed"),
]


@pytest.mark.parametrize(("detail", "kw", "code"), [(c[1], c[2], c[3]) for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_tokens_fail_with_a_distinct_reason(detail, kw, code):
    v = check(detail(), **kw)
    assert not v.ok
    assert v.code == code, v.reason


def test_failure_codes_are_pairwise_distinct_for_the_issue_cases():
    """Flipped, truncated, swapped ticket, expired and deleted each tell a different story."""
    names = {"flipped", "truncated", "other-ticket-id", "expired", "deleted-ticket"}
    codes = {c[3] for c in CASES if c[0] in names}
    assert len(codes) == len(names)


def test_a_retired_secret_still_works_inside_its_grace_period():
    assert check(token(secret=OLD.secret), keys=(KEY, OLD)).ok


def test_parse_token_rejects_overlong_numbers_and_wrong_mac_length():
    assert parse_token("r1234567890123.1.aaaaaaaaaaaaaaaa") is None
    assert parse_token("r12.1.aaaaaaaaaaaaaaa") is None
    assert parse_token("r12.1.aaaaaaaaaaaaaaaa") is not None
