"""Matching what people type against names, labels and aliases, in any language.

Customers and agents write status names and commands the way their keyboard lets them:
"Daten gepruft", "Daten geprüft" and "Daten geprueft" mean the same status, as do
"genåbn" and "genaabn". `key()` folds all of them to one comparable form; `pick()`
chooses among candidates by an exact key, else by a unique prefix. Pure.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")

# letters NFKD does not split into a base letter and a mark, spelled as people do
# without them (Danish æ/ø/å, German ß); å is spelled "aa", so it is replaced before
# NFKD would turn it into a plain "a"
_SPELLED = str.maketrans({"ß": "ss", "ẞ": "ss", "æ": "ae", "Æ": "ae", "ø": "oe", "Ø": "oe",
                          "å": "aa", "Å": "aa"})
# "ue" and "u" both stand for ü, "aa" and "a" for å (and so on): folding the pairs keeps
# every spelling equal
_DIGRAPHS = re.compile(r"([aou])e|(a)a")


def key(text: str) -> str:
    """The comparable form of a name: no case, no accents, words joined by '-'."""
    spelled = unicodedata.normalize("NFKD", (text or "").translate(_SPELLED))
    bare = "".join(c for c in spelled if not unicodedata.combining(c)).casefold()
    folded = _DIGRAPHS.sub(lambda m: m.group(1) or m.group(2), bare)
    return re.sub(r"[^\w]+", "-", folded).strip("-")


def pick(text: str, items: Iterable[T], names: Callable[[T], Iterable[str]]) -> T | None:
    """The item one of whose `names` is `text` (by `key`), else the one item a name of
    which starts with it; None when nothing or more than one item fits."""
    wanted = key(text)
    if not wanted:
        return None
    keyed = [(item, {key(n) for n in names(item) if n}) for item in items]
    exact = [item for item, ks in keyed if wanted in ks]
    if exact:
        return exact[0] if len(exact) == 1 else None
    hits = [item for item, ks in keyed if any(k.startswith(wanted) for k in ks)]
    return hits[0] if len(hits) == 1 else None
