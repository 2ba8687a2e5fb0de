"""Live: per-process CPU percent over the interval between two real passes, local and SSH.

A child started by the test idles from before the first pass, then spins; the second pass
must report it near what it really used over the interval (about one core), not its
lifetime average. The only sleeps are the idle and busy stretches themselves.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import psutil
import pytest

from collector.config import Config
from collector.passes import collect

NOW = datetime(2026, 11, 21, 22, 41, 0, tzinfo=timezone.utc)
SPIN = "import sys\nsys.stdin.readline()\nwhile True:\n    pass\n"


@pytest.fixture
def idle_child() -> Iterator[subprocess.Popen[bytes]]:
    """A process that sleeps on stdin until told to spin (one line), killed at the end."""
    child = subprocess.Popen([sys.executable, "-c", SPIN], stdin=subprocess.PIPE)
    try:
        yield child
    finally:
        child.kill()
        child.wait(10)
        if child.stdin is not None:
            child.stdin.close()


def lines(config: Config, host: str) -> list[dict]:
    return [json.loads(line) for path in sorted(
        (config.settings.data_dir / "hosts" / host).glob("*.jsonl"))
        for line in path.read_bytes().splitlines()]


def test_a_process_busy_since_the_last_pass_shows_its_interval_percent(
        inventory: Callable[..., Config], idle_child: subprocess.Popen[bytes]) -> None:
    config = inventory(["central", "web1"], hosts={"central": {"local": True}})
    time.sleep(1.5)  # idle long enough that its lifetime average would be far off
    first = collect.run_pass(config, now=NOW)
    assert first.failed == 0, [o.describe() for o in first.outcomes]
    assert idle_child.stdin is not None
    idle_child.stdin.write(b"spin\n")
    idle_child.stdin.flush()
    time.sleep(2.0)
    second = collect.run_pass(config, now=NOW.replace(second=30))
    assert second.failed == 0, [o.describe() for o in second.outcomes]
    child = psutil.Process(idle_child.pid)
    used = sum(child.cpu_times()[:2])  # a little more than at the readings: an upper bound
    for host in ("central", "web1"):
        before, after = lines(config, host)
        assert after["processes"]["cpu_basis"] == "interval", host
        seconds = after["collect"]["epoch"] - before["collect"]["epoch"]
        entry = next(p for p in after["processes"]["top"] if p["pid"] == idle_child.pid)
        interval = used / seconds * 100
        lifetime = used / (after["collect"]["epoch"] - child.create_time()) * 100
        assert entry["cpu_percent"] >= 50, (host, entry, interval)  # about a core, if it got one
        assert abs(entry["cpu_percent"] - interval) <= 15, (host, entry, interval)
        assert entry["cpu_percent"] >= lifetime + 10, (host, entry, lifetime)
        assert "counters" not in before["processes"] and "counters" not in after["processes"]
        assert all('"counters":' not in path.read_text() for path in
                   (config.settings.data_dir / "hosts" / host).glob("*.jsonl"))
        state = Path(config.state_dir / "proc-counters" / f"{host}.json")
        assert str(idle_child.pid) in json.loads(state.read_text())["counters"]["ticks"]
