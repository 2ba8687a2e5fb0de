"""A pass against a hostile machine of its own: a full or nearly full data directory (a real
tmpfs), a pass killed with SIGKILL, a host's worker that outlives the pass.  Nothing may be
lost silently, left torn, or written without the lock."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sshd as harness
from fs_fixtures import fill, small_tmpfs

from collector import config as config_mod
from collector.config import Config
from collector.passes import collect
from collector.store import passlog
from collector.store.lock import DataLock

ROOT = Path(__file__).resolve().parent.parent
Inventory = Callable[..., Config]


def osmon(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``osmon ARGS`` in a child process, not on a terminal (as under cron)."""
    return subprocess.run([sys.executable, "-m", "collector", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def banner(config: Config, opening: str) -> str:
    """The dashboard banner that starts with ``opening``, shown (not hidden), as text."""
    from web import create_app

    html = create_app(config).test_client().get("/").get_data(as_text=True)
    start = html.index(opening)
    tag = html.rindex("<div", 0, start)
    assert " hidden" not in html[tag:html.index(">", tag)], "the banner is hidden"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html[start:html.index("</div>", start)]))


def day_files(data: Path) -> list[Path]:
    return sorted((data / "hosts").glob("*/*.jsonl"))


# -- item 1: a data directory with no room at all ----------------------------------------------
def test_a_full_data_directory_is_said_plainly_exits_2_and_is_recorded(
        inventory: Inventory, tmp_path: Path) -> None:
    config = inventory(["central", "web1"], hosts={"central": {"local": True}})
    data = config.settings.data_dir
    with small_tmpfs(data, 1024):
        first = osmon("--config", str(config.path), "collect")
        assert first.returncode == 0, first.stderr
        before = {p: p.read_bytes() for p in day_files(data)}
        fill(data)
        result = osmon("--config", str(config.path), "collect")
        last = passlog.last_pass(config.state_dir)
        status = osmon("--config", str(config.path), "status")
        assert {p: p.read_bytes() for p in day_files(data)} == before
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"osmon collect: the data directory {data} is full (0 B free)")
    # The pass log's last page still had room: the failure is there for the dashboard.
    assert last is not None and "is full" in last["problem"]
    assert "collector: failing" in status.stdout.splitlines()[0]


# -- item 2: room for the lock, not for the samples --------------------------------------------
def test_a_nearly_full_data_directory_fails_the_pass_not_the_hosts_and_tears_nothing(
        inventory: Inventory, tmp_path: Path) -> None:
    config = inventory(["central", "web1"], hosts={"central": {"local": True}})
    data = config.settings.data_dir
    with small_tmpfs(data, 1024):
        # The lock file, the pass marker and the pass log need a page each; the samples (tens
        # of KiB each) find only the slack of one more.
        (data / "state").mkdir(parents=True)
        passlog.record(config.state_dir, {"ts": "2026-11-21T22:40:00Z", "hosts": 2, "ok": 2,
                                          "failed": 0, "skipped": False, "duration_s": 1.0})
        filler = fill(data, leave_bytes=3 * 4096)
        result = osmon("--config", str(config.path), "collect")
        status = osmon("--config", str(config.path), "status")
        status_json = json.loads(osmon("--config", str(config.path), "status", "--json").stdout)
        torn = {p.name: p.read_bytes()[-1:] for p in day_files(data) if p.stat().st_size}
        last = passlog.last_pass(config.state_dir)

        assert result.returncode == 1, result.stderr
        assert "the pass ran but could not store 2 of 2 samples: the data directory" in \
            result.stderr
        assert result.stdout == ""  # the hosts did not fail: no host line for cron
        assert last is not None and (last["ok"], last["failed"], last["unstored"]) == (2, 0, 2)
        assert "is full" in last["problem"]
        assert "collector: failing" in status.stdout.splitlines()[0]
        assert "could not store 2 of 2 samples" in status_json["collector"]["problem"]
        assert all(end == b"\n" for end in torn.values()), torn  # no fragment of ours left
        page = banner(config, "The last collection pass failed:")
        assert "could not store 2 of 2 samples: the data directory [hidden] is full" in page

        # Space comes back: the next pass stores whole lines, and nothing is torn.
        filler.unlink()
        again = osmon("--config", str(config.path), "collect")
        assert again.returncode == 0, again.stderr
        for path in day_files(data):
            lines = path.read_bytes().split(b"\n")
            assert lines[-1] == b""
            assert all(json.loads(line)["ok"] is True for line in lines[:-1])
        status = osmon("--config", str(config.path), "status")
        assert status.stdout.startswith("collector: ok")


def test_hooks_never_judge_a_sample_that_was_not_stored(
        inventory: Inventory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The alert rules must not advance on a sample no reader will ever see."""
    seen: list[dict[str, Any]] = []

    def record(_config: Config, _store: Any, samples: dict[str, Any], *_rest: Any) -> None:
        seen.append(samples)

    module = type(sys)("osmon_test_fault_hooks")
    module.record = record  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "osmon_test_fault_hooks", module)
    monkeypatch.setattr(collect, "POST_PASS_HOOKS", ("osmon_test_fault_hooks:record",))
    config = inventory(["central"], hosts={"central": {"local": True}})
    data = config.settings.data_dir
    with small_tmpfs(data, 1024):
        fill(data, leave_bytes=2 * 4096)
        result = collect.run_pass(config)
    assert result.unstored == ("central",) and result.ok == 1
    assert seen == [{}]


# -- item 3: a pass killed with SIGKILL --------------------------------------------------------
def test_a_pass_killed_with_sigkill_is_logged_as_interrupted_by_the_next(
        sshd: harness.Sshd, tmp_path: Path) -> None:
    gate = sshd.workdir / f"never-{tmp_path.name}"
    slow = sshd.script(f"slow-{tmp_path.name}.sh",
                       f"cat >/dev/null\nfor i in $(seq 1200); do [ -e {gate} ] && break; "
                       f"sleep 0.05; done\n")
    path = sshd.write_hosts_toml(tmp_path / "hosts.toml", ["slow"],
                                 hosts={"slow": {"python": str(slow)}})
    victim = subprocess.Popen([sys.executable, "-m", "collector", "--config", str(path),
                               "collect"], cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    state = tmp_path / "data" / "state"
    try:
        wait_for(lambda: (state / passlog.MARKER_NAME).exists(), "the pass to start")
    finally:
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(60)
    gate.touch()
    config = config_mod.load(sshd.write_hosts_toml(tmp_path / "hosts.toml", ["slow"]))
    result = osmon("--config", str(config.path), "collect")
    assert result.returncode == 0, result.stderr
    assert f"(pid {victim.pid}) was interrupted before it finished" in result.stderr
    lines = [json.loads(line) for line in (state / passlog.FILE_NAME).read_bytes().splitlines()]
    killed, after = lines[-2], lines[-1]
    assert killed["interrupted"] is True and killed["hosts"] == 1
    assert after["after_interrupted"] == killed["ts"] and "problem" not in after
    status = osmon("--config", str(config.path), "status")
    assert f"after an interrupted pass (started {killed['ts'][:10]}" in status.stdout
    assert "was interrupted before it finished" in banner(config, "The collection pass started")
    assert not (state / passlog.MARKER_NAME).exists()
    # Logged once: the pass after that has nothing to report.
    assert "interrupted" not in osmon("--config", str(config.path), "collect").stderr


# -- item 6: a host's worker that outlives the pass --------------------------------------------
def test_an_abandoned_worker_never_writes_after_the_pass_released_its_lock(
        inventory: Inventory, tmp_path: Path) -> None:
    """The local host cannot be aborted like a socket: its worker finishes long after the
    pass deadline, while a backup may hold the lock.  It must drop its process counters."""
    config = inventory(
        ["central"], settings={"pass_deadline_s": 1.5},
        hosts={"central": {"local": True}},
        extra='[[checks]]\nname = "slow"\ncommand = ["/bin/sleep", "3"]\ntimeout_s = 10\n')
    result = collect.run_pass(config)
    assert result.outcomes[0].error["kind"] == "timeout"
    counters = config.state_dir / "proc-counters" / "central.json"
    with DataLock(config.settings.data_dir, "backup"):
        wait_for(lambda: not any(t.name == "osmon-central" for t in threading.enumerate()),
                 "the abandoned worker to end", timeout=30)
        assert not counters.exists()
