"""Loop protection in one place: our own mail coming back, too many hops, delivery
reports, and automatic mail (which is stored but never answered automatically).

The same checks run for mail from SMTP, IMAP and the pipe. RFC 3834 and common
practice: `Auto-Submitted` other than `no`, `Precedence` bulk/junk, autoreply headers,
robot senders and out-of-office or delivery-failure subjects make a mail automatic.
Some signals only ask us not to answer (`suppress_reply`), as RT and Zammad treat them:
mailing-list mail (`List-Id`, `Precedence: list`, `List-Unsubscribe`) is written by a
person and passed on by a list, so it is a human mail that gets no acknowledgement (an
answer would go to the whole list); a null envelope sender alone is not proof of a
machine (spam uses it too) but RFC 3834 forbids answering it; it makes the mail
automatic only together with a delivery report or another automatic signal. So does
`X-Auto-Response-Suppress` on human mail. `reasons` names every signal that decided.
Pure: takes header pairs, the envelope and what marks our own mail, returns values with
the reasons.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

LOOP_HEADER = "X-Mailgate-Loop"
_LOOP_KEY = LOOP_HEADER.lower()
_RECEIVED = re.compile(rb"(?im)^received:")


@dataclass(frozen=True)
class AutoClass:
    automatic: bool             # written by a machine: never answer it automatically
    suppress_reply: bool        # a human mail that asks for no automatic answer
    reasons: tuple[str, ...] = ()

    @classmethod
    def human(cls) -> AutoClass:
        return cls(False, False)

    @property
    def no_auto_reply(self) -> bool:
        return self.automatic or self.suppress_reply

    @property
    def decided_by(self) -> str:
        """The signal that decided: the first automatic one, else the first that only
        forbids an answer ("" for a plain human mail). `reasons` lists them in that order."""
        return self.reasons[0] if self.reasons else ""

    def as_dict(self) -> dict:
        return {"automatic": self.automatic, "suppress_reply": self.suppress_reply,
                "reasons": list(self.reasons), "decided_by": self.decided_by}


def _first(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    name = name.lower()
    for key, value in headers:
        if key.lower() == name:
            return value.strip()
    return None


def _firsts(headers: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Each header's first value by lower-cased name, as `_first` finds it: one pass
    over the headers instead of one per name asked."""
    out: dict[str, str] = {}
    for key, value in headers:
        k = key.lower()
        if k not in out:
            out[k] = value.strip()
    return out


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
    """`envelope_sender` "" is the null sender (never answered; automatic only with
    another automatic signal); None means unknown (IMAP, a piped mail without --sender):
    the topmost Return-Path header stands in, and without one the sender counts as a
    person's, not as null."""
    first = _firsts(headers)
    reasons: list[str] = []          # signals that make the mail automatic
    quiet: list[str] = []            # signals that only forbid an automatic answer
    auto_submitted = first.get("auto-submitted")
    if auto_submitted is not None and auto_submitted.split(";")[0].strip().lower() != "no":
        reasons.append(f"Auto-Submitted: {auto_submitted[:60]}")
    precedence = (first.get("precedence") or "").lower()
    list_post = (first.get("list-post") or "").strip().lower()
    if precedence in ("bulk", "junk") and list_post not in ("", "no"):
        # a discussion list (ezmlm, Majordomo) marks its members' mail bulk too
        quiet.append(f"mailing list (Precedence: {precedence} with List-Post): no "
                     "automatic answer")
    elif precedence in ("bulk", "junk", "auto_reply"):
        reasons.append(f"Precedence: {precedence}")
    elif precedence == "list":
        quiet.append("mailing list (Precedence: list): no automatic answer")
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-AutoReply-From",
                 "X-Mail-Autoreply", "Feedback-ID"):
        if first.get(name.lower()) is not None:
            reasons.append(f"{name} header")
    for name in ("List-Id", "List-Unsubscribe", "List-Post"):
        if first.get(name.lower()) is not None:
            quiet.append(f"mailing list ({name}): no automatic answer")
    if (first.get("x-auto-response-suppress") or "").lower() == "all" and first.get(
            "x-ms-exchange-generated-message-source") is not None:
        reasons.append("Exchange-generated")
    ctype = (first.get("content-type") or "").lower()
    if "multipart/report" in ctype:
        reasons.append("delivery or disposition report (multipart/report)")
    if sender and _ROBOT_LOCAL.match(sender.split("@")[0]):
        reasons.append(f"sender {sender.split('@')[0]} is a robot address")
    if subject and _AUTO_SUBJECT.match(subject):
        reasons.append("automatic-reply subject")
    if envelope_sender is None:
        envelope_sender = first.get("return-path")
    if envelope_sender is not None and envelope_sender.strip().strip("<>").strip() == "":
        # spam uses the null sender too: alone it only forbids an answer (RFC 3834 §2)
        (reasons if reasons else quiet).append("null envelope sender")
    suppress = first.get("x-auto-response-suppress")
    if suppress and suppress.lower() != "none":
        quiet.append(f"X-Auto-Response-Suppress: {suppress[:60]}")
    if reasons:
        return AutoClass(True, bool(quiet), tuple(reasons + quiet))
    return AutoClass(False, bool(quiet), tuple(quiet))


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


# --- our own mail, hops, reports ----------------------------------------------------------


def count_received(raw: bytes) -> int:
    """How many Received headers the header section of `raw` carries (hops so far)."""
    end = raw.find(b"\r\n\r\n")
    lf = raw.find(b"\n\n")
    if end < 0 or 0 <= lf < end:
        end = lf
    return len(_RECEIVED.findall(raw, 0, len(raw) if end < 0 else end))


@dataclass(frozen=True)
class OwnMarks:
    """What identifies mail that mailgate itself wrote or reads as a channel."""

    loop_marker: str
    support_address: str
    channels: frozenset[str] = frozenset()
    max_hops: int = 100


def own_mail(headers: Sequence[tuple[str, str]], *, message_id: str, sender: str | None,
             received: int, marks: OwnMarks, sent_ids: frozenset[str]) -> str:
    """Why this mail must not be processed as mail from a person ("" = it may): our loop
    header, a Message-ID we sent, our own address, a channel we read, or a mail that has
    travelled through too many hops (a loop somewhere else)."""
    if any(k.lower() == _LOOP_KEY and v.strip() == marks.loop_marker for k, v in headers):
        return "our own mail came back (loop header)"
    if message_id and message_id in sent_ids:
        return f"our own mail came back (Message-ID {message_id})"
    if sender and sender == marks.support_address:
        return "mail from the support address itself"
    if sender and sender in marks.channels:
        return f"mail from {sender}, an address mailgate reads as a channel"
    if received >= marks.max_hops:
        return f"mail loop: {received} Received headers (limit {marks.max_hops})"
    return ""
