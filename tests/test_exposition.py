"""The /metrics exposition without HTTP: node_exporter's names and units, osmon's own series,
stale and failed hosts, hostile label text, and the fast writer against prometheus_client."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

from exposition_fixtures import rich_sample
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from collector.config import Host
from collector.metrics.exports import gauge_series
from collector.metrics.family import Family
from collector.metrics.registry import FAMILIES
from collector.times import format_ts
from collector.views.exposition import OsmonCollector, Snapshot
from collector.views.exposition_render import ExpositionRenderer

NOW = datetime(2026, 11, 21, 22, 41, tzinfo=timezone.utc)
HOSTS = [Host("web1", tags=("web", "prod")), Host("db1", tags=("db",)), Host("old"),
         Host("new"), Host("odd")]
ODD_MOUNT = '/mnt/we"ird\\path\nline2 é'


def failed(host: str, ts: datetime, kind: str = "auth") -> dict[str, Any]:
    return {"v": 1, "ts": format_ts(ts), "host": host, "ok": False,
            "error": {"kind": kind, "message": "Authentication failed for monitor"},
            "collect": {"transport": "ssh", "duration_s": 1.25}}


def fleet_snapshot(**changes: Any) -> Snapshot:
    odd = rich_sample("odd", NOW, checks={"web": {
        "state": 1, "output": "slow", "long_output": "", "duration_s": 0.5,
        "perf": {"time": {"value": 0.25, "uom": "s"}, 'a "quoted" label': {"value": 3}}}})
    odd["disks"][1]["mount"] = ODD_MOUNT
    latest = {"web1": rich_sample("web1", NOW), "db1": failed("db1", NOW),
              "old": rich_sample("old", NOW - timedelta(minutes=3, seconds=1)), "new": None,
              "odd": odd}
    snapshot = Snapshot(
        now=NOW, interval_s=60, hosts=HOSTS, latest=latest,
        alerts=[{"host": "web1", "metric": "disk", "item": "/var", "level": "warning"},
                {"host": "db1", "metric": "down", "item": None, "level": "critical"},
                {"host": "old", "metric": "cpu", "item": None, "level": "critical"}],
        last_pass={"ts": "2026-11-21T22:41:00Z", "duration_s": 2.5, "hosts": 5, "ok": 3,
                   "failed": 2, "skipped": False, "shard": "1/2"},
        shard="1/2", fleet_hosts=9)
    return replace(snapshot, **changes)


def series(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a text exposition: (name, labels) -> value (timestamps must be absent)."""
    out = {}
    for family in parse_text(text):
        for sample in family.samples:
            assert sample.timestamp is None, sample
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def of(values: Mapping[tuple[str, frozenset[tuple[str, str]]], float], name: str,
       **labels: str) -> float:
    return values[(name, frozenset(labels.items()))]


def names_of(values: Mapping[tuple[str, frozenset[tuple[str, str]]], float],
             instance: str) -> set[str]:
    return {name for name, labels in values if ("instance", instance) in labels}


def same_exposition(ours: bytes, reference: bytes) -> None:
    """Line for line the same exposition: the same comments, names, labels and escaping, in
    the same order, and the same numbers (we write Python's shortest form of a float,
    "8334774272.0", where prometheus_client writes Go's "8.334774272e+09")."""
    mine, theirs = ours.decode().split("\n"), reference.decode().split("\n")
    assert len(mine) == len(theirs)
    for line, expected in zip(mine, theirs):
        if line.startswith("#") or not line:
            assert line == expected
        else:
            start, _, value = line.rpartition(" ")
            expected_start, _, expected_value = expected.rpartition(" ")
            assert (start, float(value)) == (expected_start, float(expected_value))


def test_the_fast_writer_writes_what_prometheus_client_writes_in_both_formats() -> None:
    snapshot = fleet_snapshot()
    renderer = ExpositionRenderer()
    for _ in range(2):  # the first scrape fills the cache, the second reads it
        same_exposition(renderer.render(snapshot), generate_latest(OsmonCollector(snapshot)))
        same_exposition(renderer.render(snapshot, openmetrics=True),
                        openmetrics_latest(OsmonCollector(snapshot)))
    moved = fleet_snapshot(latest=dict(snapshot.latest, web1=rich_sample("web1", NOW, step=3)))
    same_exposition(renderer.render(moved), generate_latest(OsmonCollector(moved)))
    # Valid OpenMetrics: its strict parser reads it whole, up to "# EOF".
    families = {f.name: f for f in parse_om(renderer.render(moved, True).decode())}
    assert families["node_cpu_seconds"].type == "counter"
    assert families["osmon_host"].type == "info"


def test_node_exporter_names_units_and_labels_for_what_osmon_has() -> None:
    snapshot = fleet_snapshot()
    values = series(ExpositionRenderer().render(snapshot).decode())
    sample = snapshot.latest["web1"]
    assert sample is not None
    web1 = {"instance": "web1"}
    assert of(values, "node_memory_MemTotal_bytes", **web1) == sample["memory"]["total"]
    assert of(values, "node_memory_MemAvailable_bytes", **web1) == 5000000000
    assert of(values, "node_memory_Buffers_bytes", **web1) == 120000000
    assert of(values, "node_memory_SwapTotal_bytes", **web1) == 2147483648
    assert of(values, "node_memory_SwapFree_bytes", **web1) == 2147483648 - 1048576
    assert [of(values, f"node_load{m}", **web1) for m in (1, 5, 15)] == [0.12, 0.2, 0.31]
    root = dict(web1, mountpoint="/", device="/dev/vda1", fstype="ext4")
    disk = sample["disks"][0]
    assert of(values, "node_filesystem_size_bytes", **root) == disk["total"]
    assert of(values, "node_filesystem_avail_bytes", **root) == disk["free"]  # f_bavail
    assert of(values, "node_filesystem_free_bytes", **root) == disk["total"] - disk["used"]
    assert of(values, "osmon_filesystem_full_in_seconds", **root) == 18000  # 5 h
    assert len([k for k in values if k[0] == "osmon_filesystem_full_in_seconds"
                and dict(k[1]).get("instance") == "web1"]) == 1  # the others do not fill
    core2 = sample["cpu"]["per_core_times"][2]
    for mode in ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"):
        assert of(values, "node_cpu_seconds_total", cpu="2", mode=mode, **web1) == core2[mode]
    eth1 = sample["net"][1]
    for name, key in (("receive_bytes", "rx_bytes"), ("transmit_bytes", "tx_bytes"),
                      ("receive_packets", "rx_packets"), ("transmit_drop", "tx_drops"),
                      ("receive_errs", "rx_errors")):
        assert of(values, f"node_network_{name}_total", device="eth1", **web1) == eth1[key]
    vda = dict(web1, device="vda")
    assert of(values, "node_disk_read_bytes_total", **vda) == 10 ** 9
    assert of(values, "node_disk_written_bytes_total", **vda) == 2 * 10 ** 9
    assert of(values, "node_disk_reads_completed_total", **vda) == 30000
    assert of(values, "node_disk_io_time_seconds_total", **vda) == 500.0  # from busy_ms
    # PSI totals are microseconds in the sample, seconds in Prometheus.
    assert of(values, "node_pressure_cpu_waiting_seconds_total", **web1) == 123.456789
    assert of(values, "node_pressure_memory_waiting_seconds_total", **web1) == 2.5
    assert of(values, "node_pressure_memory_stalled_seconds_total", **web1) == 1.5
    assert of(values, "node_pressure_io_waiting_seconds_total", **web1) == 45.0
    assert of(values, "node_pressure_io_stalled_seconds_total", **web1) == 30.0
    assert of(values, "node_boot_time_seconds", **web1) == 1763700000
    assert of(values, "node_uname_info", machine="x86_64", nodename="web1.example.org",
              release="6.1.0-18-amd64", sysname="Linux", **web1) == 1
    text = ExpositionRenderer().render(snapshot).decode()
    assert "# TYPE node_cpu_seconds_total counter" in text
    assert "# TYPE node_memory_MemTotal_bytes gauge" in text
    assert "# TYPE node_uname_info gauge" in text  # a gauge, as node_exporter has it


def test_osmon_series_per_host_and_for_the_collector() -> None:
    values = series(ExpositionRenderer().render(fleet_snapshot()).decode())
    assert {i: of(values, "osmon_up", instance=i) for i in ("web1", "db1", "old", "new", "odd")} \
        == {"web1": 1, "db1": 0, "old": 0, "new": 0, "odd": 1}
    assert of(values, "osmon_sample_age_seconds", instance="web1") == 0
    assert of(values, "osmon_collect_duration_seconds", instance="web1") == 0.41
    assert of(values, "osmon_scrape_error_info", instance="db1", kind="auth") == 1
    assert of(values, "osmon_collect_duration_seconds", instance="db1") == 1.25
    assert of(values, "osmon_host_info", instance="web1", tags="prod,web") == 1
    assert of(values, "osmon_alert_active", instance="web1", metric="disk", item="/var",
              level="warning") == 1
    assert of(values, "osmon_alert_active", instance="db1", metric="down", item="",
              level="critical") == 1
    assert of(values, "osmon_check_state", instance="odd", check="web") == 1
    assert of(values, "osmon_check_perf", instance="odd", check="web", label="time",
              uom="s") == 0.25
    assert of(values, "osmon_check_perf", instance="odd", check="web",
              label='a "quoted" label', uom="") == 3
    assert of(values, "osmon_collector_info", shard="1/2", version="0.1.0") == 1
    assert (of(values, "osmon_hosts"), of(values, "osmon_fleet_hosts")) == (5, 9)
    assert of(values, "osmon_last_pass_timestamp_seconds") == NOW.timestamp()
    assert of(values, "osmon_last_pass_duration_seconds") == 2.5
    assert of(values, "osmon_last_pass_hosts", result="failed") == 2
    assert of(values, "osmon_last_pass_skipped") == 0
    # A failed host has no values of its own; its previous ones go stale in Prometheus.
    assert names_of(values, "db1") == {"osmon_up", "osmon_sample_age_seconds",
                                       "osmon_collect_duration_seconds", "osmon_host_info",
                                       "osmon_scrape_error_info", "osmon_alert_active"}


def test_a_stale_host_shows_only_that_it_is_down_and_how_old_its_sample_is() -> None:
    """Three intervals and a second old: the dashboard's "stale", the same function."""
    values = series(ExpositionRenderer().render(fleet_snapshot()).decode())
    assert names_of(values, "old") == {"osmon_up", "osmon_sample_age_seconds",
                                       "osmon_host_info"}
    assert of(values, "osmon_sample_age_seconds", instance="old") == 181
    assert names_of(values, "new") == {"osmon_up", "osmon_host_info"}  # never collected
    fresh = fleet_snapshot(now=NOW - timedelta(seconds=2))  # its sample is 179 s old then
    assert "node_cpu_seconds_total" in names_of(
        series(ExpositionRenderer().render(fresh).decode()), "old")


def test_host_text_in_labels_is_escaped_and_cannot_break_the_exposition() -> None:
    snapshot = fleet_snapshot()
    values = series(ExpositionRenderer().render(snapshot).decode())
    assert of(values, "node_filesystem_size_bytes", instance="odd", mountpoint=ODD_MOUNT,
              device="/dev/vdb1", fstype="ext4") > 0
    hostile = rich_sample("odd", NOW)
    hostile["net"].append(dict(hostile["net"][0], rx_bytes=1))  # eth0 twice
    hostile["disks"][0]["mount"] = "/bad\udcff"  # not encodable as UTF-8
    text = ExpositionRenderer().render(fleet_snapshot(
        latest=dict(snapshot.latest, odd=hostile))).decode("utf-8")
    values = series(text)
    assert of(values, "node_network_receive_bytes_total", instance="odd", device="eth0") == \
        hostile["net"][0]["rx_bytes"]  # the first one; the duplicate is dropped
    assert 'mountpoint="/bad?"' in text


def test_a_new_family_gets_its_series_without_code_in_the_exporter() -> None:
    uptime = Family(name="uptime", doc="test", exported=(gauge_series(
        "node_uptime_seconds", "Seconds since boot.",
        lambda sample: iter([((), sample["system"]["uptime_s"])])),))
    families = FAMILIES + (uptime,)
    snapshot = fleet_snapshot()
    text = ExpositionRenderer(families).render(snapshot)
    same_exposition(text, generate_latest(OsmonCollector(snapshot, families)))
    assert of(series(text.decode()), "node_uptime_seconds", instance="web1") == 86400.0


def test_the_cache_follows_new_samples_and_forgets_removed_hosts() -> None:
    renderer = ExpositionRenderer()
    snapshot = fleet_snapshot()
    renderer.render(snapshot)
    later = fleet_snapshot(hosts=HOSTS[:1], latest={"web1": rich_sample("web1", NOW, step=10)})
    values = series(renderer.render(later).decode())
    assert of(values, "node_disk_reads_completed_total", instance="web1", device="vda") == 30010
    assert names_of(values, "odd") == set()


def test_promtool_finds_nothing_wrong_but_node_exporters_own_memory_names() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: bash .ci/test installs Debian's prometheus package"
    text = ExpositionRenderer().render(fleet_snapshot())
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                            timeout=60)
    problems = (result.stdout + result.stderr).decode().strip().splitlines()
    # node_exporter's own names are camelCase (MemTotal, as in /proc/meminfo); dashboards
    # expect exactly those.
    assert problems and all(line.startswith("node_memory_") and "camelCase" in line
                            for line in problems), problems
