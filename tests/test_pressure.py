"""The pressure family (Linux PSI), followed from the probe's parser to the page and the mail.

It is the family added through the registry alone (docs/architecture.md, "How to add a metric
family"), so these tests also show that everything the registry drives picks a family up:
the schema gate, thresholds in hosts.toml, the alert rules, the host verdict, charts and pages.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from chart_fixtures import T0
from chart_fixtures import sample as chart_sample
from mail_fixtures import make_config, ok_sample
from test_alert_rules import Engine, events
from web_fixtures import NOW, make_site
from web_fixtures import sample as web_sample

from collector import config as config_mod
from collector.errors import ConfigError
from collector.metrics.gate import InvalidProbeOutput, validate_probe_output
from collector.views import charts
from collector.views.health import host_status
from remote_probe import probe

ROOT = Path(__file__).resolve().parent.parent
PSI_TEXT = ("some avg10=14.20 avg60=12.05 avg300=6.10 total=98765432\n"
            "full avg10=7.10 avg60=6.00 avg300=3.05 total=45678901\n")


def psi(memory: float = 0.0, io: float = 0.0, cpu: float = 0.0) -> dict:
    """A sample's ``pressure`` section with these 60-second "some" averages."""
    def line(value: float) -> dict:
        return {"avg10": value, "avg60": value, "avg300": value, "total": 1}
    return {"cpu": {"some": line(cpu)}, "memory": {"some": line(memory), "full": line(0.0)},
            "io": {"some": line(io), "full": line(0.0)}}


# -- the probe ------------------------------------------------------------------------------------
def test_parser_reads_some_and_full_in_percent_and_microseconds() -> None:
    parsed = probe.parse_pressure(PSI_TEXT)
    assert parsed == {"some": {"avg10": 14.2, "avg60": 12.05, "avg300": 6.1, "total": 98765432},
                      "full": {"avg10": 7.1, "avg60": 6.0, "avg300": 3.05, "total": 45678901}}


def test_parser_skips_truncated_and_foreign_lines() -> None:
    text = "some avg10=1.00 avg60=2.00 avg300=3.00 total=4\nfull avg10=0.5\nnoise x=1\n"
    assert probe.parse_pressure(text) == {
        "some": {"avg10": 1.0, "avg60": 2.0, "avg300": 3.0, "total": 4}}


def _proc_root(tmp_path: Path, files: dict[str, str]) -> str:
    for name, text in files.items():
        path = tmp_path / "pressure" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(tmp_path)


def test_a_kernel_without_psi_has_no_section_and_no_error(tmp_path: Path) -> None:
    ctx = probe.Context(dict(probe.DEFAULTS, proc_root=str(tmp_path)))
    assert probe.collect_pressure(ctx) is None
    assert ctx.errors == {}


def test_cpu_keeps_only_some_and_missing_files_are_left_out(tmp_path: Path) -> None:
    root = _proc_root(tmp_path, {"cpu": PSI_TEXT, "memory": PSI_TEXT})
    result = probe.collect_pressure(probe.Context(dict(probe.DEFAULTS, proc_root=root)))
    assert sorted(result) == ["cpu", "memory"]
    assert list(result["cpu"]) == ["some"]
    assert sorted(result["memory"]) == ["full", "some"]


def test_an_unreadable_pressure_file_is_an_error_of_this_family_alone(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        # root reads a mode-000 file anyway: a directory where the file should be fails the
        # same way (an OSError that is not "no PSI").
        (tmp_path / "pressure" / "io").mkdir(parents=True)
    else:
        _proc_root(tmp_path, {"io": PSI_TEXT})
        (tmp_path / "pressure" / "io").chmod(0)
    out = probe.collect({"proc_root": str(tmp_path), "cpu_sample_s": 0}, platform="linux")
    assert "pressure" not in out and "pressure" in out["errors"]
    assert "cpu" in out["errors"]  # the other families failed on their own (no /proc/stat)


def test_this_machine_reports_pressure_the_same_way_locally_and_by_the_probe() -> None:
    if not os.path.isdir("/proc/pressure"):
        pytest.skip("this kernel has no PSI (/proc/pressure)")
    from collector.transport.local import collect_local

    local = collect_local({"cpu_sample_s": 0})
    remote = probe.collect({"cpu_sample_s": 0})
    validate_probe_output(local)
    assert sorted(local["pressure"]) == sorted(remote["pressure"])
    for resource, kinds in local["pressure"].items():
        assert sorted(kinds) == sorted(remote["pressure"][resource])
        # A counter: the later reading is never below the earlier one.
        assert remote["pressure"][resource]["some"]["total"] >= kinds["some"]["total"]


# -- the schema gate ------------------------------------------------------------------------------
@pytest.fixture
def good() -> dict:
    out = json.loads((Path(__file__).parent / "fixtures" / "proc" / "normal-multicore"
                      / "expected.json").read_text())
    out["system"].update(arch="x86_64", python="3.11.2")
    out["errors"] = {}
    return out


def test_the_gate_keeps_pressure_and_allows_its_absence(good: dict) -> None:
    assert validate_probe_output(good)["pressure"]["memory"]["some"]["avg60"] == 12.05
    del good["pressure"]
    assert "pressure" not in validate_probe_output(good)


@pytest.mark.parametrize("path,value,reason", [
    (("memory", "some", "avg60"), 250.0, "outside"),
    (("io", "full", "total"), -5, "outside"),
    (("cpu", "some", "avg10"), "high", "expected a number"),
    (("memory", "some"), [], "expected an object"),
])
def test_the_gate_refuses_bad_pressure(good: dict, path: tuple, value: object,
                                       reason: str) -> None:
    target = good["pressure"]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(InvalidProbeOutput, match=reason) as info:
        validate_probe_output(good)
    assert info.value.reason.startswith("pressure.")


# -- thresholds and alerts ------------------------------------------------------------------------
def test_default_thresholds_memory_and_io_on_cpu_off(tmp_path: Path) -> None:
    thresholds = make_config(tmp_path).thresholds
    assert thresholds.for_metric("pressure", "memory") == config_mod.Level(10, 30, 2)
    assert thresholds.for_metric("pressure", "io") == config_mod.Level(10, 30, 2)
    assert thresholds.for_metric("pressure", "cpu") == config_mod.Level(None, None, 2)


def test_thresholds_per_resource_per_host_and_switched_off(tmp_path: Path) -> None:
    config = make_config(tmp_path, hosts=("db1", "web1"), extra=(
        "[thresholds]\npressure = { cpu = { warning = 50, critical = 80 }, "
        "io = { critical = false } }"), host_options={
        "web1": "thresholds = { pressure = { memory = { warning = 20, critical = 40 } } }"})
    db1 = config.thresholds_for(config.host("db1"))
    web1 = config.thresholds_for(config.host("web1"))
    assert db1.for_metric("pressure", "cpu") == config_mod.Level(50, 80, 2)
    assert db1.for_metric("pressure", "io") == config_mod.Level(10, None, 2)
    assert web1.for_metric("pressure", "memory") == config_mod.Level(20, 40, 2)
    assert web1.for_metric("pressure", "cpu") == config_mod.Level(50, 80, 2)  # inherited


def test_a_typo_in_pressure_thresholds_names_file_table_and_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        make_config(tmp_path, extra="[thresholds]\npressure = { memroy = { warning = 5 } }")
    assert re.search(r"hosts\.toml: \[thresholds\]\.pressure: unknown key 'memroy' "
                     r"\(did you mean 'memory'\?\)", str(info.value))


def test_memory_pressure_alerts_after_two_passes_and_recovers(tmp_path: Path) -> None:
    engine = Engine(tmp_path)
    assert engine.run(db1=engine.ok(pressure=psi(memory=12.0))) == []
    notes = engine.run(db1=engine.ok(pressure=psi(memory=12.0)))
    assert events(notes) == [("problem", "pressure", "memory", "warning")]
    assert notes[0].message == "pressure memory on db1 is at 12% (warning at 10%)"
    notes = engine.run(db1=engine.ok(pressure=psi(memory=35.0)))
    notes += engine.run(db1=engine.ok(pressure=psi(memory=35.0)))
    assert events(notes) == [("escalation", "pressure", "memory", "critical")]
    notes = engine.run(db1=engine.ok(pressure=psi(memory=1.0)))
    assert events(notes) == [("recovery", "pressure", "memory", "ok")]


def test_cpu_pressure_alone_never_alerts_by_default(tmp_path: Path) -> None:
    engine = Engine(tmp_path)
    for _ in range(5):
        assert engine.run(db1=engine.ok(pressure=psi(cpu=95.0))) == []


def test_pressure_alerts_of_a_host_that_lost_psi_are_no_longer_reported(tmp_path: Path) -> None:
    """Rebooted with psi=0: the section is gone, with no error.  The alert must not stay
    active for ever: it ends as a mount that disappears does."""
    engine = Engine(tmp_path)
    engine.run(db1=engine.ok(pressure=psi(io=50.0)))
    assert events(engine.run(db1=engine.ok(pressure=psi(io=50.0)))) == [
        ("problem", "pressure", "io", "critical")]
    notes = engine.run(db1=engine.ok())
    assert events(notes) == [("recovery", "pressure", "io", "ok")]
    assert notes[0].message == "pressure io on db1 is no longer reported"
    assert engine.state["hosts"]["db1"]["alerts"] == {}
    assert engine.run(db1=engine.ok()) == []


def test_pressure_alerts_stay_while_the_probe_says_pressure_failed(tmp_path: Path) -> None:
    engine = Engine(tmp_path)
    engine.run(db1=engine.ok(pressure=psi(io=50.0)))
    engine.run(db1=engine.ok(pressure=psi(io=50.0)))
    for errors in ({"pressure": "PermissionError: /proc/pressure/io"},
                   {"platform": "UnsupportedPlatform: freebsd"}):
        assert engine.run(db1=engine.ok(errors=errors)) == []  # unknown, not over
    assert engine.state["hosts"]["db1"]["alerts"]["pressure:io"]["level"] == "critical"


# -- what people see ------------------------------------------------------------------------------
def test_host_status_and_its_json_carry_pressure(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    status = host_status("db1", ok_sample("db1", NOW, pressure=psi(memory=14.0, io=3.0)), [],
                         config.thresholds, NOW, 60)
    data = status.as_dict()
    assert (data["pressure"], data["pressure_resource"]) == (14.0, "memory")
    assert data["levels"]["pressure"] == "warning"
    assert status.status == "warning" and "warning: pressure memory 14 %" in status.reasons


def test_osmon_status_json_shows_pressure(tmp_path: Path) -> None:
    import subprocess
    import sys

    site = make_site(tmp_path, [{"name": "central", "local": True}])
    site.store.append("central", web_sample("central", NOW) | {"pressure": psi(io=2.5)})
    out = subprocess.run([sys.executable, "-m", "collector", "--config",
                          str(site.config.path), "status", "--json"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, check=True).stdout
    host = json.loads(out)["hosts"][0]
    assert (host["pressure"], host["pressure_resource"], host["levels"]["pressure"]) == (
        2.5, "io", "ok")


def test_host_and_fleet_charts_draw_pressure(tmp_path: Path) -> None:
    site = make_site(tmp_path, [{"name": "web1"}, {"name": "web2"}])
    for minute in range(30):
        for host, value in (("web1", 5.0), ("web2", 20.0)):
            site.store.append(host, chart_sample(T0.replace(hour=22, minute=10 + minute),
                                                 host=host, pressure=value))
    client = site.client()
    one = client.get("/hosts/web1/charts/pressure.svg?range=1h")
    fleet = client.get("/charts/pressure.svg?range=1h")
    assert one.status_code == fleet.status_code == 200
    for label in ("memory some", "io full", "cpu some"):
        assert label in one.get_data(as_text=True)
    assert "web2" in fleet.get_data(as_text=True)
    assert charts.METRICS[-1] == "pressure"


def test_host_page_has_a_pressure_line_and_chart_only_where_the_host_has_psi(
        tmp_path: Path) -> None:
    site = make_site(tmp_path, [{"name": "web1"}, {"name": "old"}])
    site.store.append("web1", web_sample("web1", NOW) | {"pressure": psi(memory=12.5)})
    site.store.append("old", web_sample("old", NOW))
    html = site.client().get("/hosts/web1").get_data(as_text=True)
    assert re.search(r"<dt>Pressure</dt><dd [^>]*class=\"level-warning\">12\.5 % "
                     r"<span class=\"mount\">memory</span></dd>", html)
    assert "/hosts/web1/charts/pressure.svg" in html
    old = site.client().get("/hosts/old").get_data(as_text=True)
    assert "/hosts/old/charts/pressure.svg" not in old
