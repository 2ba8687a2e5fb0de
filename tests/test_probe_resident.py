"""The probe's resident mode (``osmon run``): started by the remote command's fixed bootstrap,
it answers one framed JSON document per request line until its input ends, keeps the process
counters itself, and polices its own time once the start-up watchdog has let go.

Run here as a child process in a session of its own (as sshd starts it), through the very
bootstrap string the remote command carries."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.passes import probe_call
from remote_probe import probe

ROOT = Path(__file__).resolve().parent.parent


class Resident:
    """A resident probe fed through the bootstrap, as the remote command starts it."""

    def __init__(self) -> None:
        argv = [sys.executable, "-I", "-S", "-c", probe_call.RESIDENT_BOOTSTRAP,
                probe.RESIDENT_NAME]
        self.process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True)
        source = probe_call.load_probe()
        self.send(str(len(source)).encode() + b"\n" + source)

    def send(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def ask(self, request_id: int, params: dict[str, Any] | None = None,
            **extra: Any) -> dict[str, Any]:
        request = {"id": request_id, "params": {"cpu_sample_s": 0, **(params or {})},
                   "limit_s": 30, "idle_s": 60, **extra}
        self.send(json.dumps(request).encode() + b"\n")
        return self.answer(request_id)

    def answer(self, request_id: int) -> dict[str, Any]:
        assert self.process.stdout is not None
        head = self.process.stdout.readline(64).split()
        assert head[:2] == [b"osmon", str(request_id).encode()], head
        body = self.process.stdout.read(int(head[2]))
        assert len(body) == int(head[2])
        return json.loads(body)

    def wait(self, timeout: float = 30) -> int:
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def resident() -> Iterator[Resident]:
    started = Resident()
    try:
        yield started
    finally:
        started.stop()


def test_answers_request_after_request_and_ends_at_end_of_input(resident: Resident) -> None:
    first = resident.ask(1, counters=True)
    assert first["probe"] == 1 and "counters" in first["processes"]
    time.sleep(0.05)  # /proc/uptime moves in hundredths of a second
    second = resident.ask(2)
    # The probe kept the first request's counters: CPU over the interval, nothing sent back.
    assert second["processes"]["cpu_basis"] == "interval"
    assert "counters" not in second["processes"]
    assert {"cpu", "memory", "disks", "net"} <= set(second)
    time.sleep(0.05)
    third = resident.ask(3, counters=True)["processes"]  # asked again: this scan's counters
    assert third["cpu_basis"] == "interval"
    assert third["counters"]["uptime"] > first["processes"]["counters"]["uptime"]
    assert str(resident.process.pid) in third["counters"]["ticks"]
    assert resident.process.stdin is not None
    resident.process.stdin.close()
    assert resident.wait() == 0


def test_counters_sent_by_the_collector_win_over_its_own(resident: Resident) -> None:
    """A new session's first request carries the state file's counters (proc_prev)."""
    kept = resident.ask(1, counters=True)["processes"]["counters"]
    stale = dict(kept, uptime=kept["uptime"] + 10 ** 6)  # "newer" than now: unusable
    time.sleep(0.05)
    assert resident.ask(2, {"proc_prev": stale})["processes"]["cpu_basis"] == "lifetime"



def test_a_resident_probe_judges_its_own_previous_scan_as_it_judges_counters() -> None:
    """cpu_since_scan, the resident's way, gives the percents process_cpu_percent gives from
    the same readings as counters: an idle process, one that worked, a pid reused (another
    start time), a new one, a counter that went back, another boot, no uptime."""
    before = {1: ("a", 50, 10, 1), 2: ("b", 100, 20, 1), 3: ("c", 7, 30, 1),
              5: ("e", 90, 50, 1)}
    now = {1: before[1], 2: ("b", 160, 20, 1), 3: ("c2", 9, 300, 1), 4: ("d", 40, 400, 1),
           5: ("e", 80, 50, 1)}
    counters = probe.counter_map(before)
    assert counters.to_json() == ('{"1":[10,50],"2":[20,100],"3":[30,7],'
                                  '"5":[50,90]}')

    def readings(scan: dict[int, tuple]) -> list[tuple[int, int, int]]:
        return [(pid, info[2], info[1]) for pid, info in scan.items()]

    for uptime, prev_uptime, boot, prev_boot in ((100.0, 90.0, "x", "x"), (100.0, 90.0, "x", "y"),
                                                 (100.0, 90.0, None, "y"), (80.0, 90.0, "x", "x"),
                                                 (None, 90.0, "x", "x")):
        prev = {"uptime": prev_uptime, "boot_id": prev_boot, "ticks": counters}
        expected, _, usable = probe.process_cpu_percent(readings(now), uptime, prev, 100, boot)
        assert probe.cpu_since_scan(now, uptime, boot, (prev_uptime, prev_boot, before),
                                    100) == (expected, usable)
    judged, usable = probe.cpu_since_scan(now, 100.0, "x", (90.0, "x", before), 100)
    assert usable and judged[1] == 0.0 and judged[2] == 6.0  # 60 ticks over 10 s of 100 Hz


def _stat_files_open(pid: int) -> set[str]:
    """The /proc/<pid>/stat files the process ``pid`` holds open."""
    held = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("/proc/") and target.endswith("/stat"):
            held.add(target)
    return held


def test_kept_stat_files_follow_processes_that_come_and_go(resident: Resident) -> None:
    """The resident probe keeps each process's /proc/<pid>/stat open between requests and reads
    it again: a busy process is measured afresh each time, and once it exits its file is
    closed (a kept file is never read for another process that got its pid)."""
    resident.ask(1)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)
        resident.ask(2)
        assert f"/proc/{busy.pid}/stat" in _stat_files_open(resident.process.pid)
        time.sleep(0.5)
        third = resident.ask(3)
        top = {p["pid"]: p["cpu_percent"] for p in third["processes"]["top_cpu"]}
        assert top.get(busy.pid, 0) > 50  # busy for the whole interval: read afresh
    finally:
        busy.kill()
        busy.wait()
    fourth = resident.ask(4)
    assert busy.pid not in {p["pid"] for p in fourth["processes"]["top_cpu"]}
    assert f"/proc/{busy.pid}/stat" not in _stat_files_open(resident.process.pid)


def test_kept_stat_files_stay_under_their_limit(tmp_path: Path) -> None:
    """Beyond its limit the probe reads the other processes' files as before, without
    keeping them: the checks and its own reads always have descriptors left.  A kept file is
    read afresh each time."""
    def write_stat(pid: int, utime: int) -> None:
        (tmp_path / str(pid) / "stat").write_text(f"{pid} (p{pid}) S 1 1 1 0 -1 0 0 0 0 0 "
                                                   f"{utime} 7 0 0 20 0 1 0 100 0 42\n")

    for pid in (11, 12, 13):
        (tmp_path / str(pid)).mkdir()
        write_stat(pid, 5)
    files = probe.PidStatFiles(limit=2)
    ctx = probe.Context(probe.parse_params(json.dumps({"proc_root": str(tmp_path)}))[0])
    ctx.pid_files = files
    for _ in range(2):
        found = probe.scan_processes(ctx, [11, 12, 13])
        assert {pid: info[1] for pid, info in found.items()} == {11: 12, 12: 12, 13: 12}
        assert len(files.fds) == 2
    probe.scan_processes(ctx, [11, 13])  # 12 is gone from /proc: its kept file is closed
    assert sorted(files.fds) == [11]
    probe.scan_processes(ctx, [11, 13])  # which leaves room for 13's
    assert sorted(files.fds) == [11, 13]
    write_stat(11, 30)  # a kept file that reads otherwise than last time is parsed again
    assert probe.scan_processes(ctx, [11, 13])[11][1] == 37

def test_a_line_that_is_no_request_ends_the_probe(resident: Resident) -> None:
    resident.ask(1)
    resident.send(b"GET / HTTP/1.0\n")
    assert resident.wait() == 2
    assert resident.process.stderr is not None
    assert b"not a request" in resident.process.stderr.read()


def test_a_request_over_its_time_limit_ends_the_probe(resident: Resident) -> None:
    """SIGALRM, armed with the request's ``limit_s``, ends a probe stuck in its work."""
    check = {"name": "stuck", "command": ["/bin/sleep", "30"], "timeout_s": 25,
             "max_output": 1024}
    started = time.monotonic()
    resident.send(json.dumps({"id": 1, "params": {"cpu_sample_s": 0, "checks": [check]},
                              "limit_s": 1, "idle_s": 60}).encode() + b"\n")
    assert resident.wait() == -signal.SIGALRM
    assert time.monotonic() - started < 10


def test_a_probe_left_idle_ends_by_itself(resident: Resident) -> None:
    """The collector vanished without closing the connection: the wait is bounded too."""
    resident.ask(1, idle_s=1)
    started = time.monotonic()
    assert resident.wait() == -signal.SIGALRM
    assert time.monotonic() - started < 10


def test_serving_stops_and_reaps_the_start_up_watchdog() -> None:
    """The watchdog is the probe's child, its pid the argument after the probe's name: once
    the probe serves, the watchdog has been stopped and reaped (no zombie beside the probe);
    a pid that is no child of the probe's is never signalled."""
    stranger = subprocess.Popen(["sleep", "60"])
    argv = [sys.executable, "-I", "-S", "-c",
            "import subprocess, sys; w = subprocess.Popen(['sleep', '60']); "
            "sys.argv[2:] = [str(w.pid)]; print(w.pid, flush=True); "
            + probe_call.RESIDENT_BOOTSTRAP, probe.RESIDENT_NAME]
    started = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
    try:
        assert started.stdout is not None and started.stdin is not None
        watchdog = int(started.stdout.readline())
        source = probe_call.load_probe()
        started.stdin.write(str(len(source)).encode() + b"\n" + source
                            + b'{"id": 1, "params": {"cpu_sample_s": 0}}\n')
        started.stdin.flush()
        assert started.stdout.readline().split()[:2] == [b"osmon", b"1"]
        assert not Path(f"/proc/{watchdog}").exists()  # ended and reaped: not even a zombie
    finally:
        started.kill()
        started.communicate(timeout=10)
    stray = subprocess.Popen([sys.executable, "-I", "-S", "-c", probe_call.RESIDENT_BOOTSTRAP,
                              probe.RESIDENT_NAME, str(stranger.pid)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, _ = stray.communicate(str(len(source)).encode() + b"\n" + source
                                   + b'{"id": 2, "params": {"cpu_sample_s": 0}}\n', 60)
        assert out.split()[:2] == [b"osmon", b"2"]
        assert stranger.poll() is None  # not its child: left alone
    finally:
        stranger.kill()
        stranger.wait(10)


def test_a_thread_stuck_in_the_kernel_ends_the_probe_after_its_answer() -> None:
    """A hung statvfs thread cannot be stopped: the answer goes out, then the process ends,
    and the collector opens a fresh one next pass."""
    resident = probe.Resident()
    request = probe.parse_request(json.dumps({"id": 4, "params": {"cpu_sample_s": 0}}).encode())
    document, must_end = resident.answer(request)
    assert json.loads(document)["probe"] == 1 and must_end is False
    assert resident.last_scan is not None and "counters" not in json.loads(document)["processes"]


@pytest.mark.parametrize("line", [b"[]", b'{"id": -1}', b'{"id": "1"}', b"\xff"])
def test_parse_request_refuses_what_is_no_request(line: bytes) -> None:
    with pytest.raises(ValueError):
        probe.parse_request(line)


def test_parse_request_clamps_limits() -> None:
    request = probe.parse_request(b'{"id": 3, "limit_s": 1e9, "idle_s": -5, "params": 7}')
    assert request == {"id": 3, "params": None, "limit_s": probe.RESIDENT_LIMIT_S[1],
                       "idle_s": probe.RESIDENT_IDLE_S[0], "counters": False}
