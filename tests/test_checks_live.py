"""Custom checks through the real sshd: Debian's monitoring plugins run by `osmon collect`.

A pass (``collector.collect.run_pass``) runs every ``[[checks]]`` table of the host inside the
one SSH connection of the probe; the stored sample is read back from the data directory as the
dashboard and the alert engine read it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psutil
import pytest
import sshd as harness
from process_fixtures import is_dead, wait_for

from collector.alerts import rules as alert_rules
from collector.config import Config
from collector.metrics.nagios import OK, UNKNOWN, WARNING
from collector.passes import collect

NOW = datetime(2026, 11, 21, 22, 41, 0, tzinfo=timezone.utc)
PLUGINS = Path("/usr/lib/nagios/plugins")
Inventory = Callable[..., Config]
HANG_S = 2


@pytest.fixture(autouse=True)
def _plugins_installed() -> None:
    for name in ("check_load", "check_disk", "check_procs"):
        if not (PLUGINS / name).exists():
            pytest.fail(f"{PLUGINS / name} is missing: these tests run Debian's real plugins "
                        "(apt-get install monitoring-plugins-basic; .ci/test installs it)")


def toml_checks(*tables: dict[str, Any]) -> str:
    """``[[checks]]`` tables; JSON strings and lists are valid TOML values."""
    lines = []
    for table in tables:
        lines += ["", "[[checks]]"] + [f"{key} = {json.dumps(value)}"
                                       for key, value in table.items()]
    return "\n".join(lines) + "\n"


def stored_samples(config: Config, host: str) -> list[dict[str, Any]]:
    return [json.loads(line) for path in sorted(
        (config.settings.data_dir / "hosts" / host).glob("*.jsonl"))
        for line in path.read_bytes().splitlines()]


def test_real_plugins_a_hang_and_a_missing_one_in_one_pass(
        inventory: Inventory, sshd: harness.Sshd) -> None:
    # In the sshd's work directory: the test account cannot enter pytest's tmp_path.
    hang_plugin = sshd.script("check_osmon_hang", "sleep 300 &\necho \"about to hang (child $!)\"\n"
                                                  "wait\n")
    config = inventory(["web1"], extra=toml_checks(
        {"name": "load", "command": [str(PLUGINS / "check_load"), "-w", "500,400,300",
                                     "-c", "1000,800,600"]},
        {"name": "disk_root", "command": [str(PLUGINS / "check_disk"), "-w", "20%", "-c",
                                          "10%", "-p", "/"]},
        {"name": "procs", "command": [str(PLUGINS / "check_procs")]},
        {"name": "hang", "command": [str(hang_plugin)], "timeout_s": HANG_S},
        {"name": "missing", "command": [str(PLUGINS / "check_osmon_does_not_exist")]},
    ))
    result = collect.run_pass(config, now=NOW)
    assert (result.ok, result.failed) == (1, 0)  # broken checks never fail the host
    [sample] = stored_samples(config, "web1")
    assert sample["ok"] is True and sample["errors"] == {}
    checks = sample["checks"]
    assert list(checks) == ["load", "disk_root", "procs", "hang", "missing"]

    load = checks["load"]
    assert load["state"] == OK and load["output"].startswith("LOAD OK - total load average:")
    load1 = os.getloadavg()[0]
    assert load["perf"]["load1"]["value"] == pytest.approx(load1, abs=max(1.0, load1 * 0.5))
    assert load["perf"]["load1"]["warn"] == "500.000"
    assert set(load["perf"]) >= {"load1", "load5", "load15"}

    disk = checks["disk_root"]
    usage = psutil.disk_usage("/")
    free_pct = 100.0 * usage.free / usage.total
    expected = OK if free_pct > 20 else (WARNING if free_pct > 10 else 2)
    assert disk["state"] == expected
    assert disk["output"].startswith("DISK ")
    root = disk["perf"]["/"]
    assert root["uom"] in ("B", "MB", "MiB")
    scale = {"B": 1, "MB": 1 << 20, "MiB": 1 << 20}[root["uom"]]
    assert root["max"] * scale == pytest.approx(usage.total, rel=0.02)
    assert root["value"] * scale == pytest.approx(usage.used, rel=0.05, abs=200 << 20)

    procs = checks["procs"]
    assert procs["state"] == OK and procs["output"].startswith("PROCS OK:")
    assert procs["perf"]["procs"]["value"] == pytest.approx(len(psutil.pids()), abs=40)

    hang = checks["hang"]
    assert hang["state"] == UNKNOWN
    message = re.fullmatch(rf"timed out after {HANG_S} s, killed \(output: about to hang "
                           r"\(child (\d+)\)\)", hang["output"])
    assert message, hang["output"]
    child = int(message.group(1))
    wait_for(lambda: is_dead(child), f"the hung plugin's child {child} to die on the host")
    assert HANG_S <= hang["duration_s"] < HANG_S + 1.5
    assert checks["missing"]["state"] == UNKNOWN
    assert checks["missing"]["output"] == (
        f"command not found: {PLUGINS / 'check_osmon_does_not_exist'}")
    # The checks ran side by side: the hang costs its timeout once, on top of the probe.
    assert sample["collect"]["duration_s"] < HANG_S + 6
    assert all(checks[name]["duration_s"] < HANG_S for name in ("load", "disk_root", "procs"))


def test_flooding_quitting_and_tricky_plugins_through_sshd(
        inventory: Inventory, sshd: harness.Sshd) -> None:
    """Over the real SSH channel: 8 MB from one plugin is cut at its cap and does not push the
    probe's answer past what the collector accepts; exit 3 and tricky perfdata arrive intact."""
    flood = sshd.script("check_osmon_flood",
                        "echo 'OK - lots'; head -c 8000000 /dev/zero | tr '\\0' x; exit 0\n")
    quits = sshd.script("check_osmon_unknown", "echo 'QUEUE UNKNOWN - no socket'; exit 3\n")
    tricky = sshd.script("check_osmon_tricky",
                         "echo \"QUEUE WARNING - 3 slow | 'queue length'=12;10;20;0\"\n"
                         "echo 'queue mail: 12 waiting'\n"
                         "echo \"queue spool: 7 | 'time spent'=250ms;;;0 ratio=99.5%\"\n"
                         "exit 1\n")
    config = inventory(["web1"], extra=toml_checks(
        {"name": "flood", "command": [str(flood)], "max_output": 65536},
        {"name": "unknown", "command": [str(quits)]},
        {"name": "tricky", "command": [str(tricky)]},
        {"name": "procs", "command": [str(PLUGINS / "check_procs")]},
    ))
    result = collect.run_pass(config, now=NOW)
    assert (result.ok, result.failed) == (1, 0)
    [sample] = stored_samples(config, "web1")
    checks = sample["checks"]
    assert checks["flood"]["state"] == UNKNOWN
    assert checks["flood"]["output"].startswith("more than 65536 bytes of output, killed")
    assert checks["unknown"]["state"] == UNKNOWN
    assert checks["unknown"]["output"] == "QUEUE UNKNOWN - no socket"  # its words, not ours
    assert checks["tricky"]["state"] == WARNING
    assert checks["tricky"]["output"] == "QUEUE WARNING - 3 slow"
    assert checks["tricky"]["perf"] == {
        "queue length": {"value": 12.0, "uom": "", "warn": "10", "crit": "20", "min": 0.0},
        "time spent": {"value": 250.0, "uom": "ms", "min": 0.0},
        "ratio": {"value": 99.5, "uom": "%"}}
    assert checks["procs"]["state"] == OK
    assert sample["cpu"]["count"] == psutil.cpu_count()  # the metrics came through too


def test_checks_go_only_to_the_hosts_that_have_them(inventory: Inventory) -> None:
    config = inventory(["web1", "db1"], hosts={"db1": {"tags": ["db"]}}, extra=toml_checks(
        {"name": "procs_db", "command": [str(PLUGINS / "check_procs")], "tags": ["db"]},
        {"name": "load_web", "command": [str(PLUGINS / "check_load"), "-w", "500,400,300",
                                         "-c", "1000,800,600"], "hosts": ["web1"]},
    ))
    collect.run_pass(config, now=NOW)
    [web] = stored_samples(config, "web1")
    [db] = stored_samples(config, "db1")
    assert list(web["checks"]) == ["load_web"] and web["checks"]["load_web"]["state"] == OK
    assert list(db["checks"]) == ["procs_db"] and db["checks"]["procs_db"]["state"] == OK


def test_failing_check_becomes_an_alert_after_two_passes_and_unknown_is_not_critical(
        inventory: Inventory) -> None:
    """check_procs with a range no host satisfies is WARNING (or CRITICAL) every pass; a
    missing plugin is UNKNOWN. Both go through the alert engine with the real samples."""
    config = inventory(["web1"], extra=toml_checks(
        {"name": "few_procs", "command": [str(PLUGINS / "check_procs"), "-w", "1:1"]},
        {"name": "too_many", "command": [str(PLUGINS / "check_procs"), "-c", "1:1"]},
        {"name": "missing", "command": [str(PLUGINS / "check_osmon_does_not_exist")]},
    ))
    state: Any = alert_rules.empty_state()
    passes: list[list[alert_rules.Notification]] = []
    for index in range(2):
        now = NOW + timedelta(minutes=index)
        collect.run_pass(config, now=now)
        sample = stored_samples(config, "web1")[-1]
        assert sample["checks"]["few_procs"]["state"] == WARNING
        assert sample["checks"]["too_many"]["state"] == 2
        assert sample["checks"]["missing"]["state"] == UNKNOWN
        state, notes = alert_rules.evaluate(config, state, {"web1": sample}, now)
        passes.append([n for n in notes if n.metric == "check"])
    assert passes[0] == []  # one bad pass is not yet a problem (for = 2 passes)
    by_item = {n.item: n for n in passes[1]}
    assert set(by_item) == {"few_procs", "too_many", "missing"}
    assert by_item["few_procs"].level == "warning"
    assert by_item["few_procs"].message.startswith("check few_procs on web1 is WARNING: PROCS")
    assert by_item["too_many"].level == "critical"
    assert by_item["missing"].level == "warning"  # broken check: reported, not CRITICAL
    assert "UNKNOWN" in by_item["missing"].message
