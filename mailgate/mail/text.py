"""Text that is safe to show and to put in a header: one line, no controls, no bidi
tricks; names that are never a path. Pure helpers shared by parsing and composing."""

from __future__ import annotations

import binascii
import email.header
import re
import unicodedata

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_BIDI = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def decode_header_value(value: str) -> str:
    if "=?" not in value:        # no encoded words: nothing to decode
        return clean_text_line(value)
    try:
        decoded = str(email.header.make_header(email.header.decode_header(value)))
    except (LookupError, ValueError, UnicodeError, binascii.Error):
        decoded = value
    return clean_text_line(decoded)


def clean_text_line(value: str) -> str:
    """One line of text: CR/LF and other controls become spaces; no bidi overrides."""
    if value.isascii() and value.isprintable():      # most headers: only spaces to fold
        return " ".join(value.split())
    value = value.encode("utf-8", "replace").decode("utf-8")  # drop lone surrogates
    value = _BIDI.sub("", _CONTROL.sub(" ", value.replace("\r", " ").replace("\n", " ")))
    return re.sub(r"[ \t]+", " ", value).strip()


def clean_body(text: str) -> str:
    text = text.encode("utf-8", "replace").decode("utf-8")
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return text


_EXT = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "text/plain": ".txt",
        "application/pdf": ".pdf", "message/rfc822": ".eml", "text/html": ".html"}


def safe_filename(name: str, content_type: str = "", n: int = 1) -> str:
    """A display name that is no path, has no controls or bidi tricks, and is not too long."""
    name = unicodedata.normalize("NFC", clean_text_line(name.replace("\x00", "")))
    name = re.split(r"[/\\]", name)[-1]           # keep only the last path segment
    name = name.replace(":", "_").strip(" .")
    if not name:
        return f"attachment-{n}{_EXT.get(content_type.lower(), '.bin')}"
    stem, dot, ext = name.rpartition(".")
    if not dot or len(ext) > 10:
        stem, ext = name, ""
    limit = 200 - len(ext.encode())
    encoded = stem.encode("utf-8")[:limit].decode("utf-8", "ignore")
    return f"{encoded}.{ext}" if ext else encoded
