"""``osmon run`` as a service (the way ``osmon systemd``'s unit runs it): SIGTERM closes every
resident session and leaves no probe on any host; SIGHUP, or an edit of hosts.toml, reloads
the inventory without a new login for the hosts that did not change."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sshd as harness
from resident_fixtures import kill_all, left_below, probes, wait_for

from collector.store import passlog

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = {"interval_s": 5, "pass_deadline_s": 4, "host_deadline_s": 4, "ssh_timeout_s": 2}


class Service:
    def __init__(self, path: Path) -> None:
        self.passes = path.parent / "data" / "state" / passlog.FILE_NAME
        self.process = subprocess.Popen(
            [sys.executable, "-m", "collector", "--config", str(path), "run", "--no-web"],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)

    def logged(self) -> list[dict[str, object]]:
        if not self.passes.exists():
            return []
        return [json.loads(line) for line in self.passes.read_bytes().splitlines()]

    def wait_passes(self, count: int) -> None:
        wait_for(lambda: len([p for p in self.logged() if p.get("ok") is not None]) >= count,
                 f"{count} passes", timeout=60)


@pytest.fixture
def service_of(logging_sshd: harness.Sshd) -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for service in started:
        if service.process.poll() is None:
            service.process.kill()
        service.process.communicate(timeout=30)
    kill_all(pid for pid, _cmd in left_below(logging_sshd))


def test_sigterm_closes_every_session_and_leaves_no_probe(logging_sshd: harness.Sshd,
                                                          tmp_path: Path,
                                                          service_of: list[Service]) -> None:
    path = logging_sshd.write_hosts_toml(tmp_path / "hosts.toml", ["web1", "web2"],
                                         settings=SETTINGS)
    service = Service(path)
    service_of.append(service)
    service.wait_passes(2)
    assert len(probes(logging_sshd)) == 2
    service.process.send_signal(signal.SIGTERM)
    _out, err = service.process.communicate(timeout=30)
    assert service.process.returncode == 0, err
    wait_for(lambda: not logging_sshd.descendants(), "every session to end", timeout=10)
    assert [p["ok"] for p in service.logged()][:2] == [2, 2]


def test_sighup_or_an_edit_reloads_and_keeps_the_unchanged_sessions(
        logging_sshd: harness.Sshd, tmp_path: Path, service_of: list[Service]) -> None:
    path = logging_sshd.write_hosts_toml(tmp_path / "hosts.toml", ["web1", "web2"],
                                         settings=SETTINGS)
    service = Service(path)
    service_of.append(service)
    service.wait_passes(1)
    before = logging_sshd.logins()
    logging_sshd.write_hosts_toml(path, ["web1", "db1"], settings=SETTINGS)  # web2 goes
    service.process.send_signal(signal.SIGHUP)
    wait_for(lambda: len(probes(logging_sshd)) == 1, "the session of web2 to end")
    wait_for(lambda: service.logged()[-1].get("hosts") == 2 and
             len(probes(logging_sshd)) == 2, "a pass of the new inventory", timeout=30)
    assert logging_sshd.logins() - before == 1  # db1; web1 kept its session
    # No signal this time: an edit alone is seen before the next pass.
    logging_sshd.write_hosts_toml(path, ["web1"], settings=SETTINGS)
    wait_for(lambda: len(probes(logging_sshd)) == 1, "the session of db1 to end", timeout=30)
    assert logging_sshd.logins() - before == 1
    service.process.send_signal(signal.SIGTERM)
    service.process.communicate(timeout=30)
    assert service.process.returncode == 0
