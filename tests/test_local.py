"""collect_local(): psutil in-process, the probe's raw shape, each section failing alone."""

from __future__ import annotations

import json
from pathlib import Path

import psutil
import pytest

from collector.metrics.gate import validate_probe_output
from collector.metrics.rates import derive_sample
from collector.transport import local
from collector.transport.local import collect_local
from remote_probe import probe


@pytest.fixture(scope="module")
def steady() -> dict:
    return collect_local({"cpu_sample_s": 0})


def _shape(value: object) -> object:
    """Keys of nested objects (first item for lists): the structure, not the values.

    A map keyed by pids (``processes.counters.ticks``) is data, not structure: the two
    readings are taken at two moments, between which processes start and end."""
    if isinstance(value, dict) and value and all(str(k).isdigit() for k in value):
        return "pid map"
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return [_shape(value[0])]
    return None


def test_same_keys_as_the_probe(steady: dict) -> None:
    from_probe = probe.collect({"cpu_sample_s": 0})
    for section in ("system", "cpu", "memory", "swap", "disks", "disk_io", "net",
                    "processes"):
        assert _shape(steady[section]) == _shape(from_probe[section]), section
    assert list(steady) == list(from_probe)


def test_passes_validation_and_rates(steady: dict) -> None:
    assert steady["errors"] == {}
    cleaned = validate_probe_output(json.loads(json.dumps(steady, allow_nan=False)))
    sample = derive_sample(cleaned, None, 100.0, None)
    assert sample["memory"]["total"] == psutil.virtual_memory().total
    assert sample["cpu"]["percent"] is None  # steady state: left to the next pass


def test_second_pass_gets_interval_cpu_percent(steady: dict) -> None:
    first = derive_sample(validate_probe_output(steady), None, 100.0, None)
    later = validate_probe_output(collect_local({"cpu_sample_s": 0}))
    sample = derive_sample(later, first, 160.0, 100.0)
    if sample["cpu"]["percent"] is not None:  # None only if no tick elapsed at all
        assert 0.0 <= sample["cpu"]["percent"] <= 100.0
        assert sample["cpu"]["percent_source"] == "interval"


def test_first_pass_measures_cpu_over_the_interval() -> None:
    slept: list[float] = []
    out = collect_local({"cpu_sample_s": 0.2}, sleep=lambda s: slept.append(s) or None)
    assert len(slept) == 1 and 0 <= slept[0] <= 0.2
    assert validate_probe_output(out)["errors"] == {}


def test_steady_state_never_sleeps() -> None:
    def sleep(seconds: float) -> None:
        raise AssertionError("must not sleep")

    assert collect_local({"cpu_sample_s": 0}, sleep=sleep)["errors"] == {}


def test_loopback_only_on_request(steady: dict) -> None:
    assert "lo" not in {n["iface"] for n in steady["net"]}
    with_lo = collect_local({"cpu_sample_s": 0, "include_loopback": True})
    assert "lo" in {n["iface"] for n in with_lo["net"]}


def test_a_failing_section_fails_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise PermissionError("denied by a test")

    monkeypatch.setattr(local.psutil, "virtual_memory", broken)
    out = collect_local({"cpu_sample_s": 0})
    assert out["errors"]["memory"] == "PermissionError: denied by a test"
    assert "memory" not in out
    assert "cpu" in out and "disks" in out
    # processes needs the memory total for mem_percent: reported, not hidden
    assert "processes" in out["errors"]
    validate_probe_output(out)


def test_top_lists_respect_top_n() -> None:
    out = collect_local({"cpu_sample_s": 0, "top_n": 2})
    assert len(out["processes"]["top_cpu"]) == 2
    assert len(out["processes"]["top_mem"]) == 2
    assert out["processes"]["count"] >= out["processes"]["scanned"] >= 2


def test_agrees_with_the_probe_on_stable_facts(steady: dict) -> None:
    from_probe = probe.collect({"cpu_sample_s": 0})
    assert steady["cpu"]["count"] == from_probe["cpu"]["count"]
    assert abs(steady["memory"]["total"] - from_probe["memory"]["total"]) <= 4096
    assert [d["mount"] for d in steady["disks"]] == [d["mount"] for d in from_probe["disks"]]
    assert [d["device"] for d in steady["disk_io"]] == [
        d["device"] for d in from_probe["disk_io"]]
    assert abs(steady["system"]["boot_time"] - from_probe["system"]["boot_time"]) <= 2


def test_local_host_runs_its_checks(tmp_path: Path) -> None:
    """The central server's [[checks]] run too: a real plugin answers, a missing one is UNKNOWN."""
    from collector import config
    from collector.metrics.nagios import UNKNOWN
    from collector.passes import collect

    (tmp_path / "hosts.toml").write_text(
        '[settings]\ndata_dir = "data"\n[certfr]\nenabled = false\n'
        '[[hosts]]\nname = "central"\nlocal = true\n'
        '[[checks]]\nname = "load"\n'
        'command = ["/usr/lib/nagios/plugins/check_load", "-w", "999,999,999", '
        '"-c", "999,999,999"]\n'
        '[[checks]]\nname = "ghost"\ncommand = ["/nonexistent/check_ghost"]\n',
        encoding="utf-8")
    cfg = config.load(tmp_path / "hosts.toml")
    sample = collect.run_pass(cfg).outcomes[0].sample
    assert sample["ok"], sample.get("error")
    load = sample["checks"]["load"]
    assert load["state"] == 0, load
    # The number stored is the one the plugin printed ("load average: 0.52, 0.58, 0.59").
    printed = float(load["output"].split("load average:")[1].split(",")[0])
    assert load["perf"]["load1"]["value"] == pytest.approx(printed, abs=0.005)
    assert sample["checks"]["ghost"]["state"] == UNKNOWN
    assert "not found" in sample["checks"]["ghost"]["output"].lower() or \
        "no such file" in sample["checks"]["ghost"]["output"].lower()


def test_process_counters_are_the_probes_units_and_serve_the_next_pass() -> None:
    """Same starttime (clock ticks since boot) for this very process from psutil and from
    /proc, so a host may switch between local and SSH collection without a false match."""
    import os

    first = collect_local({"cpu_sample_s": 0})
    from_probe = probe.collect({"cpu_sample_s": 0})["processes"]["counters"]
    me = str(os.getpid())
    local_ticks = first["processes"]["counters"]["ticks"][me]
    assert local_ticks[0] == from_probe["ticks"][me][0]
    assert abs(local_ticks[1] - from_probe["ticks"][me][1]) <= 100  # both read this second
    assert abs(first["processes"]["counters"]["uptime"] - from_probe["uptime"]) < 5
    assert first["processes"]["cpu_basis"] == "lifetime"
    later = collect_local({"cpu_sample_s": 0,
                           "proc_prev": json.loads(json.dumps(first["processes"]["counters"]))})
    assert later["processes"]["cpu_basis"] == "interval"
    validate_probe_output(json.loads(json.dumps(later)))
