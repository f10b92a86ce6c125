"""Is a mail automatic? Automatic mail is stored but never answered automatically.

RFC 3834 and common practice: `Auto-Submitted` other than `no`, `Precedence`
bulk/junk/list, and mail from the null envelope sender are automatic; an
`X-Auto-Response-Suppress` header on human mail only asks us not to answer.
Pure: takes header pairs and the envelope, returns a value with the reasons.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class AutoClass:
    automatic: bool             # written by a machine: never answer it automatically
    suppress_reply: bool        # a human mail that asks for no automatic answer
    reasons: tuple[str, ...] = ()

    @property
    def no_auto_reply(self) -> bool:
        return self.automatic or self.suppress_reply

    def as_dict(self) -> dict:
        return {"automatic": self.automatic, "suppress_reply": self.suppress_reply,
                "reasons": list(self.reasons)}


def _first(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    name = name.lower()
    for key, value in headers:
        if key.lower() == name:
            return value.strip()
    return None


# Subjects of out-of-office and other automatic replies, in the languages our users write.
_AUTO_SUBJECT = re.compile(
    r"^\s*(\[?auto(matic)?[ -]?(reply|response|generated)\]?|auto:|"
    r"out of (the )?office|automatic reply|abwesenheitsnotiz|abwesenheit|"
    r"automatische antwort|ich bin (ab|nicht im b)|autosvar|fraværende|fravaerende|"
    r"ikke på kontoret|ikke til stede|undeliverable|unzustellbar|"
    r"delivery status notification|mail delivery failed|returned mail|"
    r"undelivered mail returned)", re.IGNORECASE)
_ROBOT_LOCAL = re.compile(r"^(mailer-daemon|postmaster|no-?reply|do-?not-?reply|donotreply|"
                          r"bounces?|noreply-.*|.*-noreply)$", re.IGNORECASE)


def classify_automatic(headers: Sequence[tuple[str, str]], *, envelope_sender: str | None,
                       sender: str | None = None, subject: str = "") -> AutoClass:
    """`envelope_sender` None means unknown (IMAP): the Return-Path header stands in."""
    reasons: list[str] = []
    auto_submitted = _first(headers, "Auto-Submitted")
    if auto_submitted is not None and auto_submitted.split(";")[0].strip().lower() != "no":
        reasons.append(f"Auto-Submitted: {auto_submitted[:60]}")
    precedence = (_first(headers, "Precedence") or "").lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        reasons.append(f"Precedence: {precedence}")
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-AutoReply-From",
                 "X-Mail-Autoreply", "List-Id", "List-Unsubscribe", "Feedback-ID"):
        if _first(headers, name) is not None:
            reasons.append(f"{name} header")
    if (_first(headers, "X-Auto-Response-Suppress") or "").lower() == "all" and _first(
            headers, "X-MS-Exchange-Generated-Message-Source") is not None:
        reasons.append("Exchange-generated")
    if envelope_sender is None:
        return_path = _first(headers, "Return-Path")
        envelope_sender = "?" if return_path is None else return_path.strip()
    if envelope_sender.strip().strip("<>").strip() == "":
        reasons.append("null envelope sender")
    if sender and _ROBOT_LOCAL.match(sender.split("@")[0]):
        reasons.append(f"sender {sender.split('@')[0]} is a robot address")
    if subject and _AUTO_SUBJECT.match(subject):
        reasons.append("automatic-reply subject")
    suppress = _first(headers, "X-Auto-Response-Suppress")
    suppress_reply = bool(suppress) and suppress.lower() not in ("none",)
    return AutoClass(bool(reasons), suppress_reply, tuple(reasons))


def is_bounce(content_type: str, headers: Sequence[tuple[str, str]], sender: str | None,
              subject: str) -> bool:
    """A delivery report: RFC 3464 multipart/report, or an Exchange/Postfix-style report
    without it (robot sender plus a delivery-failure subject)."""
    ctype = (_first(headers, "Content-Type") or content_type).lower()
    if "multipart/report" in ctype and "delivery-status" in ctype:
        return True
    robot = bool(sender) and _ROBOT_LOCAL.match(sender.split("@")[0]) is not None
    failure = re.search(r"undeliver|unzustellbar|delivery (status notification|has failed|"
                        r"failure)|mail delivery failed|returned mail|returned to sender|"
                        r"kunne ikke leveres|zustellung fehlgeschlagen", subject or "", re.I)
    return robot and failure is not None


def bounce_status(report: str, text: str) -> str:
    """The DSN status code (5.1.1, 4.2.2 …) of a report: its `Status:` field, else the
    first code in the human-readable text (Exchange), or ""."""
    m = re.search(r"^Status:\s*([245]\.\d{1,3}\.\d{1,3})", report, re.MULTILINE | re.I)
    if m:
        return m.group(1)
    m = re.search(r"(?<![\d.])([45])\.(\d{1,3})\.(\d{1,3})(?![\d.])", text)
    return ".".join(m.groups()) if m else ""
