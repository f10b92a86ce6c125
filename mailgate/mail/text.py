"""Text that is safe to show and to put in a header: one line, no controls, no bidi
tricks; names that are never a path. Pure helpers shared by parsing and composing.

Header values are decoded here: raw 8-bit bytes (RFC 6532 UTF-8, or a legacy 8-bit
charset) and RFC 2047 encoded words, with the whitespace rules of RFC 2047 §6.2 — the
whitespace between two adjacent encoded words is dropped, all other whitespace is kept.
"""

from __future__ import annotations

import binascii
import codecs
import mimetypes
import re
import unicodedata

from mailgate.mail.charsets import decode_header_bytes, decode_text, superset

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_BIDI = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile("[\udc80-\udcff]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# RFC 2047 §2, read leniently as mail clients do: spaces inside the encoded text and a
# word glued to ordinary text are accepted; a '?' never (it would end the word). An
# RFC 2231 language (`=?utf-8*de?q?…?=`) is allowed after the charset.
_ENCODED_WORD = re.compile(r"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([bBqQ])\?([^?]*)\?=")
_FOLD = re.compile(r"(?:\r\n|\r|\n)(?=[ \t])")
_QP_BYTE = re.compile(rb"=([0-9A-Fa-f]{2})")
_BLANKS = re.compile(r"[ \t]+")


def decode_header_value(value: str, hint: str = "") -> str:
    """A header value as one line of display text: 8-bit bytes and encoded words decoded.
    `hint` is the charset the mail's text declares, for raw 8-bit bytes (see unescape_8bit)."""
    value = unescape_8bit(value, hint)
    if "=?" in value:
        value = decode_encoded_words(value)
    return clean_text_line(value)


def unescape_8bit(value: str, hint: str = "") -> str:
    """Raw 8-bit bytes that the parser kept as surrogate escapes, as text: UTF-8 (RFC 6532)
    when they are valid UTF-8, else the charset the mail's text parts declare (a mail
    client writes its headers in the same charset), else a guess, else Windows-1252."""
    if not _SURROGATE.search(value):
        return value
    return decode_header_bytes(value.encode("utf-8", "surrogateescape"), hint)[0]


def has_8bit(value: str) -> bool:
    return _SURROGATE.search(value) is not None


def unfold(value: str) -> str:
    """RFC 5322 unfolding: a line break before a space or tab goes; the space stays."""
    return _FOLD.sub("", value) if "\r" in value or "\n" in value else value


def decode_encoded_words(value: str) -> str:
    """Decode the RFC 2047 encoded words in an unfolded or folded header value.

    Folding (a line break before a space or tab) unfolds to the space or tab. Whitespace
    between two encoded words is dropped (RFC 2047 §6.2), so a sender can split a word
    or a character across them; whitespace between an encoded word and ordinary text is
    kept. Neighbouring words in one charset are joined as bytes before decoding (a UTF-8
    character may be split between them). A word with an unknown charset or broken
    base64 is left as it stands.
    """
    value = unfold(value)
    out: list[str] = []
    run: list[tuple[str, bytes]] = []        # adjacent encoded words: (charset, bytes)
    pos = 0
    for m in _ENCODED_WORD.finditer(value):
        word = _word(m)
        if word is None:
            continue                         # malformed: stays in the text as it is
        between = value[pos:m.start()]
        if run and not between.strip(" \t"):
            run.append(word)
        else:
            out.append(_decode_run(run))
            out.append(between)
            run = [word]
        pos = m.end()
    out.append(_decode_run(run))
    out.append(value[pos:])
    return "".join(out)


def _word(m: re.Match) -> tuple[str, bytes] | None:
    charset, kind, text = m.group(1).lower(), m.group(2).lower(), m.group(3)
    charset = superset(charset) or "utf-8"
    try:
        codecs.lookup(charset)
    except LookupError:
        return None
    if kind == "q":
        data = _QP_BYTE.sub(lambda h: bytes([int(h.group(1), 16)]),
                            text.replace("_", " ").encode("utf-8"))
        return charset, data
    if not text.isascii():
        return None
    try:
        return charset, binascii.a2b_base64(text + "=" * (-len(text) % 4))
    except binascii.Error:
        return None


def _decode_run(run: list[tuple[str, bytes]]) -> str:
    out, i = [], 0
    while i < len(run):
        charset, data = run[i]
        i += 1
        while i < len(run) and run[i][0] == charset:
            data += run[i][1]
            i += 1
        out.append(decode_text(data, charset)[0])     # a mislabelled word, read anyway
    return "".join(out)


def clean_text_line(value: str) -> str:
    """One line of text: CR/LF and other controls become spaces; no bidi overrides."""
    if value.isascii() and value.isprintable():      # most headers: only spaces to fold
        return " ".join(value.split())
    value = value.encode("utf-8", "replace").decode("utf-8")  # drop lone surrogates
    value = _BIDI.sub("", _CONTROL.sub(" ", value.replace("\r", " ").replace("\n", " ")))
    return _BLANKS.sub(" ", value).strip()


def clean_body(text: str) -> str:
    """Body text with LF line ends, no NULs and no lone surrogates (as "?")."""
    if not text.isascii() and _LONE_SURROGATE.search(text):
        # (an encode and decode round trip would copy a large body twice for nothing)
        text = text.encode("utf-8", "replace").decode("utf-8")
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return text


_EXT = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "text/plain": ".txt",
        "application/pdf": ".pdf", "message/rfc822": ".eml", "text/html": ".html",
        "application/pgp-encrypted": ".pgp", "application/pgp-signature": ".asc",
        "application/pkcs7-signature": ".p7s", "application/x-pkcs7-signature": ".p7s",
        "application/ms-tnef": ".dat", "text/calendar": ".ics", "message/delivery-status":
        ".txt", "message/disposition-notification": ".txt", "text/rfc822-headers": ".txt",
        "application/octet-stream": ".bin", "text/x-vcard": ".vcf", "text/vcard": ".vcf"}


def extension_for(content_type: str) -> str:
    """A file extension for an unnamed part, by its type (".bin" when none fits)."""
    ctype = content_type.lower()
    return _EXT.get(ctype) or mimetypes.guess_extension(ctype, strict=False) or ".bin"


def safe_filename(name: str, content_type: str = "", n: int = 1) -> str:
    """A display name that is no path, has no controls or bidi tricks, and is not too long."""
    name = unicodedata.normalize("NFC", clean_text_line(name.replace("\x00", "")))
    name = re.split(r"[/\\]", name)[-1]           # keep only the last path segment
    name = name.replace(":", "_").strip(" .")
    if not name:
        return f"file-{n}{extension_for(content_type)}"
    stem, dot, ext = name.rpartition(".")
    if not dot or len(ext) > 10:
        stem, ext = name, ""
    limit = 200 - len(ext.encode())
    encoded = stem.encode("utf-8")[:limit].decode("utf-8", "ignore")
    return f"{encoded}.{ext}" if ext else encoded
