"""Text from bytes whose charset label may be wrong: the label's superset first, then
what the bytes are. Pure.

Senders mislabel text in a few well-known ways, and mature parsers (Zammad, Python's
`email` with recovery, Discourse) read it in this order:

1. the declared charset, widened to the superset that senders actually write in
   (GB2312/GBK → GB18030, KS_C_5601 → CP949, Shift_JIS → CP932, Big5 → Big5-HKSCS,
   ISO-8859-1/ASCII → Windows-1252, ISO-2022-JP → its extended forms);
2. for a label that does not fit: ISO-2022-JP when the bytes hold its escape sequences,
   UTF-8 when the bytes are valid UTF-8 (almost never true by chance), CP932 for bytes
   labelled ISO-2022-JP that are in fact Shift_JIS;
3. `charset-normalizer`'s guess; 4. Windows-1252, which reads every byte.

Every step past the first is reported back as a defect sentence, so an admin can see that
a mail's text was guessed. Never raises.
"""

from __future__ import annotations

import codecs
import functools
import re

SUPERSETS = {
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "cp936": "gb18030",
    "euc-cn": "gb18030", "gb_2312-80": "gb18030", "chinese": "gb18030",
    "ks_c_5601-1987": "cp949", "ks_c_5601": "cp949", "euc-kr": "cp949", "korean": "cp949",
    "shift_jis": "cp932", "shift-jis": "cp932", "x-sjis": "cp932", "sjis": "cp932",
    "ms_kanji": "cp932", "windows-31j": "cp932", "big5": "big5hkscs", "x-big5": "big5hkscs",
    "iso-8859-1": "cp1252", "iso8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252",
    "l1": "cp1252", "us-ascii": "cp1252", "ascii": "cp1252", "ansi_x3.4-1968": "cp1252",
    "iso-8859-11": "cp874", "tis-620": "cp874", "windows-874": "cp874",
    "iso-2022-jp": "iso2022_jp_ext", "csiso2022jp": "iso2022_jp_ext",
    "utf8": "utf-8", "unicode-1-1-utf-8": "utf-8", "x-unknown": "", "unknown": "",
    "unknown-8bit": "", "x-user-defined": "", "default": "", "charset": "",
}
# Labels whose bytes are often of a wider or different charset than they say.
_ALSO = {"iso2022_jp_ext": ("iso2022_jp_2", "iso2022_jp_3", "cp932", "euc_jp"),
         "cp1252": (), "gb18030": (), "cp949": (), "cp932": ("euc_jp",)}
_NOT_CHARSETS = frozenset({"undefined", "unicode-escape", "raw-unicode-escape", "idna",
                           "punycode", "mbcs", "oem"})
_SINGLE_BYTE = re.compile(r"^(iso[-_]?8859|windows-125|cp125|koi8|latin|l\d$|us-ascii|ascii)",
                          re.IGNORECASE)
_LATIN = frozenset({"cp1250", "cp1254", "cp1257", "cp1258", "latin_1", "iso8859_2",
                    "iso8859_3", "iso8859_4", "iso8859_9", "iso8859_10", "iso8859_13",
                    "iso8859_14", "iso8859_15", "iso8859_16", "mac_roman", "mac_latin2",
                    "mac_iceland", "mac_turkish", "cp850", "cp437", "cp858"})
_JIS_ESCAPES = (b"\x1b$B", b"\x1b$@", b"\x1b(J", b"\x1b(I", b"\x1b$(D")
_C1 = re.compile(rb"[\x80-\x9f]")


def superset(label: str) -> str:
    """The codec to read text labelled `label` with ("" when the label says nothing)."""
    label = label.strip().strip('"\'').lower()
    return SUPERSETS.get(label, label)


def decode_text(data: bytes, declared: str = "", hint: str = "") -> tuple[str, str]:
    """(text, defect): `data` read by the chain above; defect is "" when the declared
    charset (or its superset) read the bytes, else a sentence naming the fallback.
    `hint` is a charset the mail declares elsewhere, tried before guessing."""
    label = declared.strip().strip('"\'')[:40]
    codec = superset(label)
    if not codec.startswith("iso2022") and b"\x1b" in data \
            and any(e in data for e in _JIS_ESCAPES):
        # 7-bit ISO-2022-JP reads as "valid" ASCII or UTF-8: its escapes decide first
        for jis in ("iso2022_jp_ext", "iso2022_jp_2", "iso2022_jp_3"):
            text = _try(data, jis, label)
            if text is not None:
                what = f"labelled {label}" if label else "without a charset"
                return text, f"text {what} read as ISO-2022-JP"
    if _SINGLE_BYTE.match(label) and _is_utf8(data):
        # a single-byte label on valid UTF-8 is a mislabel: UTF-8 is almost never valid
        # by chance, and the labelled reading would be mojibake
        return data.decode("utf-8"), f"text labelled {label} read as UTF-8"
    if codec and _known(codec):
        exact = _exact(data, label, codec)
        if exact is not None:
            return exact, ""
        text = _try(data, codec, label)
        if text is not None:
            return text, f"text labelled {label} read as {codec}"
        for other in _ALSO.get(codec, ()):
            text = _try(data, other, label)
            if text is not None:
                return text, f"text labelled {label} read as {other}"
    what = f"labelled {label}" if label else "without a charset"
    if label and codec and not _known(codec):
        what = f"labelled with the unknown charset {label!r}"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return text, ("" if not label or data.isascii() else f"text {what} read as UTF-8")
    other = superset(hint)
    if other and other != codec and other != "utf-8" and _known(other):
        text = _try(data, other, hint)
        if text is not None:
            return text, f"text {what} is not valid; read as {other} (declared elsewhere)"
    guess = _guess(data)
    if guess is not None:
        return guess[0], f"text {what} is not valid; read as {guess[1]} (guessed)"
    return data.decode("cp1252", "replace"), f"text {what} is not valid; read as Windows-1252"


def _exact(data: bytes, label: str, codec: str) -> str | None:
    """The text as the label says, when that reading is right (then the superset reads
    the same). Latin-1 bytes 0x80–0x9F are Windows-1252 letters, not control codes."""
    if codec == "cp1252" and (_C1.search(data) or _is_utf8(data)):
        return None
    try:
        return data.decode(label) if _known(label) else None
    except (UnicodeError, LookupError, ValueError):
        return None


def _try(data: bytes, codec: str, label: str) -> str | None:
    if codec == "cp1252" and _is_utf8(data):
        # Latin-1 and ASCII labels on valid UTF-8 are a mislabel: UTF-8 is almost never
        # valid by chance, and the cp1252 reading would be mojibake.
        return None
    try:
        return data.decode(codec) if _known(codec) else None
    except (UnicodeError, LookupError, ValueError):
        return None


def _is_utf8(data: bytes) -> bool:
    """Non-ASCII bytes that are valid UTF-8."""
    if data.isascii():
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _known(codec: str) -> bool:
    """A codec that reads text: not a bytes transform (zlib, base64) nor one of Python's
    own escapes a sender could name to garble or crash the decoding ("undefined")."""
    try:
        info = codecs.lookup(codec)
    except (LookupError, ValueError):
        return False
    return getattr(info, "_is_text_encoding", True) and info.name not in _NOT_CHARSETS


_HIGH_RUN = re.compile(rb"[\x80-\xff]+")
_SHORT = 400          # below this many bytes the statistical guesser is a coin toss
_CJK = ("gb18030", "cp932", "big5hkscs", "cp949")   # ties go to the first


def _short_guess(data: bytes) -> tuple[str, str] | None:
    """A guess for a few words (a header, a one-line body) by what the bytes look like:
    lone 8-bit letters inside ASCII words are Western (`Gr\\xfc\\xdfe` is Grüße, not
    Arabic), runs of byte pairs are CJK text read in the charset whose reading is most
    purely one script (GBK read as Korean mixes Hangul with Hanzi; Korean never does)."""
    runs = list(_HIGH_RUN.finditer(data))
    if not runs:
        return None
    if all(m.end() - m.start() <= 2 and _touches_letter(data, m) for m in runs):
        text = _try(data, "cp1252", "")
        if text is not None and all(c.isalpha() for c in text if not c.isascii()):
            return text, "cp1252"
    cyrillic = _cyrillic(data)
    if cyrillic is not None:
        return cyrillic
    best: tuple[float, str, str] | None = None
    for codec in _CJK:
        text = _try(data, codec, "")
        if text is None:
            continue
        score = _purity(text, codec)
        if best is None or score > best[0]:
            best = (score, text, codec)
    return (best[1], best[2]) if best is not None and best[0] >= 0.9 else None


_WORD = re.compile(r"[^\W\d_]+")


def _cyrillic(data: bytes) -> tuple[str, str] | None:
    """Cyrillic in Windows-1251 or KOI8-R: the reading whose words are cased as words are
    (lower, Capitalised or UPPER); KOI8-R read as 1251 swaps the case of every letter,
    and CJK byte pairs read as either give words of random case."""
    best: tuple[float, str, str] | None = None
    for codec in ("cp1251", "koi8_r"):
        text = _try(data, codec, "")
        if text is None or not all("\u0400" <= c <= "\u04ff" or c in "«»№—–…\xa0"
                                   for c in text if not c.isascii()):
            continue
        words = [w for w in _WORD.findall(text) if not w.isascii()]
        if not words or max(len(w) for w in words) < 4:
            continue
        cased = sum(w.islower() or w.isupper() or w.istitle() for w in words) / len(words)
        if cased >= 0.9 and (best is None or cased > best[0]):
            best = (cased, text, codec)
    return (best[1], best[2]) if best is not None else None


def _touches_letter(data: bytes, m: re.Match) -> bool:
    before = data[m.start() - 1:m.start()]
    after = data[m.end():m.end() + 1]
    return before.isalpha() or after.isalpha()


def _purity(text: str, codec: str) -> float:
    """The share of a CJK reading's characters that belong to the script that charset is
    written in: common Hanzi for Chinese, Hangul for Korean, Kana and Kanji for Japanese."""
    wide = [c for c in text if not c.isascii() and not c.isspace()]
    if not wide:
        return 0.0
    good = 0.0
    for c in wide:
        o = ord(c)
        hangul = 0xAC00 <= o <= 0xD7A3
        kana = 0x3040 <= o <= 0x30FF or 0xFF61 <= o <= 0xFF9F
        han = 0x4E00 <= o <= 0x9FFF
        if 0x3000 <= o <= 0x303F or 0xFF01 <= o <= 0xFF5E:        # CJK punctuation
            good += 1
        elif codec == "cp949":      # the 2,350 syllables of KS X 1001 are what Korean uses
            good += (1 if _encodes(c, "euc_kr") else 0.3) if hangul else 0.5 if han else 0
        elif codec == "cp932":      # half-width kana is rare; JIS level 1 kanji common
            good += 1 if 0x3040 <= o <= 0x30FF else 0.6 if kana else \
                _level(c, "cp932", 0x88, 0x9F) if han else 0
        elif codec == "big5hkscs":
            good += 1 if han and _encodes(c, "big5") else 0
        elif han:                   # simplified Hanzi, or traditional ones written in GBK
            good += _level(c, "gb2312", 0xB0, 0xD7) or (0.9 if _encodes(c, "big5") else 0)
    return good / len(wide)


def _level(c: str, codec: str, low: int, high: int) -> float:
    """1 for a character of the charset's first (most frequent) level, whose lead bytes
    run from `low` to `high`; 0.8 for a rarer one of the charset; 0 for none."""
    try:
        lead = c.encode(codec)[0]
    except UnicodeEncodeError:
        return 0.0
    return 1.0 if low <= lead <= high else 0.8


def _encodes(c: str, codec: str) -> bool:
    try:
        c.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


def _guess(data: bytes) -> tuple[str, str] | None:
    if len(data) < _SHORT:
        short = _short_guess(data)
        if short is not None:
            return short
    if len(data) < 4:
        return None
    from charset_normalizer import from_bytes  # imported late: it is slow to load

    best = from_bytes(data[:200_000]).best()
    if best is None or not best.encoding:
        return None
    if best.encoding in _LATIN and _try(data, "cp1252", "") is not None:
        # the guesser splits Western text between near-identical Latin code pages;
        # Windows-1252 is what such mail nearly always is
        return data.decode("cp1252"), "cp1252"
    try:
        return data.decode(best.encoding), best.encoding
    except (UnicodeError, LookupError, ValueError):
        return None


@functools.lru_cache(maxsize=64)
def decode_header_bytes(data: bytes, hint: str = "") -> tuple[str, str]:
    """Raw 8-bit header bytes: UTF-8 (RFC 6532), else the charset the mail's text parts
    declare (`hint`, widened), else a guess, else Windows-1252. (text, charset used).

    Cached: one parse reads the same header value for display, for its defect and for
    From/To/Subject, and a value that needs charset-normalizer's guess is slow to read."""
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    codec = superset(hint)
    if codec and codec != "utf-8" and _known(codec):
        text = _try(data, codec, hint)
        if text is not None:
            return text, codec
    guess = _guess(data) if len(data) >= 12 else _short_guess(data)
    if guess is not None:
        return guess
    return data.decode("cp1252", "replace"), "cp1252"
