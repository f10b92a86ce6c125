"""A large mail's bytes on their way in, kept in an unlinked temporary file.

An SMTP session reading a 20 MB DATA would otherwise hold all of it in memory (and a
second copy while the buffer grows) until the spool has committed it; sixteen such
sessions at once would hold 400 MB. Past `SPILL` bytes the reader writes what it has
read to a temporary file instead and keeps only the first piece (the header section,
for the hop count). The spool then copies the file into the store a piece at a time,
in the transaction that is committed before the 250: nothing is acknowledged that is
not in the store, and the file, unlinked from the start, goes when it is closed (or
when the process dies).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator

SPILL = 1 << 20          # bytes held in memory before the rest goes to a file
PIECE = 1 << 20          # bytes read back at a time


class SpilledRaw:
    """Raw mail bytes in a temporary file: `len()`, the first bytes (`head`), the
    SHA-256 and the bytes again a piece at a time (`pieces`)."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(prefix="mailgate-data-")  # noqa: SIM115 (kept open)
        self._fd = self._file.fileno()
        self._hash = hashlib.sha256()
        self.size = 0
        self.head = b""

    def write(self, data) -> None:
        if not self.head:
            self.head = bytes(data[:SPILL])
        self._hash.update(data)
        view = memoryview(data)
        while view:
            done = os.write(self._fd, view)
            view = view[done:]
        self.size += len(data)

    def __len__(self) -> int:
        return self.size

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def pieces(self, size: int = PIECE) -> Iterator[bytes]:
        """The bytes from the start, `size` at a time."""
        offset = 0
        while offset < self.size:
            piece = os.pread(self._fd, min(size, self.size - offset), offset)
            if not piece:
                raise OSError(f"spilled mail data ends at {offset} of {self.size} bytes")
            offset += len(piece)
            yield piece

    def read(self) -> bytes:
        """All of it in memory, for a path that needs it whole."""
        return b"".join(self.pieces())

    def close(self) -> None:
        self._file.close()


def head_of(raw) -> bytes | bytearray:
    """The bytes a header check reads: all of a mail in memory, the head of a spilled one."""
    return raw.head if isinstance(raw, SpilledRaw) else raw
