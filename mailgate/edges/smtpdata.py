"""Reading the DATA of one SMTP transaction in large pieces, into memory or a file.

aiosmtpd reads DATA a line at a time into a list of bytearrays and joins them: for a
20 MB mail that is some 270,000 objects (about twice the mail's size in memory) and a
Python loop per line on the event loop. This reader asks the stream only for the next
".<CR><LF>" (a candidate end) or for a large piece, and applies the same rules: only
<CR><LF>.<CR><LF> ends the data (never a bare LF or CR: no SMTP smuggling), leading
dots are unstuffed (RFC 5321 4.5.2), a message over the size limit or a line over the
line limit is read to its end and then refused. Each piece is unstuffed and checked as
it comes; a mail larger than `spill.SPILL` goes on into an unlinked temporary file
(`SpilledRaw`), so a session never holds a large mail in memory.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from mailgate.edges.spill import SPILL, SpilledRaw

END = b".\r\n"
_STUFFED = re.compile(rb"\r\n\.")


@dataclass(frozen=True)
class Data:
    content: bytes | bytearray | SpilledRaw | None   # None when refused; never copied
    refusal: str = ""              # the SMTP reply for a refused message


class _Lines:
    """Whether a line longer than `limit` bytes (its <CR><LF> counted) went by, across
    pieces; one search per `limit` bytes, not a Python step per line."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.current = 0          # bytes of the line not yet ended
        self.too_long = False

    def feed(self, piece, tail: bytes) -> None:
        if self.too_long:
            return
        pos, n = 0, len(piece)
        if tail[-1:] == b"\r" and piece[:1] == b"\n":     # <CR> | <LF> across pieces
            self.too_long = self.current + 1 > self.limit
            self.current, pos = 0, 1
        while pos < n and not self.too_long:
            room = self.limit - self.current     # the line must end within this
            end = piece.rfind(b"\r\n", pos, pos + room)
            if end >= 0:
                pos, self.current = end + 2, 0
            elif pos + room < n:
                self.too_long = True
            else:
                self.current += n - pos
                return

    def over(self) -> bool:
        return self.too_long or self.current > self.limit


class _Sink:
    """The unstuffed data: a buffer in memory, then a file once it passes SPILL."""

    def __init__(self) -> None:
        self.buf: bytearray | None = bytearray()
        self.file: SpilledRaw | None = None

    def add(self, piece) -> None:
        if self.file is not None:
            self.file.write(piece)
            return
        self.buf += piece
        if len(self.buf) > SPILL:
            self.file = SpilledRaw()
            try:
                self.file.write(self.buf)
            except BaseException:
                self.drop()
                raise
            self.buf = None

    def content(self) -> bytearray | SpilledRaw:
        return self.file if self.file is not None else self.buf

    def drop(self) -> None:
        if self.file is not None:
            self.file.close()
        self.buf, self.file = bytearray(), None


async def read_data(reader: asyncio.StreamReader, *, size_limit: int | None,
                    line_limit: int) -> Data:
    sink = _Sink()
    try:
        return await _read(reader, sink, size_limit, line_limit)
    except BaseException:
        sink.drop()
        raise


async def _read(reader: asyncio.StreamReader, sink: _Sink, size_limit: int | None,
                line_limit: int) -> Data:
    tail = b"\r\n"               # the 354 reply ended a line: "." first is the end
    size, too_big = 0, False
    lines = _Lines(line_limit)
    while True:
        try:
            piece = await reader.readuntil(END)
            found = True
        except asyncio.LimitOverrunError as exc:
            piece = await reader.read(exc.consumed)   # no end within it; the rest waits
            found = False
        except asyncio.IncompleteReadError:
            sink.drop()
            return Data(None)                          # the client went away
        # the two bytes before the candidate ".<CR><LF>" (never a copy of the piece)
        context = (tail + piece[-5:-3])[-2:] if found else b""
        if found and context == b"\r\n":
            piece = piece[:-3]                         # <CR><LF>.<CR><LF>: the end
        else:
            found = False
        size += len(piece)
        if size_limit and size > size_limit:
            if not too_big:
                sink.drop()                            # drain, but keep nothing
            too_big = True
        elif not too_big:
            lines.feed(piece, tail)
            sink.add(_unstuffed(piece, tail))
        tail = (tail + piece[-2:])[-2:]
        if found:
            break
    if too_big:
        return Data(None, "552 Error: Too much mail data")
    if lines.over():
        sink.drop()
        return Data(None, "500 Line too long (see RFC5321 4.5.3.1.6)")
    return Data(sink.content())   # the buffer itself: a second copy costs the mail's size


def _unstuffed(piece: bytes, tail: bytes) -> bytes:
    """`piece` with the dot that starts each of its lines taken away; `tail`: the two
    bytes received before it (a line may start, or its <CR><LF> end, across pieces)."""
    if tail == b"\r\n" and piece[:1] == b".":
        piece = piece[1:]
    elif tail[-1:] == b"\r" and piece[:2] == b"\n.":
        piece = piece[:1] + piece[2:]
    if b"\r\n." in piece:
        piece = _STUFFED.sub(b"\r\n", piece)
    return piece
