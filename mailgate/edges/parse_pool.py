"""Parsing off the event loop, in worker processes that can be killed.

A hostile mail may make a parser spin, recurse or eat memory. Threads cannot be
stopped, so the daemon parses in a few worker processes with a memory cap. A worker
that overruns its time is killed and replaced, and the mail is rejected: the time limit
is a limit like the MIME ones, so the mail is quarantined on its first attempt instead
of holding a worker for the whole timeout again at every retry. A worker that dies or
runs out of memory is reported as crashed (the pipeline retries, then quarantines).
`InlineParser` does the same work in the calling process for one-shot CLI commands.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import resource
import struct
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from mailgate.edges import children
from mailgate.mail.mimecheck import Limits, ParseCrashed, ParseRejected
from mailgate.mail.parsing import ParsedMail, parse_mail
from mailgate.mail.pieces import Pieces


class InlineParser:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits

    def parse(self, raw: bytes | Pieces) -> ParsedMail:
        try:
            return parse_mail(raw.whole() if isinstance(raw, Pieces) else raw, self.limits)
        except ParseRejected:
            raise
        except RecursionError:
            raise ParseRejected("MIME structure nested too deeply to parse") from None
        except Exception as exc:
            raise ParseCrashed(f"{type(exc).__name__}: {exc}") from exc

    def parse_many(self, raws: Sequence[bytes | Pieces]) -> list[ParsedMail | Exception]:
        return [_outcome(self.parse, raw) for raw in raws]

    def close(self) -> None:
        pass


PIECE = 1 << 20
_SIZE = struct.Struct("!Q")


def _send_raw(conn, raw: bytes | Pieces) -> None:
    """A mail to a parse worker: its size, then its bytes in one message, or a large
    one in pieces of at most PIECE bytes (so neither side holds it twice)."""
    size = raw.size if isinstance(raw, Pieces) else len(raw)
    conn.send_bytes(_SIZE.pack(size))
    if size <= PIECE:
        conn.send_bytes(raw.whole() if isinstance(raw, Pieces) else raw)
        return
    if isinstance(raw, Pieces):
        pieces = raw.read()
    else:
        view = memoryview(raw)
        pieces = (view[at:at + PIECE] for at in range(0, size, PIECE))
    sent = 0
    for piece in pieces:
        if len(piece) > PIECE or sent + len(piece) > size:
            raise ValueError("a stored piece does not fit the mail's size")
        conn.send_bytes(piece)
        sent += len(piece)
    if sent != size:
        raise ValueError(f"the stored mail has {sent} of its {size} bytes")


def _receive_raw(conn) -> bytes | bytearray:
    size = _SIZE.unpack(conn.recv_bytes(_SIZE.size))[0]
    if size <= PIECE:
        return conn.recv_bytes()
    raw, at = bytearray(size), 0          # filled in place: never grown, never copied
    while at < size:
        at += conn.recv_bytes_into(raw, at)
    return raw


def _outcome(parse, raw: bytes) -> ParsedMail | Exception:
    try:
        return parse(raw)
    except (ParseRejected, ParseCrashed) as exc:
        return exc


def name_process(name: str) -> None:
    """Show `name` (15 bytes at most) for this process in ps and top (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, name.encode()[:15], 0, 0, 0)   # PR_SET_NAME


def lower_priority(steps: int) -> None:
    """Run this process, and the processes it starts, `steps` of niceness lower."""
    if steps > 0:
        with contextlib.suppress(OSError):
            os.nice(steps)


def _worker_main(conn, limits: Limits, memory_mb: int) -> None:
    name_process("mailgate-parse")
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    while True:
        try:
            raw = _receive_raw(conn)
        except (EOFError, OSError):
            return
        try:
            result = ("ok", parse_mail(raw, limits))
            del raw          # the parsed mail is all that is sent back
        except ParseRejected as exc:
            result = ("rejected", str(exc))
        except RecursionError:
            result = ("rejected", "MIME structure nested too deeply to parse")
        except MemoryError:
            result = ("crashed", f"parser ran out of memory (limit {memory_mb} MB)")
        except Exception as exc:
            result = ("crashed", f"{type(exc).__name__}: {exc}")
        try:
            _send_result(conn, *result)
        except (OSError, ValueError, MemoryError) as exc:
            conn.send(("crashed", f"could not return the parsed mail: {exc}", ()))
        del result


def _send_result(conn, status: str, value) -> None:
    """The outcome, and a parsed mail's file contents as byte messages of their own after
    it: never pickled, so neither process holds a second copy of a large file."""
    if status != "ok" or not value.attachments:
        conn.send((status, value, ()))
        return
    files = [a.data for a in value.attachments]
    bare = replace(value, attachments=tuple(replace(a, data=b"") for a in value.attachments))
    conn.send((status, bare, tuple(len(d) for d in files)))
    for data in files:
        conn.send_bytes(data)


def _receive_result(conn) -> tuple[str, object]:
    status, value, sizes = conn.recv()
    if sizes:
        files = [conn.recv_bytes() for _ in sizes]
        value = replace(value, attachments=tuple(
            replace(a, data=d) for a, d in zip(value.attachments, files, strict=True)))
    return status, value


@dataclass
class _Worker:
    process: children.Child
    conn: object


class ParsePool:
    def __init__(self, workers: int, limits: Limits, *, timeout: float, memory_mb: int) -> None:
        self.size = max(1, workers)
        self.limits = limits
        self.timeout = timeout
        self.memory_mb = memory_mb
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        self._feeders = ThreadPoolExecutor(self.size, thread_name_prefix="mailgate-parse")

    def start(self) -> None:
        for _ in range(self.size):
            self._idle.put(self._spawn())

    def _spawn(self) -> _Worker:
        # a fresh interpreter that imports only the parsing code (see `children`)
        proc, parent = children.start(__name__, "_worker_main", (self.limits, self.memory_mb))
        worker = _Worker(proc, parent)
        with self._lock:
            self._all.append(worker)
        return worker

    def _retire(self, worker: _Worker) -> None:
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(5)
        worker.conn.close()
        worker.process.close()
        with self._lock:
            self._all.remove(worker)

    def parse(self, raw: bytes | Pieces) -> ParsedMail:
        worker = self._idle.get()
        healthy = False
        try:
            try:
                _send_raw(worker.conn, raw)
            except (EOFError, OSError):
                raise
            except Exception as exc:   # the store could not give the bytes: try later
                raise ParseCrashed(f"could not read the stored mail: "
                                   f"{type(exc).__name__}: {exc}"[:300]) from exc
            if not worker.conn.poll(self.timeout):
                raise ParseRejected(f"parsing took longer than {self.timeout:g} s "
                                    "([processing] parse_timeout_seconds)")
            status, value = _receive_result(worker.conn)
            healthy = True
        except (EOFError, OSError) as exc:
            code = worker.process.exitcode
            raise ParseCrashed(f"parser process died (exit code {code})") from exc
        finally:
            if healthy:
                self._idle.put(worker)
            else:
                self._retire(worker)
                if not self._closed:
                    self._idle.put(self._spawn())
        if status == "ok":
            return value
        if status == "rejected":
            raise ParseRejected(value)
        raise ParseCrashed(value)

    def parse_many(self, raws: Sequence[bytes | Pieces]) -> list[ParsedMail | Exception]:
        """Parse several mails at once, every worker busy; results in the given order
        (a ParsedMail, or the ParseRejected / ParseCrashed for that mail)."""
        if len(raws) <= 1:
            return [_outcome(self.parse, raw) for raw in raws]
        return list(self._feeders.map(lambda raw: _outcome(self.parse, raw), raws))

    def close(self) -> None:
        self._closed = True
        self._feeders.shutdown(wait=True)
        with self._lock:
            workers = list(self._all)
        for worker in workers:
            self._retire(worker)
