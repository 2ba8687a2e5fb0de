"""collector.metrics.rates: CPU percent and byte rates between passes; resets are gaps, not
spikes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from collector.metrics.families.cpu import DEFAULT_CPU_SAMPLE_S, busy_percent, cpu_params_for
from collector.metrics.families.processes import merge_top
from collector.metrics.rates import derive_sample
from collector.metrics.values import MAX_INTERVAL_S

FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def times(user: float = 0.0, system: float = 0.0, idle: float = 0.0,
          iowait: float = 0.0) -> dict[str, float]:
    out = dict.fromkeys(FIELDS, 0.0)
    out.update(user=user, system=system, idle=idle, iowait=iowait)
    return out


def raw(cores: list[dict[str, float]], *, boot: int = 1_700_000_000, rx: int = 0,
        tx: int = 0, read: int = 0, write: int = 0, busy_ms: int = 0,
        percent: float | None = None) -> dict[str, Any]:
    """A raw probe output with the counters a rate test needs."""
    total = {key: sum(core[key] for core in cores) for key in FIELDS}
    return {
        "probe": 1,
        "system": {"hostname": "h", "os": "Linux", "kernel": "6.1", "arch": "x86_64",
                   "boot_time": boot, "uptime_s": 100.0, "python": "3.11.2"},
        "cpu": {"count": len(cores), "times": total, "per_core_times": cores,
                "load": [0.1, 0.2, 0.3], "percent": percent,
                "per_core": None if percent is None else [percent] * len(cores)},
        "memory": {"total": 100, "available": 50, "used": 50, "percent": 50.0,
                   "buffers": 0, "cached": 0},
        "net": [{"iface": "eth0", "rx_bytes": rx, "tx_bytes": tx, "rx_packets": 0,
                 "tx_packets": 0, "rx_errors": 0, "tx_errors": 0, "rx_drops": 0,
                 "tx_drops": 0}],
        "disk_io": [{"device": "sda", "read_bytes": read, "write_bytes": write, "reads": 0,
                     "writes": 0, "busy_ms": busy_ms}],
        "processes": {"count": 3, "scanned": 3,
                      "top_cpu": [{"pid": 2, "cpu_percent": 50.0, "rss": 10},
                                  {"pid": 1, "cpu_percent": 5.0, "rss": 99}],
                      "top_mem": [{"pid": 1, "cpu_percent": 5.0, "rss": 99},
                                  {"pid": 3, "cpu_percent": 0.0, "rss": 50}]},
        "users": [],
        "errors": {},
    }


def two_passes(second: dict[str, Any], first: dict[str, Any] | None = None,
               seconds: float = 60.0) -> dict[str, Any]:
    """Derive the first pass, store it, then derive the second against it."""
    first = first or raw([times(100, 50, 800, 50), times(100, 50, 800, 50)])
    stored = derive_sample(first, None, 1000.0, None)
    return derive_sample(second, stored, 1000.0 + seconds, 1000.0)


def test_normal_deltas_give_the_right_percentages() -> None:
    # core 0: +30 busy, +30 idle -> 50 %; core 1: +6 busy, +54 idle -> 10 %
    second = raw([times(120, 60, 830, 50), times(104, 52, 854, 50)],
                 rx=6000, tx=600, read=60_000, write=120_000, busy_ms=30_000)
    out = two_passes(second)
    assert out["cpu"]["per_core"] == [50.0, 10.0]
    assert out["cpu"]["percent"] == 30.0
    assert out["cpu"]["percent_source"] == "interval"
    assert out["net"][0]["rx_bps"] == 100.0 and out["net"][0]["tx_bps"] == 10.0
    assert out["disk_io"][0]["read_bps"] == 1000.0 and out["disk_io"][0]["write_bps"] == 2000.0
    assert out["disk_io"][0]["busy_percent"] == 50.0


def test_iowait_counts_as_idle() -> None:
    assert busy_percent(times(0, 0, 0, 0), times(10, 0, 40, 50)) == 10.0


def test_raw_counters_are_kept_for_the_next_pass() -> None:
    second = raw([times(120, 60, 830, 50)], rx=5000)
    out = derive_sample(second, None, 0.0, None)
    assert out["cpu"]["times"] == second["cpu"]["times"]
    assert out["cpu"]["per_core_times"] == second["cpu"]["per_core_times"]
    assert out["net"][0]["rx_bytes"] == 5000
    assert out["disk_io"][0]["read_bytes"] == 0


def test_first_pass_falls_back_to_in_probe_values() -> None:
    out = derive_sample(raw([times(1, 1, 1)], percent=12.5), None, 1000.0, None)
    assert out["cpu"]["percent"] == 12.5 and out["cpu"]["per_core"] == [12.5]
    assert out["cpu"]["percent_source"] == "probe"
    assert out["net"][0]["rx_bps"] is None
    assert out["disk_io"][0]["busy_percent"] is None


def test_reboot_counters_reset_is_a_gap_never_negative() -> None:
    # same boot time recorded (say the system family failed), but every counter fell
    second = raw([times(5, 5, 50), times(5, 5, 50)], rx=10, tx=10, read=0)
    first = raw([times(100, 50, 800, 50), times(100, 50, 800, 50)], rx=10**9, tx=10**9,
                read=10**9)
    out = two_passes(second, first)
    assert out["cpu"]["percent"] is None and out["cpu"]["per_core"] is None
    assert out["cpu"]["percent_source"] is None
    assert out["net"][0]["rx_bps"] is None and out["net"][0]["tx_bps"] is None
    assert out["disk_io"][0]["read_bps"] is None


def test_reset_with_one_field_higher_is_a_gap_not_a_spike() -> None:
    """After a reboot a busy boot can leave `user` above its old value while idle restarted
    from zero: clamping fields alone would report 100 %."""
    first = raw([times(100, 50, 800, 50)])
    second = raw([times(200, 10, 50, 1)])
    assert two_passes(second, first)["cpu"]["percent"] is None


def test_boot_time_change_is_a_gap_even_if_counters_grew() -> None:
    first = raw([times(1, 1, 10)], rx=100)
    second = raw([times(500, 500, 5000)], rx=10**6, boot=1_700_000_000 + 3600)
    out = two_passes(second, first)
    assert out["cpu"]["percent"] is None
    assert out["net"][0]["rx_bps"] is None


def test_boot_time_jitter_is_not_a_reboot() -> None:
    first = raw([times(10, 0, 90)], rx=0)
    second = raw([times(20, 0, 180)], rx=600, boot=1_700_000_000 + 1)
    out = two_passes(second, first)
    assert out["cpu"]["percent"] == 10.0
    assert out["net"][0]["rx_bps"] == 10.0


def test_wrapped_interface_counter_is_a_gap() -> None:
    first = raw([times(10, 0, 90)], rx=2**32 - 100, tx=1000)
    second = raw([times(20, 0, 180)], rx=50, tx=7000)
    out = two_passes(second, first)
    assert out["net"][0]["rx_bps"] is None
    assert out["net"][0]["tx_bps"] == 100.0  # the other counter is still fine


def test_core_count_change_is_a_gap() -> None:
    first = raw([times(10, 0, 90), times(10, 0, 90)])
    second = raw([times(20, 0, 180), times(20, 0, 180), times(0, 0, 1)])
    out = two_passes(second, first)
    assert out["cpu"]["percent"] is None and out["cpu"]["per_core"] is None


def test_single_field_stepping_back_is_clamped_like_psutil() -> None:
    first = raw([times(10, 0, 90, iowait=5)])
    second = raw([times(20, 0, 180, iowait=4.99)])
    out = two_passes(second, first)
    assert out["cpu"]["percent"] == 10.0


@pytest.mark.parametrize("seconds", [0.0, -5.0, MAX_INTERVAL_S + 1])
def test_unusable_interval_gives_no_rates(seconds: float) -> None:
    out = two_passes(raw([times(20, 0, 180)], rx=10**6), raw([times(10, 0, 90)]), seconds)
    assert out["net"][0]["rx_bps"] is None
    assert out["cpu"]["percent"] is None


@pytest.mark.parametrize("previous", [
    {"v": 1, "ok": False, "error": {"kind": "timeout"}},  # a failed pass
    {"cpu": "garbage", "net": "garbage", "disk_io": [1, None, "x"]},
    {"cpu": {"times": {"user": "NaN"}, "per_core_times": 5}},
    "not even a dict",
])
def test_malformed_previous_is_treated_as_none(previous: Any) -> None:
    out = derive_sample(raw([times(20, 0, 180)], rx=600, percent=7.0), previous, 60.0, 0.0)
    assert out["cpu"]["percent"] == 7.0 and out["cpu"]["percent_source"] == "probe"
    assert out["net"][0]["rx_bps"] is None


def test_new_interface_has_no_rate_yet() -> None:
    second = raw([times(20, 0, 180)])
    second["net"].append({"iface": "wg0", "rx_bytes": 10**6, "tx_bytes": 0})
    out = two_passes(second, raw([times(10, 0, 90)]))
    assert out["net"][1]["rx_bps"] is None
    assert out["net"][0]["rx_bps"] == 0.0


def test_processes_become_one_merged_top_list() -> None:
    out = derive_sample(raw([times(1, 1, 1)]), None, 0.0, None)
    assert out["processes"]["count"] == 3 and out["processes"]["scanned"] == 3
    assert [p["pid"] for p in out["processes"]["top"]] == [2, 1, 3]
    assert "top_cpu" not in out["processes"]


def test_merge_top_null_cpu_sorts_last_by_memory() -> None:
    merged = merge_top({"top_cpu": [{"pid": 9, "cpu_percent": None, "rss": 1}],
                        "top_mem": [{"pid": 8, "cpu_percent": None, "rss": 5}]})
    assert [p["pid"] for p in merged] == [8, 9]


def test_failed_families_stay_absent_and_errors_are_kept() -> None:
    second = raw([times(1, 1, 1)])
    del second["memory"]
    second["errors"] = {"memory": "ValueError: bad"}
    out = derive_sample(second, None, 0.0, None)
    assert "memory" not in out and out["errors"] == {"memory": "ValueError: bad"}


def test_derive_sample_does_not_mutate_its_inputs() -> None:
    second = raw([times(20, 0, 180)], rx=600)
    first = derive_sample(raw([times(10, 0, 90)]), None, 0.0, None)
    second_copy, first_copy = copy.deepcopy(second), copy.deepcopy(first)
    derive_sample(second, first, 60.0, 0.0)
    assert second == second_copy and first == first_copy


def test_cpu_params_for_steady_state_and_first_pass() -> None:
    stored = derive_sample(raw([times(10, 0, 90)]), None, 0.0, None)
    assert cpu_params_for(stored, 60.0, 0.0) == {"cpu_sample_s": 0.0}
    assert cpu_params_for(None, 60.0, None) == {"cpu_sample_s": DEFAULT_CPU_SAMPLE_S}
    assert cpu_params_for({"ok": False}, 60.0, 0.0)["cpu_sample_s"] > 0
    assert cpu_params_for(stored, MAX_INTERVAL_S + 60, 0.0)["cpu_sample_s"] > 0
