"""Shared fixtures: a real OpenSSH sshd and hostile sockets (see ``tests/sshd.py``).

``sshd``          session-wide running sshd (:class:`sshd.Sshd`); see its docstring.
``refused_port``  a loopback port that refuses connections.
``silent_port``   a loopback port that accepts TCP and never speaks.
``inventory``     ``inventory(names, settings=..., hosts=..., extra=...) -> Config``: writes
                  ``tmp_path/hosts.toml`` whose hosts are aliases of ``sshd`` and loads it.
``logging_sshd``  (module scope) an sshd of its own that logs every login and adopts its
                  sessions' orphans (resident sessions: ``resident_fixtures``).
``session_pool``  an ``osmon run`` session pool, closed after the test, its probes gone.
"""

from __future__ import annotations

import shutil
import signal
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

# tests/ is on sys.path (pytest's rootdir conftest); the harness is shared with the bench.
import sshd as harness

from collector import config as config_mod
from collector.config import Config

# Started in the background (`nohup bash .ci/test &`), a shell leaves SIGINT ignored, and an
# ignored signal stays ignored in every child: `osmon status --watch` would then never see the
# Ctrl-C its tests send.  A handler of ours is reset to the default in children, so every
# program a test starts gets default signal handling, however the suite was started.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def sshd() -> Iterator[harness.Sshd]:
    server = harness.start_sshd()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def refused_port() -> Iterator[int]:
    with harness.refused_port() as port:
        yield port


@pytest.fixture(scope="session")
def silent_port() -> Iterator[int]:
    with harness.silent_port() as port:
        yield port


Inventory = Callable[..., Config]


@pytest.fixture
def inventory(sshd: harness.Sshd, tmp_path: Path) -> Inventory:
    def make(names: Iterable[str] | int, *, settings: Mapping[str, Any] | None = None,
             hosts: Mapping[str, Mapping[str, Any]] | None = None, extra: str = "") -> Config:
        path = sshd.write_hosts_toml(tmp_path / "hosts.toml", names, settings=settings,
                                     hosts=hosts, extra=extra)
        return config_mod.load(path)

    return make


@pytest.fixture(scope="module")
def logging_sshd() -> Iterator[harness.Sshd]:
    with harness.running_sshd(log_level="INFO", subreaper=True) as started:
        yield started


@pytest.fixture
def session_pool(logging_sshd: harness.Sshd) -> Iterator[Any]:
    from resident_fixtures import kill_all, left_below, wait_for

    from collector.passes.sessions import SessionPool

    sessions = SessionPool(config_mod.Settings(Path("."), Path(".")))
    try:
        yield sessions
    finally:
        sessions.close_all()
        try:
            wait_for(lambda: not left_below(logging_sshd), "the probes to end", timeout=15)
        finally:
            kill_all(pid for pid, _cmd in left_below(logging_sshd))  # never leave them running
