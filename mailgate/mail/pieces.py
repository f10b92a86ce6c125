"""A mail too large to hold whole in the process that hands it on (to a parse worker)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Pieces:
    """Its size, and `read()`, which yields its bytes a piece at a time (from the store)
    as they go on."""

    size: int
    read: Callable[[], Iterable[bytes]]

    def whole(self) -> bytearray:
        out, at = bytearray(self.size), 0
        for piece in self.read():
            out[at:at + len(piece)] = piece
            at += len(piece)
        del out[at:]
        return out
