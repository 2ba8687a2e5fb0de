"""Asking the kernel whether a process is gone: shared by the checks tests, local and over SSH."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

#: What a loaded 2-core CI machine may add to a wait that should end at a timeout: tests that
#: prove "killed at its timeout, not after what it asked for" bound the time by the timeout
#: plus this, and make what was asked for (a sleep, a hung server) much longer still.
SLACK_S = 30.0


def is_dead(pid: int) -> bool:
    """Gone, or a zombie waiting for init: either way it runs no more."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    """Poll for a state the kernel reaches (a SIGKILLed process takes a moment to go)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
