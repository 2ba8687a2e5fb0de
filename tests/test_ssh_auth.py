"""Which key osmon logs in with when a host names none: ~/.ssh/id_* and ssh-agent, as ``ssh``
would; and a key it cannot use is an ``auth`` error that says what to do."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sshd as harness

from collector.config import Config
from collector.passes import collect

NOW = datetime(2026, 11, 21, 22, 41, 0, tzinfo=timezone.utc)
Inventory = Callable[..., Config]


@pytest.fixture
def clean_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME without keys or ssh config, and no agent, so only what a test adds is there."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return home


@pytest.fixture
def agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A real ssh-agent on a socket in tmp_path, exported as SSH_AUTH_SOCK.

    Without -D, ssh-agent binds its socket before it forks and the parent exits: once
    ``ssh-agent -s`` returns the socket is there, no waiting needed.
    """
    sock = tmp_path / "agent.sock"
    started = subprocess.run(["ssh-agent", "-s", "-a", str(sock)], capture_output=True,
                             text=True, timeout=30, check=True)
    pid = int(re.search(r"SSH_AGENT_PID=(\d+)", started.stdout).group(1))  # type: ignore
    monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
    try:
        yield sock
    finally:
        os.kill(pid, signal.SIGTERM)


def without_identity(inventory: Inventory, names: list[str]) -> Config:
    return inventory(names, hosts={n: {"identity_file": ""} for n in names})


def test_default_key_file_is_used_when_the_host_names_none(
        clean_home: Path, inventory: Inventory, sshd: harness.Sshd) -> None:
    shutil.copy(sshd.client_key_path, clean_home / ".ssh" / "id_ed25519")
    (clean_home / ".ssh" / "id_ed25519").chmod(0o600)
    config = without_identity(inventory, ["web1"])
    assert config.hosts[0].identity_file is None
    assert collect.run_pass(config, now=NOW).ok == 1


def test_no_key_anywhere_says_so(clean_home: Path, inventory: Inventory) -> None:
    config = without_identity(inventory, ["web1"])
    result = collect.run_pass(config, now=NOW)
    assert result.outcomes[0].error == {
        "kind": "auth",
        "message": "no key to try: set identity_file for this host (or load a key into "
                   "ssh-agent)"}


def test_ssh_agent_key_is_used(clean_home: Path, agent: Path, inventory: Inventory,
                               sshd: harness.Sshd) -> None:
    added = subprocess.run(["ssh-add", str(sshd.client_key_path)], capture_output=True,
                           text=True, timeout=30, env={**os.environ, "SSH_AUTH_SOCK": str(agent)})
    assert added.returncode == 0, added.stderr
    config = without_identity(inventory, ["web1", "web2"])
    assert collect.run_pass(config, now=NOW).ok == 2


def test_key_with_a_passphrase_is_auth_with_advice(tmp_path: Path, inventory: Inventory) -> None:
    key = tmp_path / "locked"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "s3cret", "-f", str(key)],
                   check=True, timeout=30)
    config = inventory(["web1"], hosts={"web1": {"identity_file": str(key)}})
    result = collect.run_pass(config, now=NOW)
    assert result.outcomes[0].error == {
        "kind": "auth",
        "message": f"identity file {key} needs a passphrase; use a key without one for "
                   f"monitoring (cron has no ssh-agent)"}
