"""Helpers of the tests of ``osmon run``'s resident sessions; their fixtures (``logging_sshd``:
a private sshd that logs every login and adopts its sessions' orphans, so a test counts
logins and sees every process a session left running below it; ``session_pool``: closed
after each test, its probes gone) are in conftest.py."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import sshd as harness

from collector import config as config_mod
from collector.config import Config
from collector.passes import collect
from collector.passes.sessions import SessionPool

#: Short steps, so the failure cases end quickly; roomy pass deadline.
SETTINGS = {"ssh_timeout_s": 3, "host_deadline_s": 6, "pass_deadline_s": 25,
            "interval_s": 30}


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    """Poll for a state another process reaches (never a sleep standing in for time)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def probes(server: harness.Sshd) -> list[int]:
    """Resident probe processes below ``server``."""
    return [pid for pid, cmd in server.descendants()
            if "osmon-resident" in cmd and not cmd.startswith(("sh ", "sshd"))]


def left_below(server: harness.Sshd) -> list[tuple[int, str]]:
    """Everything below the sshd but its own session processes."""
    return [(pid, cmd) for pid, cmd in server.descendants() if not cmd.startswith("sshd")]


def kill_all(pids: Iterable[int], signum: int = signal.SIGKILL) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def inventory(server: harness.Sshd, tmp_path: Path, names: list[str] | int,
              settings: dict[str, Any] | None = None,
              hosts: dict[str, dict[str, Any]] | None = None, extra: str = "") -> Config:
    path = server.write_hosts_toml(tmp_path / "hosts.toml", names,
                                   settings={**SETTINGS, **(settings or {})}, hosts=hosts,
                                   extra=extra)
    return config_mod.load(path)


def run(config: Config, pool: SessionPool, passes: int = 1) -> list[collect.PassResult]:
    return [collect.run_pass(config, sessions=pool) for _ in range(passes)]


def kinds(result: collect.PassResult) -> dict[str, str | None]:
    """Each host's error kind (None when it answered)."""
    return {o.host: (o.error or {}).get("kind") for o in result.outcomes}
