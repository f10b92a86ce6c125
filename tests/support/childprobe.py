"""Functions run in a child process by tests/test_children.py (`children.start`)."""

from __future__ import annotations

import os

from mailgate.edges.children import SharedCounter


def counter_and_fds(conn, counter_fd: int) -> None:
    """Report the shared counter as seen here and the files this process has open; add
    one to the counter when asked; stop at end of input."""
    counter = SharedCounter(counter_fd)
    while True:
        try:
            asked = conn.recv()
        except EOFError:
            return
        if asked == "add":
            with counter.get_lock():
                counter.value += 1
        files = sorted(os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
                       if os.path.exists(f"/proc/self/fd/{fd}"))
        conn.send((counter.value, files))


def malloc_arenas(conn) -> None:
    """Report the child's MALLOC_ARENA_MAX."""
    conn.send(os.environ.get("MALLOC_ARENA_MAX"))
