"""`ticket show` as a conversation: each message with who, when and the status then,
its new text wrapped to the terminal, the quoted part folded to one line.

The text functions are pure (width in, lines out); printing goes through
`mailgate.cli.output`, which escapes whatever a mail's author put in it.
"""

from __future__ import annotations

import shutil

from mailgate.cli.output import block, say

ARROWS = {"in": "<-", "out": "->", "internal": "##"}
INDENT = "   "


def terminal_width() -> int:
    return shutil.get_terminal_size((100, 24)).columns


def wrap(text: str, width: int | None) -> str:
    """Each line wrapped at `width` between words (a word longer than the line stays
    whole); None leaves the lines as they are. Lines end only at "\n" and words only at
    spaces: any other control character stays in place, for `output.safe` to show."""
    if width is None:
        return text
    out: list[str] = []
    for line in text.split("\n"):
        if len(line) <= width:
            out.append(line.rstrip(" "))
            continue
        lead = line[:len(line) - len(line.lstrip(" "))]
        current = ""
        for word in line[len(lead):].split(" "):
            if not word:
                continue
            if current and len(lead) + len(current) + 1 + len(word) > width:
                out.append(lead + current)
                current = word
            else:
                current = f"{current} {word}" if current else word
        out.append(lead + current)
    return "\n".join(out)


def quoted_lines(text: str, full_text: str) -> int:
    """How many written lines the whole mail has beyond what the author newly wrote
    (the quote, the quote header, a signature): what `--full` would add."""
    def written(t: str) -> int:
        return sum(1 for line in (t or "").splitlines() if line.strip())
    return max(0, written(full_text) - written(text))


def print_message(m: dict, *, full: bool, width: int | None) -> None:
    """One message of `ticket show` (`m` as in its JSON)."""
    head = (f"{ARROWS.get(m['direction'], '--')} {m['direction']} · {m['from'] or '-'} · "
            f"{m['created_at']:%Y-%m-%d %H:%M} · {m['status_at']} · msg {m['id']}")
    if m.get("done_at"):
        head += f" · done by {m['done_by']}"
    say(head)
    say(f"{INDENT}{m['subject']}")
    body_width = None if width is None else max(20, width - len(INDENT))
    text = (m["full_text"] or m["text"]) if full else m["text"]
    block(wrap((text or "").strip(), body_width), indent=INDENT)
    hidden = 0 if full else quoted_lines(m["text"], m["full_text"])
    if hidden:
        say(f"{INDENT}[… {hidden} quoted line{'s' if hidden != 1 else ''}; "
            f"--full shows them]")
    if full and m.get("defects"):
        # how the mail had to be read (a guessed charset, a repaired From): with --full
        say(f"{INDENT}[read with repairs: {'; '.join(m['defects'][:10])}]")
    for a in m["attachments"]:
        inline = ", inline image" if a.get("content_id") else ""
        say(f"{INDENT}[attachment {a['id']}] {a['filename']} ({a['content_type']}, "
            f"{a['size']} bytes{inline})  mailgate attachment save {a['id']}")
