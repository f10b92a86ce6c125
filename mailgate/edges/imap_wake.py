"""Stopping an IMAP fetcher at once, also while it waits in IDLE (blocked in `poll()` on
its socket, where a plain `threading.Event` cannot reach it)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator


class StopEvent(threading.Event):
    """A stop flag that also wakes a thread blocked in `poll()` on its IMAP socket (IDLE):
    setting it writes to a pipe the idle wait polls along with the socket."""

    def __init__(self) -> None:
        super().__init__()
        self._guard = threading.Lock()
        self._wake_fd: int | None = None

    def set(self) -> None:
        super().set()
        with self._guard:
            if self._wake_fd is not None:
                with contextlib.suppress(OSError):      # full pipe: already woken
                    os.write(self._wake_fd, b"x")

    @contextlib.contextmanager
    def wakeup(self) -> Iterator[int]:
        """A file descriptor that becomes readable when the flag is set (for `poll()`)."""
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        with self._guard:
            self._wake_fd = write_fd
        try:
            if self.is_set():             # set before the pipe was there
                os.write(write_fd, b"x")
            yield read_fd
        finally:
            with self._guard:
                self._wake_fd = None
            os.close(read_fd)
            os.close(write_fd)
