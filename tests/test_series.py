"""Series extraction and downsampling: what becomes a chart line, where it breaks, peaks kept."""

from __future__ import annotations

from datetime import timedelta

import pytest
from chart_fixtures import T0, every, sample

from collector.metrics import series


def _rows(samples, metric):
    return series.rows_from_samples(samples, series.metric_spec(metric))


def _lines(samples, metric, width=60, step=60.0, span=timedelta(hours=1)):
    start = T0.timestamp()
    return series.downsample(_rows(samples, metric), start, start + span.total_seconds(),
                             width, step)


def test_every_metric_extracts_from_a_full_sample() -> None:
    s = sample(T0, cpu=12.5, memory=40.0, swap=1.5, disks=[("/", 50.0), ("/var", 80.0)],
               net=[("eth0", 1000.0, 2000.0), ("eth1", 10.0, 20.0)], load=(0.5, 0.4, 0.3),
               pressure=4.0)
    assert series.extract_all(s) == {
        "cpu": {"cpu": 12.5}, "memory": {"memory": 40.0}, "swap": {"swap": 1.5},
        "disk": {"/": 50.0, "/var": 80.0},
        "load": {"load1": 0.5, "load5": 0.4, "load15": 0.3},
        "net": {"rx": 1010.0, "tx": 2020.0},
        "pressure": {"cpu some": 4.0, "memory some": 4.0, "memory full": 2.0, "io some": 4.0,
                     "io full": 2.0},
    }


def test_missing_or_malformed_sections_give_no_values_not_errors() -> None:
    s = {"v": 1, "ts": "2026-11-21T12:00:00Z", "ok": True,
         "cpu": {"percent": "high", "load": [0.5]},      # a string, and a short load list
         "memory": None, "disks": {"mount": "/"},         # wrong types
         "net": [{"iface": "eth0"}, "junk"], "swap": {"percent": True}}  # no rates, a bool
    assert series.extract_all(s) == {"load": {"load1": 0.5}}
    assert series.extract_all({"v": 1, "ts": "2026-11-21T12:00:00Z"}) == {}


def test_net_sums_interfaces_without_loopback() -> None:
    s = sample(T0, net=[("eth0", 100.0, 1.0), ("lo", 5000.0, 5000.0), ("wg0", 50.0, 2.0)])
    assert series.metric_spec("net").extract(s) == {"rx": 150.0, "tx": 3.0}


def test_counter_reset_gives_no_point_never_a_negative_rate() -> None:
    # The collector writes rx_bps null after a counter reset; a bad negative is dropped too.
    reset = sample(T0, net=[("eth0", None, 10.0), ("eth1", 5.0, 5.0)])
    negative = sample(T0, net=[("eth0", -1e9, 10.0)])
    assert series.metric_spec("net").extract(reset) == {"tx": 15.0}
    assert series.metric_spec("net").extract(negative) == {"tx": 10.0}
    lines = _lines([sample(t, net=[("eth0", None if i == 2 else 100.0, 1.0)])
                    for i, t in enumerate(every(T0, 5))], "net")
    rx = next(line for line in lines if line.label == "rx")
    assert all(v is None or v >= 0 for _, v in rx.peak)
    assert len([v for _, v in rx.peak if v is not None]) == 4


def test_combined_numbers() -> None:
    s = sample(T0, disks=[("/", 50.0), ("/var", 91.0)], net=[("eth0", 100.0, 20.0)],
               load=(3.0, 2.0, 1.0))
    assert series.metric_spec("disk").combine(series.metric_spec("disk").extract(s)) == 91.0
    assert series.metric_spec("net").combine(series.metric_spec("net").extract(s)) == 120.0
    assert series.metric_spec("load").combine(series.metric_spec("load").extract(s)) == 3.0


def test_check_perfdata_is_one_line_per_label_with_units() -> None:
    checks = {"http": {"state": 0, "output": "OK", "long_output": "",
                       "perf": {"time": {"value": 250.0, "uom": "ms"},
                                "size": {"value": 2.0, "uom": "KB"},
                                "unknown": {"value": None, "uom": ""}}}}
    s = sample(T0, checks=checks)
    spec = series.metric_spec("check.http")
    assert spec.extract(s) == {"time": 0.25, "size": 2048.0}
    assert spec.unit_of(s) == series.SECONDS
    assert series.extract_all(s)["check.http"] == {"time": 0.25, "size": 2048.0}


@pytest.mark.parametrize("name", ["bogus", "check.", "check.../etc", "CPU", ""])
def test_unknown_metric_is_a_value_error(name: str) -> None:
    with pytest.raises(ValueError):
        series.metric_spec(name)


def test_a_ten_minute_hole_is_a_gap() -> None:
    times = every(T0, 10) + every(T0 + timedelta(minutes=20), 10)
    (line,) = _lines([sample(t) for t in times], "cpu")
    values = [v for _, v in line.peak]
    assert values.count(None) == 1
    assert values.index(None) == 10  # between the two runs, not at an edge


def test_jitter_of_a_missed_minute_is_not_a_gap() -> None:
    # cron may start a pass at :59 and the next at :01: one empty minute bucket.
    times = [T0 + timedelta(seconds=s) for s in (0, 60, 119, 241, 300)]
    (line,) = _lines([sample(t) for t in times], "cpu")
    assert None not in [v for _, v in line.peak]


def test_a_failed_pass_breaks_the_line() -> None:
    samples = [sample(t, ok=i != 5) for i, t in enumerate(every(T0, 10))]
    (line,) = _lines(samples, "cpu")
    assert [v for _, v in line.peak].count(None) == 1


def test_a_mount_that_disappears_breaks_only_its_own_line() -> None:
    samples = [sample(t, disks=[("/", 50.0)] + ([("/mnt", 10.0)] if i < 5 or i > 15 else []))
               for i, t in enumerate(every(T0, 20))]
    lines = {line.label: line for line in _lines(samples, "disk")}
    assert [v for _, v in lines["/mnt"].peak].count(None) == 1
    assert None not in [v for _, v in lines["/"].peak]


def test_downsampling_keeps_the_peak_and_the_average() -> None:
    samples = [sample(t, cpu=99.0 if i == 1234 else 5.0) for i, t in enumerate(every(T0, 2880))]
    (line,) = _lines(samples, "cpu", width=1800, span=timedelta(days=2))
    assert len(line.peak) == 96
    assert max(v for _, v in line.peak) == 99.0
    spike_bucket = next(v for _, v in line.mean if v is not None and v > 5.0)
    assert spike_bucket == pytest.approx(5.0 + 94.0 / 30)


def test_estimate_step_is_the_usual_spacing() -> None:
    times = [t.timestamp() for t in every(T0, 10, step_s=300)]
    assert series.estimate_step(times, 60.0) == 300.0
    assert series.estimate_step([], 60.0) == 60.0


def test_timestamps_parse_strictly() -> None:
    assert series.ts_seconds("2026-11-21T12:00:00Z") == T0.timestamp()
    for bad in ("2026-13-21T12:00:00Z", "2026-11-21 12:00:00Z", None, 5, "2026-11-21T12:00:00"):
        assert series.ts_seconds(bad) is None
