"""The probe against captured /proc trees (tests/fixtures/proc/<case>/), node_exporter style.

Each case directory holds the /proc files the probe reads (proc_root = the case directory),
`sysfs/` (sys_root), `passwd` (etc_root) and `utmp`, plus `harness.json`: extra probe
params, the wall clock to inject, and the statvfs answers per mount. `expected.json` is
the probe output to expect, compared whole except what depends on the test machine
(system.arch, system.python) and error messages (only the exception type is compared).
Regenerate an expected file after a deliberate change with
`OSMON_REGEN_FIXTURES=1 pytest tests/test_probe_fixtures.py` (which then fails, so that a
regenerating run never passes), review its diff and run again.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from collector.metrics.gate import validate_probe_output
from collector.metrics.rates import derive_sample
from collector.metrics.schema import MAX_ITEMS
from remote_probe import probe

FIXTURES = Path(__file__).parent / "fixtures" / "proc"
CASES = sorted(path.name for path in FIXTURES.iterdir() if path.is_dir())


def fake_statvfs(table: dict[str, list[int]], calls: list[str] | None = None):
    """statvfs answering from {mount: [frsize, blocks, bfree, bavail]}; unknown: ENOENT."""

    def statvfs(path: str) -> SimpleNamespace:
        if calls is not None:
            calls.append(path)
        if path not in table:
            raise FileNotFoundError(2, "No such file or directory", path)
        frsize, blocks, bfree, bavail = table[path]
        return SimpleNamespace(f_frsize=frsize, f_bsize=frsize, f_blocks=blocks,
                               f_bfree=bfree, f_bavail=bavail)

    return statvfs


def case_params(case_dir: Path, **overrides: Any) -> dict[str, Any]:
    harness = json.loads((case_dir / "harness.json").read_text())
    params = {
        "proc_root": str(case_dir),
        "sys_root": str(case_dir / "sysfs"),
        "etc_root": str(case_dir),
        "utmp_path": str(case_dir / "utmp"),
        "cpu_sample_s": 0,
        "clk_tck": 100,
        "page_size": 4096,
    }
    params.update(harness["params"])
    params.update(overrides)
    return params


def run_case(case_dir: Path, statvfs=None, calls: list[str] | None = None,
             **overrides: Any) -> dict[str, Any]:
    harness = json.loads((case_dir / "harness.json").read_text())
    return probe.collect(case_params(case_dir, **overrides),
                         statvfs=statvfs or fake_statvfs(harness["statvfs"], calls),
                         now=lambda: harness["now"], platform="linux")


def comparable(output: dict[str, Any]) -> dict[str, Any]:
    """Output minus what depends on the machine running the test."""
    result = json.loads(json.dumps(output))
    if isinstance(result.get("system"), dict):
        result["system"].pop("arch")
        result["system"].pop("python")
    result["errors"] = {key: value.split(":", 1)[0] for key, value in result["errors"].items()}
    return result


@pytest.mark.parametrize("case", CASES)
def test_fixture_matches_expected(case: str) -> None:
    case_dir = FIXTURES / case
    got = comparable(run_case(case_dir))
    expected_path = case_dir / "expected.json"
    if os.environ.get("OSMON_REGEN_FIXTURES"):
        expected_path.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
        pytest.fail(f"{expected_path} regenerated: review its diff, then run the tests "
                    "again without OSMON_REGEN_FIXTURES")
    assert got == json.loads(expected_path.read_text())


@pytest.mark.parametrize("case", CASES)
def test_fixture_output_is_strict_json(case: str) -> None:
    """What main() prints is strict ASCII JSON that passes the collector's validation."""
    from collector.metrics.gate import validate_probe_output

    result = run_case(FIXTURES / case)
    text = probe.encode_output(result)
    assert text == probe.json_dumps(probe.json_safe(result))
    text.encode("ascii")
    validate_probe_output(json.loads(text))


def test_normal_multicore_reads_like_a_person_would() -> None:
    """Spot checks of what a user would look at, independent of expected.json."""
    out = run_case(FIXTURES / "normal-multicore")
    assert out["errors"] == {}
    assert out["system"]["hostname"] == "web1"
    assert out["system"]["boot_time"] == 1763650000
    assert out["cpu"]["count"] == 4
    assert out["cpu"]["times"]["user"] == 4000.0  # 400000 ticks at 100 Hz
    assert out["cpu"]["load"] == [1.5, 0.75, 0.3]
    assert out["memory"]["total"] == 16384000 * 1024
    assert out["memory"]["available"] == 9000000 * 1024
    assert out["memory"]["percent"] == 45.1
    # real file systems only: no proc/tmpfs/cgroup, no snap squashfs, no nfs by default,
    # the bind mount of /home folded into /home, escaped path decoded
    assert [d["mount"] for d in out["disks"]] == [
        "/", "/boot", "/boot/efi", "/home", "/mnt/my backup\tdisk"]
    root = out["disks"][0]
    assert root["total"] == 4096 * 25000000
    assert root["percent"] == 63.2  # used / (used + avail): reserved blocks are not free
    assert [d["device"] for d in out["disk_io"]] == ["sda", "sdb", "nvme0n1"]
    assert out["disk_io"][0]["read_bytes"] == 200000 * 512
    assert [n["iface"] for n in out["net"]] == ["eth0", "docker0"]
    procs = out["processes"]
    assert procs["count"] == 9 and procs["scanned"] == 8  # pid 5000 vanished
    assert [p["pid"] for p in procs["top_cpu"]] == [2200, 1500, 1]
    top = procs["top_cpu"][0]
    assert top["user"] == "alice"
    assert top["cpu_percent"] == 360.0  # 36000 s of CPU over 10000 s of life, 4 threads busy
    assert len(top["cmdline"]) == 200
    assert [p["pid"] for p in procs["top_mem"]] == [2200, 1500, 4300]
    assert procs["top_mem"][2]["name"] == "gnome-shell-calendar-server"  # comm is cut at 15
    assert out["users"] == [
        {"name": "alice", "tty": "pts/0", "from": "10.0.0.9", "since": "2025-11-21T15:46:40Z"},
        {"name": "carol", "tty": "tty2", "from": None, "since": "2025-11-21T16:36:40Z"},
    ]  # bob's session process (9999) is gone: skipped like `who` does


def test_odd_comm_with_parentheses_is_parsed() -> None:
    out = run_case(FIXTURES / "normal-multicore", top_n=10)
    names = {p["pid"]: p["name"] for p in out["processes"]["top_cpu"]}
    assert names[4242] == "(sd-pam)"
    assert names[3000] == "kworker/0:1-events"


def test_old_kernel_memavailable_is_estimated_like_psutil() -> None:
    out = run_case(FIXTURES / "old-kernel-no-memavailable")
    kib = 1024
    free, low = 500000 * kib, (5 + 1000 + 3000) * 4096
    pagecache, slab = (800000 + 700000) * kib, 200000 * kib
    expected = int(free - low + pagecache - min(pagecache / 2, low) - min(slab / 2, low))
    memory = out["memory"]
    assert memory["available"] == expected
    assert memory["used"] == memory["total"] - expected
    assert out["errors"] == {}
    # rootfs over-mounted by the real root; hda partitions guessed without /sys/block
    assert [(d["mount"], d["fstype"]) for d in out["disks"]] == [("/", "ext4"), ("/boot", "ext4")]
    assert [d["device"] for d in out["disk_io"]] == ["hda", "sda"]
    assert out["net"][0] == {"iface": "eth0", "rx_bytes": 1234567890, "rx_packets": 9876543,
                             "rx_errors": 0, "rx_drops": 0, "tx_bytes": 987654321,
                             "tx_packets": 1234567, "tx_errors": 0, "tx_drops": 0}
    assert out["users"] == []  # no utmp file: nobody logged in, not an error


def test_old_kernel_without_zoneinfo_falls_back_to_free_plus_cached(tmp_path: Path) -> None:
    case = tmp_path / "case"
    shutil.copytree(FIXTURES / "old-kernel-no-memavailable", case)
    (case / "zoneinfo").unlink()
    out = run_case(case)
    assert out["memory"]["available"] == (500000 + 1500000) * 1024
    assert out["errors"]["memory:zoneinfo"].startswith("FileNotFoundError")


def test_container_keeps_overlay_root_and_one_entry_per_device() -> None:
    out = run_case(FIXTURES / "container-few-mounts")
    assert [(d["mount"], d["device"]) for d in out["disks"]] == [
        ("/", "overlay"), ("/etc/hosts", "/dev/sda1")]
    assert out["processes"]["top_cpu"][0]["user"] == "1001"  # uid missing from passwd
    assert out["swap"] == {"total": 0, "used": 0, "percent": 0.0}


def test_network_mounts_are_never_statvfsd_by_default() -> None:
    calls: list[str] = []
    out = run_case(FIXTURES / "stale-nfs-mount", calls=calls)
    assert sorted(calls) == ["/", "/media/usb"]
    assert [d["mount"] for d in out["disks"]] == ["/", "/media/usb"]
    assert out["errors"] == {}


def test_hung_network_mount_times_out_and_the_probe_finishes() -> None:
    harness = json.loads((FIXTURES / "stale-nfs-mount" / "harness.json").read_text())
    answer = fake_statvfs(harness["statvfs"])
    release = threading.Event()

    def statvfs(path: str) -> Any:
        if path == "/mnt/nfs":
            release.wait(30)  # a dead NFS server: the call does not come back
        return answer(path)

    started = time.monotonic()
    try:
        out = run_case(FIXTURES / "stale-nfs-mount", statvfs=statvfs, network_fs=True,
                       statvfs_timeout_s=0.3)
    finally:
        release.set()
    elapsed = time.monotonic() - started
    assert elapsed < 5
    assert out["errors"]["disks:/mnt/nfs"].startswith("TimeoutError: statvfs did not answer")
    assert [d["mount"] for d in out["disks"]] == ["/", "/media/usb", "/mnt/ssh", "/mnt/win"]
    assert out["cpu"]["count"] == 2  # the other families are intact


def test_corrupted_families_fail_alone() -> None:
    out = run_case(FIXTURES / "corrupted-truncated")
    assert set(out["errors"]) == {"cpu", "memory", "swap", "processes:meminfo"}
    assert "truncated" in out["errors"]["cpu"]
    assert "cpu" not in out and "memory" not in out and "swap" not in out
    # btime was lost with the truncated /proc/stat: derived from uptime and the clock
    assert out["system"]["boot_time"] == int(1763000777.0 - 777.77)
    assert out["disks"][0]["mount"] == "/"
    assert out["net"][0]["iface"] == "eth0"
    assert out["processes"]["top_mem"][0]["mem_percent"] is None
    assert out["processes"]["scanned"] == 1  # the garbled pid 2 is skipped


def test_missing_proc_root_reports_every_family() -> None:
    out = probe.collect({"proc_root": "/nonexistent/proc", "cpu_sample_s": 0},
                        platform="linux")
    for family in ("system", "cpu", "memory", "swap", "disks", "disk_io", "net", "processes"):
        assert family in out["errors"], family
    assert out["users"] is not None


def test_non_linux_reports_a_clear_error() -> None:
    out = probe.collect({"cpu_sample_s": 0}, platform="darwin")
    assert out["errors"]["platform"].startswith("UnsupportedPlatform: darwin")
    assert out["system"]["hostname"]
    assert "cpu" not in out


def _bump_ticks(case: Path, busy_delta: int, idle_delta: int, proc_delta: int) -> None:
    """Advance the captured counters as if time passed (used as the injected sleep)."""
    lines = []
    for line in (case / "stat").read_text().splitlines():
        fields = line.split()
        if fields and fields[0].startswith("cpu"):
            per = 4 if fields[0] == "cpu" else 1
            fields[1] = str(int(fields[1]) + busy_delta * per)
            fields[4] = str(int(fields[4]) + idle_delta * per)
            line = " ".join(fields)
        lines.append(line)
    (case / "stat").write_text("\n".join(lines) + "\n")
    stat = (case / "1500" / "stat").read_text().split(" ")
    stat[13] = str(int(stat[13]) + proc_delta)  # utime (field 14)
    (case / "1500" / "stat").write_text(" ".join(stat))


def test_in_probe_interval_measures_cpu_and_processes(tmp_path: Path) -> None:
    """First-pass mode: two readings around the (injected) sleep."""
    case = tmp_path / "case"
    shutil.copytree(FIXTURES / "normal-multicore", case)
    clock = {"t": 100.0}
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock["t"] += 0.25
        _bump_ticks(case, busy_delta=5, idle_delta=20, proc_delta=20)

    harness = json.loads((case / "harness.json").read_text())
    out = probe.collect(case_params(case, cpu_sample_s=0.25),
                        statvfs=fake_statvfs(harness["statvfs"]), now=lambda: harness["now"],
                        monotonic=lambda: clock["t"], sleep=sleep, platform="linux")
    assert slept == [0.25]
    assert out["cpu"]["percent"] == 20.0  # 5 busy ticks of 25 per core
    assert out["cpu"]["per_core"] == [20.0, 20.0, 20.0, 20.0]
    top = out["processes"]["top_cpu"][0]
    assert (top["pid"], top["cpu_percent"]) == (1500, 80.0)  # 0.2 s of CPU in 0.25 s
    assert out["processes"]["top_cpu"][1]["cpu_percent"] == 0.0  # idle during the interval


def test_steady_state_never_sleeps() -> None:
    def sleep(seconds: float) -> None:
        raise AssertionError("the steady state must not sleep")

    harness = json.loads((FIXTURES / "normal-multicore" / "harness.json").read_text())
    out = probe.collect(case_params(FIXTURES / "normal-multicore"), sleep=sleep,
                        statvfs=fake_statvfs(harness["statvfs"]), platform="linux")
    assert out["cpu"]["percent"] is None and out["cpu"]["per_core"] is None


def test_process_scan_is_capped() -> None:
    out = run_case(FIXTURES / "normal-multicore", max_processes=2)
    assert out["processes"]["count"] == 9
    assert out["processes"]["scanned"] == 2


def test_process_scan_stops_at_max_scan_s_and_the_rest_is_intact(tmp_path: Path) -> None:
    """A host with more processes than `max_scan_s` allows: the scan stops at its time
    limit, checked every 256 pids, on the injected clock (3 s a reading, limit 5 s)."""
    case = tmp_path / "case"
    shutil.copytree(FIXTURES / "normal-multicore", case)
    stat = (case / "812" / "stat").read_text()
    for pid in range(10000, 11000):
        (case / str(pid)).mkdir()
        (case / str(pid) / "stat").write_text(stat.replace("812 (sshd)", f"{pid} (worker)", 1))
    calls = {"n": 0}

    def monotonic() -> float:
        calls["n"] += 1
        return 100.0 + 3.0 * calls["n"]

    harness = json.loads((case / "harness.json").read_text())
    out = probe.collect(case_params(case, max_scan_s=5.0), monotonic=monotonic,
                        statvfs=fake_statvfs(harness["statvfs"]), now=lambda: harness["now"],
                        platform="linux")
    procs = out["processes"]
    assert procs["count"] == 1009
    assert 255 <= procs["scanned"] < 1009 - 256  # stopped at a 256-pid check, not at the end
    assert len(procs["counters"]["ticks"]) == procs["scanned"]
    reference = run_case(FIXTURES / "normal-multicore")
    for family in ("system", "cpu", "memory", "swap", "disks", "disk_io", "net", "users"):
        assert out[family] == reference[family], family
    assert out["errors"] == reference["errors"]


def _net_dev(names_and_bytes: list[tuple[str, int]]) -> str:
    head = ("Inter-|   Receive                                                |  Transmit\n"
            " face |bytes    packets errs drop fifo frame compressed multicast|bytes    "
            "packets errs drop fifo colls carrier compressed\n")
    return head + "".join(f"{name}: {rx} 1 0 0 0 0 0 0 {rx // 2} 1 0 0 0 0 0 0\n"
                          for name, rx in names_and_bytes)


def test_5000_interfaces_keep_the_busiest_1024_and_the_sample(tmp_path: Path) -> None:
    case = tmp_path / "case"
    shutil.copytree(FIXTURES / "normal-multicore", case)
    # veth0 is the busiest; lo is the busiest of all but excluded as always
    ifaces = [("lo", 10**12)] + [(f"veth{i}", (5000 - i) * 1000) for i in range(5000)]
    (case / "net" / "dev").write_text(_net_dev(ifaces))
    out = run_case(case)
    assert [n["iface"] for n in out["net"]] == [f"veth{i}" for i in range(1024)]
    assert out["errors"]["net:truncated"] == "truncated to 1024 of 5000 interfaces"
    assert "net" not in out["errors"]  # the family did not fail
    cleaned = validate_probe_output(json.loads(json.dumps(out)))
    sample = derive_sample(cleaned, None, 1000.0, None)
    assert len(sample["net"]) == 1024 and sample["memory"] == out["memory"]
    assert sample["errors"]["net:truncated"] == "truncated to 1024 of 5000 interfaces"


def test_capped_lists_keep_the_useful_entries() -> None:
    errors: dict[str, str] = {}
    disks = [{"mount": f"/m{i:05d}"} for i in range(2000)]
    assert probe.cap_entries(errors, "disks", disks, "file systems") == disks[:1024]
    io = [{"device": f"sd{i}", "read_bytes": i, "write_bytes": 0} for i in range(1500)]
    kept = probe.cap_entries(errors, "disk_io", io, "devices",
                             lambda d: d["read_bytes"] + d["write_bytes"])
    assert kept == io[-1024:]  # the busiest, in their original order
    assert probe.cap_entries(errors, "users", [1] * 10, "sessions") == [1] * 10
    assert errors == {"disks:truncated": "truncated to 1024 of 2000 file systems",
                      "disk_io:truncated": "truncated to 1024 of 1500 devices"}
    assert max(probe.LIST_CAPS.values()) < MAX_ITEMS
