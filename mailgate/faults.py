"""Fault injection points for tests: explicit, named, and off unless asked for.

`MAILGATE_FAULTS="spool.after_commit=kill,pipeline.before_commit=raise"` arms points
in a process. Actions: `kill` (SIGKILL this process: a crash with no clean-up),
`raise` (an exception), `sleep:SECONDS`, each optionally `once`
(`raise-once`). Production code calls `hit(name)` at the few places where a crash
must not lose or duplicate mail; with nothing armed a hit costs one dict lookup.
"""

from __future__ import annotations

import os
import signal
import threading
import time

ENV = "MAILGATE_FAULTS"


class FaultInjected(RuntimeError):
    pass


_lock = threading.Lock()
_armed: dict[str, str] = {}


def arm(spec: str) -> None:
    """Arm points from a spec string (replaces what was armed)."""
    with _lock:
        _armed.clear()
        for item in filter(None, (s.strip() for s in spec.split(","))):
            name, _, action = item.partition("=")
            _armed[name.strip()] = action.strip() or "raise"


def spec() -> str:
    """What is armed in this process, as a spec another process can `arm`."""
    with _lock:
        return ",".join(f"{name}={action}" for name, action in _armed.items())


def hit(name: str) -> None:
    if not _armed:
        return
    with _lock:
        action = _armed.get(name)
        if action is None:
            return
        if action.endswith("-once"):
            del _armed[name]
            action = action[: -len("-once")]
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action.startswith("sleep:"):
        time.sleep(float(action.split(":", 1)[1]))
    else:
        raise FaultInjected(f"fault injected at {name}")


arm(os.environ.get(ENV, ""))
