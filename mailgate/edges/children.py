"""The processes `serve` starts: each a fresh interpreter that imports only what it runs.

The worker process and the parse workers are started with `subprocess`, not
`multiprocessing`: a fork server (one per process that starts children) and the
resource tracker it insists on are three more interpreters (≈50 MB of resident memory
together), and a child forked from a process that has loaded the whole daemon counts
every page of it again. A fresh interpreter costs ~11 MB and then only its own imports.

A child gets one end of a socket pair as a `multiprocessing.connection.Connection`; the
parent's `sys.path` and then the function to run with its arguments come over it
(pickled), so the child finds the same code as its parent. It inherits no descriptor
but that one and those passed on purpose (no database file, no instance lock).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import importlib
import mmap
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from multiprocessing.connection import Connection

_BOOT = ("import sys\n"
         "from multiprocessing.connection import Connection\n"
         "conn = Connection(int(sys.argv[1]))\n"
         "sys.path[:] = conn.recv()\n"
         "from mailgate.edges.children import run\n"
         "run(conn)\n")


class Child:
    """A started child process, with the part of `multiprocessing.Process` the pools use."""

    def __init__(self, popen: subprocess.Popen) -> None:
        self._popen = popen

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def exitcode(self) -> int | None:
        """None while it runs; its exit status, or minus the signal that ended it."""
        return self._popen.poll()

    def is_alive(self) -> bool:
        return self._popen.poll() is None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self._popen.kill()

    def join(self, timeout: float | None = None) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(timeout)

    def close(self) -> None:
        """Nothing to release beyond the reaped process (kept for the pools' shape)."""


def start(module: str, function: str, args: tuple = (), *,
          pass_fds: tuple[int, ...] = ()) -> tuple[Child, Connection]:
    """Run `module.function(conn, *args)` in a new interpreter; returns the process and
    this side's end of `conn`."""
    ours, theirs = socket.socketpair()
    conn = Connection(ours.detach())
    try:
        with theirs:
            popen = subprocess.Popen(
                [sys.executable, *subprocess._args_from_interpreter_flags(), "-c", _BOOT,
                 str(theirs.fileno())], pass_fds=(theirs.fileno(), *pass_fds),
                stdin=subprocess.DEVNULL, env=child_env(os.environ))
        conn.send(list(sys.path))
        conn.send((module, function, args))
    except BaseException:
        conn.close()
        raise
    return Child(popen), conn


def child_env(env) -> dict[str, str]:
    """The environment of a child: ours, with glibc's malloc held to two arenas unless
    the admin chose otherwise. Each thread that allocates otherwise gets an arena of its
    own (up to eight per core), and freed memory stays scattered over them: the worker's
    threads (processing, reading ahead, sending) held megabytes more than they used."""
    return {"MALLOC_ARENA_MAX": "2", **env}


def run(conn: Connection) -> None:
    """In the child: receive what to run and run it."""
    module, function, args = conn.recv()
    getattr(importlib.import_module(module), function)(conn, *args)


class SharedCounter:
    """An integer in memory shared by the instance's processes (the urgent writers
    waiting for the database, see `store.db.WriteGate`). Reading is a plain load; a
    change is made under `get_lock()`, which excludes the threads of this process and,
    through a POSIX lock on the shared file, the other processes."""

    def __init__(self, fd: int | None = None) -> None:
        if fd is None:
            fd = os.memfd_create("mailgate-shared", os.MFD_CLOEXEC)
            os.ftruncate(fd, mmap.PAGESIZE)
        self.fd = fd
        self._map = mmap.mmap(fd, mmap.PAGESIZE)
        self._int = ctypes.c_int.from_buffer(self._map)
        self._threads = threading.Lock()

    @property
    def value(self) -> int:
        return self._int.value

    @value.setter
    def value(self, new: int) -> None:
        self._int.value = new

    @contextlib.contextmanager
    def get_lock(self) -> Iterator[None]:
        with self._threads:
            fcntl.lockf(self.fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.lockf(self.fd, fcntl.LOCK_UN)
