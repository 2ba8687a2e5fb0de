"""Per-process CPU percent from two readings one pass apart (processes.counters / proc_prev).

The probe runs twice on a captured /proc tree (tests/fixtures/proc/normal-multicore) copied
under tmp_path, the second time with the first run's counters sent back as the collector
does and the tree advanced by editing /proc/uptime and /proc/<pid>/stat: no clock, no sleep.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from test_probe_fixtures import FIXTURES, case_params, fake_statvfs

from collector.metrics.gate import InvalidProbeOutput, validate_probe_output
from collector.metrics.rates import derive_sample
from collector.metrics.values import MAX_INTERVAL_S
from collector.store import proc_counters as proc_state
from remote_probe import probe

CASE = FIXTURES / "normal-multicore"
SSHD = 812  # idle all its life: 150 ticks since it started at 5 s, uptime 100000 s


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    case = tmp_path / "proc"
    shutil.copytree(CASE, case)
    return case


def run(case: Path, proc_prev: Any = None) -> dict[str, Any]:
    harness = json.loads((CASE / "harness.json").read_text())
    params = case_params(case)
    if proc_prev is not None:
        params["proc_prev"] = proc_prev
    return probe.collect(params, statvfs=fake_statvfs(harness["statvfs"]),
                         now=lambda: harness["now"], platform="linux")


def sent_back(out: dict[str, Any]) -> Any:
    """The counters as they travel: JSON out of the probe, JSON into the next probe."""
    return json.loads(probe.json_dumps(probe.json_safe(out)))["processes"]["counters"]


def advance(case: Path, seconds: float, pid: int = SSHD, ticks: int = 0,
            starttime: int | None = None) -> None:
    """Let `seconds` pass on the host; `pid` spends `ticks` more (or is a new process)."""
    uptime = float((case / "uptime").read_text().split()[0])
    (case / "uptime").write_text(f"{uptime + seconds:.2f} 390000.00\n")
    stat = case / str(pid) / "stat"
    fields = stat.read_text().split(" ")
    fields[13] = str(int(fields[13]) + ticks)  # utime, field 14 of proc(5)
    if starttime is not None:
        fields[21] = str(starttime)  # starttime, field 22
    stat.write_text(" ".join(fields))


def top(out: dict[str, Any]) -> list[tuple[int, float]]:
    return [(p["pid"], p["cpu_percent"]) for p in out["processes"]["top_cpu"]]


def test_an_old_idle_process_that_turns_busy_comes_first_with_its_interval_percent(
        tree: Path) -> None:
    first = run(tree)
    assert first["processes"]["cpu_basis"] == "lifetime"
    assert top(first)[0] == (2200, 360.0)  # the lifetime average: nothing to compare yet
    assert SSHD not in dict(top(first))  # 1.5 s of CPU in 27 hours
    advance(tree, 60.0, ticks=3000)  # 30 s of CPU in 60 s: half a core
    second = run(tree, sent_back(first))
    assert second["processes"]["cpu_basis"] == "interval"
    assert top(second)[0] == (SSHD, 50.0)
    by_mem = {p["pid"]: p["cpu_percent"] for p in second["processes"]["top_mem"]}
    assert by_mem[2200] == 0.0  # busy for a day, idle during the interval
    assert validate_probe_output(json.loads(json.dumps(second)))["processes"]["cpu_basis"] \
        == "interval"


def test_a_reused_pid_falls_back_to_its_lifetime(tree: Path) -> None:
    first = run(tree)
    # pid 812 is now another process, started 40 s ago, which spent 20 s of CPU
    advance(tree, 60.0, ticks=2000 - 150, starttime=(100000 + 60 - 40) * 100)
    second = run(tree, sent_back(first))
    assert dict(top(second))[SSHD] == 50.0  # 20 s over its 40 s life, not 1850 ticks / 60 s


def test_a_reboot_lower_uptime_falls_back_to_lifetime(tree: Path) -> None:
    first = run(tree)
    (tree / "uptime").write_text("500.00 900.00\n")
    second = run(tree, sent_back(first))
    assert second["processes"]["cpu_basis"] == "lifetime"


def test_a_reboot_seen_by_boot_id_falls_back_even_when_uptime_advanced(tree: Path) -> None:
    boot_id = tree / "sys" / "kernel" / "random" / "boot_id"
    boot_id.parent.mkdir(parents=True)
    boot_id.write_text("6f1a8e0c-1111-4c1e-9a7e-000000000001\n")
    first = run(tree)
    assert first["processes"]["counters"]["boot_id"] == "6f1a8e0c-1111-4c1e-9a7e-000000000001"
    advance(tree, 60.0, ticks=3000)
    assert run(tree, sent_back(first))["processes"]["cpu_basis"] == "interval"
    boot_id.write_text("6f1a8e0c-1111-4c1e-9a7e-000000000002\n")
    assert run(tree, sent_back(first))["processes"]["cpu_basis"] == "lifetime"


def test_malformed_entries_are_ignored_and_a_malformed_map_is_reported(tree: Path) -> None:
    first = sent_back(run(tree))
    advance(tree, 60.0, ticks=3000)
    bad = dict(first, ticks=dict(first["ticks"], **{str(SSHD): ["500", 150], "x": [1, 2]}))
    second = run(tree, bad)
    assert second["processes"]["cpu_basis"] == "interval"
    assert dict(top(second))[SSHD] == round(3150 / 100 / (100060 - 5) * 100, 1)  # lifetime
    assert second["errors"] == {}
    for junk in ([1, 2], {"uptime": "1", "ticks": {}}, {"uptime": 1.0, "ticks": []},
                 {"uptime": 1.0, "ticks": {str(n): [0, 0] for n in
                                           range(probe.PROC_COUNTERS_MAX + 1)}}):
        out = run(tree, junk)
        assert out["processes"]["cpu_basis"] == "lifetime"
        assert out["errors"]["processes:prev"].startswith("ValueError")


def test_counters_cover_every_scanned_process_and_are_capped(tree: Path) -> None:
    out = run(tree)
    ticks = out["processes"]["counters"]["ticks"]
    assert ticks[str(SSHD)] == [500, 150] and len(ticks) == out["processes"]["scanned"]
    assert out["processes"]["counters"]["uptime"] == 100000.0


def test_params_carry_proc_prev_through_parse_params() -> None:
    params, problem = probe.parse_params(json.dumps({"proc_prev": {"uptime": 1, "ticks": {}}}))
    assert problem is None and params["proc_prev"] == {"uptime": 1, "ticks": {}}


# --------------------------------------------------------------------------- schema


def counters(ticks: Any, **extra: Any) -> dict[str, Any]:
    out = run(CASE)
    out["processes"]["counters"] = dict({"uptime": 10.5, "boot_id": None, "ticks": ticks},
                                        **extra)
    return json.loads(json.dumps(out))


def test_schema_accepts_the_counters_map_and_refuses_anything_else() -> None:
    assert validate_probe_output(counters({"1": [0, 5]}))["processes"]["counters"]["ticks"] \
        == {"1": [0, 5]}
    big = {str(pid): [pid, pid] for pid in range(1, 100_001)}
    assert len(validate_probe_output(counters(big))["processes"]["counters"]["ticks"]) \
        == 100_000
    for bad in ({"1a": [0, 5]}, {"": [0, 5]}, {"\u0663": [0, 5]}, {"1": [0, True]},
                {"1": [0, 5.0]}, {"1": [0, -1]}, {"1": [0, 5, 6]}, {"1": {"a": 1}},
                {"1": [0, 2**64 + 1]}, [[1, 0, 5]],
                dict(big, **{"100001": [1, 1]})):
        with pytest.raises(InvalidProbeOutput):
            validate_probe_output(counters(bad))
    with pytest.raises(InvalidProbeOutput):
        validate_probe_output(counters({}, boot_id="x" * 65))
    with pytest.raises(InvalidProbeOutput):
        validate_probe_output(counters({}, uptime=-1))


def test_schema_refuses_an_unknown_cpu_basis() -> None:
    out = counters({})
    out["processes"]["cpu_basis"] = "guess"
    with pytest.raises(InvalidProbeOutput):
        validate_probe_output(out)


# --------------------------------------------------------------------------- collector state


def test_stored_sample_has_no_counters_and_the_state_file_has_them(tmp_path: Path) -> None:
    raw = validate_probe_output(json.loads(json.dumps(run(CASE))))
    kept = proc_state.take_counters(raw)
    sample = derive_sample(raw, None, 1000.0, None)
    assert "counters" not in json.dumps(sample) and sample["processes"]["cpu_basis"] == \
        "lifetime"
    assert kept is not None and kept["ticks"][str(SSHD)] == [500, 150]
    proc_state.save(tmp_path, "web1", kept, 1000.0)
    assert (tmp_path / "proc-counters" / "web1.json").exists()
    assert proc_state.load(tmp_path, "web1", 1060.0) == kept
    assert proc_state.load(tmp_path, "web1", 1000.0 + MAX_INTERVAL_S + 1) is None  # too old
    assert proc_state.load(tmp_path, "web1", 990.0) is None  # from the future: a clock step
    assert proc_state.load(tmp_path, "web2", 1060.0) is None


def test_a_damaged_state_file_costs_only_the_interval(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "proc-counters" / "web1.json"
    path.parent.mkdir()
    path.write_text('{"version": 1, "epoch": 1')
    assert proc_state.load(tmp_path, "web1", 1060.0) is None
    assert "corrupt" in caplog.text
    path.write_text('{"version": 1, "epoch": "x", "counters": {}}')
    assert proc_state.load(tmp_path, "web1", 1060.0) is None
