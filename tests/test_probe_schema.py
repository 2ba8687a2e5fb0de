"""validate_probe_output on hostile input: whatever a compromised or broken host sends."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest

from collector.metrics.gate import InvalidProbeOutput, validate_probe_output

FIXTURE = Path(__file__).parent / "fixtures" / "proc" / "normal-multicore" / "expected.json"


@pytest.fixture
def good() -> dict[str, Any]:
    """A real probe output (the normal-multicore fixture) with the machine-specific keys."""
    out = json.loads(FIXTURE.read_text())
    out["system"].update(arch="x86_64", python="3.11.2")
    out["errors"] = {}
    return out


def test_good_output_passes_unchanged(good: dict) -> None:
    assert validate_probe_output(copy.deepcopy(good)) == good


@pytest.mark.parametrize("value", [None, [], "text", 42, b"bytes"])
def test_top_level_must_be_an_object(value: Any) -> None:
    with pytest.raises(InvalidProbeOutput, match="top level"):
        validate_probe_output(value)


def test_invalid_output_is_a_value_error_with_reason() -> None:
    with pytest.raises(ValueError) as info:
        validate_probe_output([])
    assert isinstance(info.value, InvalidProbeOutput) and "top level" in info.value.reason


@pytest.mark.parametrize("version", [None, 2, "1", True])
def test_unknown_probe_version_is_refused(good: dict, version: Any) -> None:
    good["probe"] = version
    with pytest.raises(InvalidProbeOutput, match="probe"):
        validate_probe_output(good)


@pytest.mark.parametrize("path,value", [
    (("memory", "percent"), math.nan),
    (("memory", "total"), math.inf),
    (("cpu", "load", 0), -math.inf),
    (("cpu", "times", "user"), math.nan),
])
def test_non_finite_numbers_are_refused(good: dict, path: tuple, value: float) -> None:
    target = good
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(InvalidProbeOutput, match="finite"):
        validate_probe_output(good)


@pytest.mark.parametrize("section,field,value,reason", [
    ("memory", "total", "16 GB", "expected a number"),
    ("memory", "total", True, "expected a number"),  # bool is not a number here
    ("memory", "total", -1, "outside"),
    ("memory", "percent", 250.0, "outside"),
    ("memory", "total", 2**70, "outside"),
    ("memory", "used", 1.5, "integer"),
    ("cpu", "times", [1, 2, 3], "expected an object"),
    ("cpu", "load", [1.0, 2.0], "expected 3 items"),
    ("cpu", "count", 0, "outside"),
    ("system", "hostname", 7, "expected a string"),
    ("disks", None, {"mount": "/"}, "expected a list"),
    ("processes", "top_cpu", "none", "expected a list"),
])
def test_wrong_types_are_refused(good: dict, section: str, field: str | None, value: Any,
                                 reason: str) -> None:
    if field is None:
        good[section] = value
    else:
        good[section][field] = value
    with pytest.raises(InvalidProbeOutput, match=reason):
        validate_probe_output(good)


def test_error_names_the_offending_path(good: dict) -> None:
    good["disks"][2]["percent"] = "full"
    with pytest.raises(InvalidProbeOutput, match=r"disks\[2\]\.percent"):
        validate_probe_output(good)


@pytest.mark.parametrize("section,count", [
    ("disks", 4097), ("net", 4097), ("disk_io", 4097), ("users", 4097)])
def test_absurdly_long_lists_are_refused(good: dict, section: str, count: int) -> None:
    good[section] = [good[section][0] if good[section] else {}] * count
    with pytest.raises(InvalidProbeOutput, match="at most 4096"):
        validate_probe_output(good)


def test_too_many_cores_or_top_processes_are_refused(good: dict) -> None:
    bad = copy.deepcopy(good)
    bad["cpu"]["per_core_times"] = bad["cpu"]["per_core_times"][:1] * 5000
    with pytest.raises(InvalidProbeOutput, match="per_core_times"):
        validate_probe_output(bad)
    good["processes"]["top_cpu"] = good["processes"]["top_cpu"][:1] * 1001
    with pytest.raises(InvalidProbeOutput, match="at most 1000"):
        validate_probe_output(good)


def test_unknown_keys_are_dropped_everywhere(good: dict) -> None:
    good["evil"] = {"x": 1}
    good["memory"]["extra"] = 5
    good["disks"][0]["__proto__"] = "y"
    good["processes"]["top_cpu"][0]["env"] = "SECRET=1"
    cleaned = validate_probe_output(good)
    assert "evil" not in cleaned
    assert "extra" not in cleaned["memory"]
    assert "__proto__" not in cleaned["disks"][0]
    assert "env" not in cleaned["processes"]["top_cpu"][0]


def test_script_strings_are_kept_as_plain_data(good: dict) -> None:
    script = "<script>alert(1)</script>"
    good["system"]["hostname"] = script
    good["processes"]["top_cpu"][0]["cmdline"] = script
    cleaned = validate_probe_output(good)
    assert cleaned["system"]["hostname"] == script
    assert cleaned["processes"]["top_cpu"][0]["cmdline"] == script


def test_long_strings_are_truncated_not_refused(good: dict) -> None:
    good["processes"]["top_cpu"][0]["cmdline"] = "x" * 100000
    good["system"]["hostname"] = "h" * 5000
    cleaned = validate_probe_output(good)
    assert len(cleaned["processes"]["top_cpu"][0]["cmdline"]) == 1024
    assert len(cleaned["system"]["hostname"]) == 255


def test_missing_section_needs_an_error(good: dict) -> None:
    del good["memory"]
    with pytest.raises(InvalidProbeOutput, match="memory: missing"):
        validate_probe_output(copy.deepcopy(good))
    good["errors"] = {"memory": "ValueError: /proc/meminfo has no usable MemTotal line"}
    cleaned = validate_probe_output(good)
    assert "memory" not in cleaned and "memory" in cleaned["errors"]


def test_non_linux_output_passes_with_only_system() -> None:
    out = {"probe": 1, "system": {"hostname": "mac", "os": "Darwin", "kernel": "23.0",
                                  "arch": "arm64", "boot_time": None, "uptime_s": None,
                                  "python": "3.9.6"},
           "errors": {"platform": "UnsupportedPlatform: darwin"}}
    assert validate_probe_output(out) == out


def test_errors_must_be_strings_and_bounded(good: dict) -> None:
    good["errors"] = {"cpu": {"nested": True}}
    with pytest.raises(InvalidProbeOutput, match="errors"):
        validate_probe_output(copy.deepcopy(good))
    good["errors"] = {f"disks:/m{i}": "x" for i in range(5000)}
    with pytest.raises(InvalidProbeOutput, match="errors"):
        validate_probe_output(good)


def test_checks_pass_through_but_bounded(good: dict) -> None:
    good["checks"] = {"http": {"state": "OK", "anything": [1, 2, {"deep": None}]}}
    assert validate_probe_output(copy.deepcopy(good))["checks"] == good["checks"]
    good["checks"] = {f"check{i}": {"output": "x" * 65536} for i in range(8)}  # 8 full ones
    assert len(validate_probe_output(copy.deepcopy(good))["checks"]) == 8
    good["checks"] = {"big": "x" * (3 << 20)}
    with pytest.raises(InvalidProbeOutput, match="checks"):
        validate_probe_output(copy.deepcopy(good))
    good["checks"] = {"nan": math.nan}
    with pytest.raises(InvalidProbeOutput, match="checks"):
        validate_probe_output(copy.deepcopy(good))
    good["checks"] = ["not", "an", "object"]
    with pytest.raises(InvalidProbeOutput, match="checks"):
        validate_probe_output(good)


def test_null_percent_is_allowed_where_the_probe_sends_it(good: dict) -> None:
    good["cpu"]["percent"] = None
    good["cpu"]["per_core"] = None
    good["processes"]["top_cpu"][0]["cpu_percent"] = None
    validate_probe_output(good)


def test_integral_floats_become_ints(good: dict) -> None:
    good["memory"]["total"] = 16777216000.0
    cleaned = validate_probe_output(good)
    assert cleaned["memory"]["total"] == 16777216000
    assert isinstance(cleaned["memory"]["total"], int)


ODD_VALUES = [0, 1, -1, 2.5, -0.5, 100, 100.0, 100.5, 2**64, 2**64 + 1, 3.0, math.nan, math.inf,
              -math.inf, True, False, None, "", "abc", "abcdef", "é", "a\x01", "a\ud800", [], {}]


@pytest.mark.parametrize("value", ODD_VALUES, ids=repr)
def test_a_record_judges_each_field_as_the_field_check_alone(value: Any) -> None:
    """A record checks plain numbers and short printable strings itself, without calling its
    fields' checks: it must accept, clean and refuse exactly what those checks do."""
    from collector.metrics.schema import counter, number, percent, record, string

    fields = {"n": number(), "p": percent(nullable=True), "c": counter(), "s": string(5),
              "m": number(None, None)}
    checked = record(fields)
    for key, check in fields.items():
        try:
            alone: Any = ("ok", check(value, key))
        except InvalidProbeOutput as exc:
            alone = ("refused", str(exc))
        whole = {k: 1 if k != "s" else "x" for k in fields} | {key: value}
        try:
            within: Any = ("ok", checked(whole, "r")[key])
        except InvalidProbeOutput as exc:
            within = ("refused", str(exc).replace("r.", "", 1))
        assert within[0] == alone[0], (key, value, within, alone)
        if alone[0] == "ok":
            assert within[1] == alone[1] or (within[1] != within[1] and alone[1] != alone[1])
            assert type(within[1]) is type(alone[1])
        else:
            assert within[1] == alone[1]
