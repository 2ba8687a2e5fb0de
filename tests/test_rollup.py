"""Rollups: written as passes arrive, equal to aggregating the raw samples, robust to damage."""

from __future__ import annotations

import gzip
import json
import statistics
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from chart_fixtures import T0, every, rollup_files, sample, write_fast

from collector.metrics import series
from collector.store import rollup, rollup_line
from collector.store.samples import Store
from collector.times import format_ts


def _deadline() -> float:
    return time.monotonic() + 120  # liveness only: generous on a loaded machine


def _run_passes(store: Store, host: str, samples: list[dict]) -> None:
    """What `osmon collect` does each minute: store the sample, then run the hook."""
    for s in samples:
        store.append(host, s)
        rollup.on_pass(None, store, {host: s}, datetime.fromisoformat(s["ts"][:-1]),
                       _deadline())


def _varied(moment: datetime, i: int) -> dict:
    return sample(moment, cpu=float(i % 17) * 5.5, memory=30.0 + i % 7,
                  disks=[("/", 50.0 + i % 3), ("/var", 70.0 + (i % 5) / 2)],
                  net=[("eth0", 1000.0 * (i % 11), 10.0 * i), ("eth1", 5.0, 1.5)],
                  load=(i % 4 / 2, 0.5, 0.25), ok=i % 23 != 22)


def test_records_equal_the_aggregation_of_raw_samples(tmp_path: Path) -> None:
    store = Store(tmp_path)
    samples = [_varied(t, i) for i, t in enumerate(every(T0, 130))]
    _run_passes(store, "web1", samples)
    records = rollup.read_records(store, "web1", "5m", T0.timestamp(),
                                  T0.timestamp() + 86400)
    # 130 minutes: 26 buckets, the last (12:05..12:10 of the third hour) still open.
    assert len(records) == 25
    for record in records:
        start = datetime.fromisoformat(record["t"][:-1] + "+00:00")
        raw = [s for s in samples
               if format_ts(start) <= s["ts"] < format_ts(start + timedelta(minutes=5))]
        good = [s for s in raw if s["ok"]]
        assert (record["n"], record["f"]) == (len(good), len(raw) - len(good))
        cpu = [s["cpu"]["percent"] for s in good]
        assert record["m"]["cpu"]["cpu"][0] == min(cpu)
        assert record["m"]["cpu"]["cpu"][1] == pytest.approx(statistics.fmean(cpu), rel=1e-5)
        assert record["m"]["cpu"]["cpu"][2] == max(cpu)
        assert record["m"]["cpu"]["cpu"][3] == len(cpu)
        var = [d["percent"] for s in good for d in s["disks"] if d["mount"] == "/var"]
        assert record["m"]["disk"]["/var"][2] == max(var)
        worst = [max(d["percent"] for d in s["disks"]) for s in good]
        assert record["c"]["disk"][2] == max(worst)
        rx = [sum(i["rx_bps"] for i in s["net"]) for s in good]
        assert record["m"]["net"]["rx"][2] == max(rx)
    hours = rollup.read_records(store, "web1", "1h", T0.timestamp(), T0.timestamp() + 86400)
    assert [r["t"] for r in hours] == ["2026-11-21T12:00:00Z", "2026-11-21T13:00:00Z"]
    assert hours[0]["n"] + hours[0]["f"] == 60



def test_the_sparklines_read_of_a_record_line_agrees_with_its_encoder(tmp_path: Path) -> None:
    """The overview's sparklines decode only a record's head and its "c" part
    (``rollup_line.fleet_numbers``).  On the lines the passes really write, that must give
    what decoding the whole line gives: a change of the record's key order or of the line's
    spelling fails here, instead of silently emptying every sparkline.  A host with an
    interface named "c", and a bucket of failed passes only."""
    store = Store(tmp_path)
    samples = [sample(t, cpu=float(i), net=[("c", 10.0 * i, 1.0), ("eth0", 5.0, 2.0)],
                      ok=not 10 <= i < 15) for i, t in enumerate(every(T0, 21))]
    _run_passes(store, "web1", samples)
    lines = [line for body in rollup_files(tmp_path, "web1").values()
             for line in body.splitlines()]
    assert len(lines) == 4  # four 5-minute buckets closed; the hour is still open
    read = [rollup_line.fleet_numbers(line) for line in lines]
    decoded = [json.loads(line) for line in lines]
    assert read == [(r["t"], r["n"], r["c"]) for r in decoded]
    assert [n for _t, n, _c in read[:4]] == [5, 5, 0, 5] and read[2][2] == {}
    assert read[0][2]["cpu"] == [0.0, 2.0, 4.0, 5]
    assert rollup_line.fleet_numbers(lines[0][:-1]) is None  # a torn line

def test_a_bucket_is_written_only_once_the_pass_moves_past_it(tmp_path: Path) -> None:
    store = Store(tmp_path)
    _run_passes(store, "web1", [sample(t) for t in every(T0, 5)])  # 12:00 .. 12:04
    assert rollup.last_record_time(store, "web1", "5m") is None
    _run_passes(store, "web1", [sample(T0 + timedelta(minutes=5))])
    assert rollup.last_record_time(store, "web1", "5m") == T0.timestamp()
    assert rollup.last_record_time(store, "web1", "1h") is None


def test_rebuild_writes_the_same_files_as_the_passes(tmp_path: Path) -> None:
    store = Store(tmp_path)
    _run_passes(store, "web1", [_varied(t, i) for i, t in enumerate(every(T0, 130))])
    written = rollup_files(tmp_path, "web1")
    stale = tmp_path / "rollups" / "web1" / "5m" / "2020-01-01.jsonl"
    stale.write_text('{"v":1,"t":"2020-01-01T00:00:00Z","n":1}\n')
    assert rollup.rebuild(store, "web1") == 25 + 2
    assert rollup_files(tmp_path, "web1") == written
    assert not stale.exists()


def _counting_raw_reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, float]]:
    """The ranges the rollups read back from the raw samples from now on."""
    reads: list[tuple[float, float]] = []
    read_raw = rollup.read_raw
    monkeypatch.setattr(rollup, "read_raw", lambda *a: reads.append(a[2:]) or read_raw(*a))
    return reads


def test_buckets_kept_open_in_memory_write_what_the_raw_samples_give(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A long-lived process (``osmon run``) adds each sample into its host's open buckets as
    it stores it, and writes a closing bucket from there: the very bytes the raw samples give
    (rebuild), across midnight, with failed passes, without reading the raw samples back but
    for the buckets it had not seen whole: those that began before it started."""
    start = T0.replace(hour=22, minute=50)
    samples = [_varied(t, i) for i, t in enumerate(every(start, 141))]
    for earlier in samples[:10]:  # stored before this process started
        Store(tmp_path).append("web1", earlier)
    reads = _counting_raw_reads(monkeypatch)
    store = Store(tmp_path)
    _run_passes(store, "web1", samples[10:])
    written = rollup_files(tmp_path, "web1")
    assert sorted(written) == ["1h/2026-11.jsonl", "5m/2026-11-21.jsonl",
                               "5m/2026-11-22.jsonl"]
    midnight = (start + timedelta(minutes=70)).timestamp()
    assert reads and all(end <= midnight for _start, end in reads)  # none after the 23:00s
    assert rollup.rebuild(store, "web1") == 28 + 3
    assert rollup_files(tmp_path, "web1") == written


def test_a_new_hosts_buckets_are_all_written_from_memory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A host's first sample begins its day file: nothing can precede it in its buckets, so
    none of them is read back, not even the hour's that a new host's first hour would read
    from the day's start at every 5 minutes."""
    reads = _counting_raw_reads(monkeypatch)
    store = Store(tmp_path)
    _run_passes(store, "web1", [_varied(t, i) for i, t in enumerate(every(T0, 70))])
    assert reads == []
    written = rollup_files(tmp_path, "web1")
    assert rollup.rebuild(store, "web1") == 13 + 1
    assert rollup_files(tmp_path, "web1") == written


def test_a_host_without_rollups_is_caught_up_from_its_first_sample(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not from the start of its first day: a new host's first hour would otherwise read its
    whole day file at every 5 minutes, for an hour's bucket that cannot close yet."""
    store = Store(tmp_path)
    write_fast(store, "web1", [sample(t) for t in every(T0, 41)])  # 12:00 .. 12:40
    reads = _counting_raw_reads(monkeypatch)
    assert rollup.catch_up(store, "web1", (T0 + timedelta(minutes=40)).timestamp()) == 8
    assert reads == [(T0.timestamp(), (T0 + timedelta(minutes=40)).timestamp())]


def test_a_sample_another_writer_appended_is_in_the_buckets(tmp_path: Path) -> None:
    """A sample the process did not store itself (``osmon collect`` run by hand between two
    passes of ``osmon run``) is not in its memory: the buckets it falls in are written from
    the raw samples, and memory is trusted again from the next bucket on."""
    store = Store(tmp_path)
    samples = [_varied(t, i) for i, t in enumerate(every(T0, 40))]
    _run_passes(store, "web1", samples[:12])
    Store(tmp_path).append("web1", samples[12])  # another process: its own Store and memory
    _run_passes(store, "web1", samples[13:])
    written = rollup_files(tmp_path, "web1")
    records = rollup.read_records(store, "web1", "5m", T0.timestamp(), T0.timestamp() + 3600)
    assert [r["n"] + r["f"] for r in records] == [5] * 7  # 12:10 holds the foreign sample
    rollup.rebuild(store, "web1")
    assert rollup_files(tmp_path, "web1") == written


def test_a_torn_last_line_is_skipped_and_its_bucket_written_again(tmp_path: Path) -> None:
    store = Store(tmp_path)
    _run_passes(store, "web1", [sample(t, cpu=float(i)) for i, t in enumerate(every(T0, 11))])
    path = tmp_path / "rollups" / "web1" / "5m" / "2026-11-21.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    assert len(lines) == 2
    path.write_bytes(lines[0] + lines[1][:40])  # the writer was killed mid-line
    records = rollup.read_records(store, "web1", "5m", T0.timestamp(), T0.timestamp() + 3600)
    assert [r["t"] for r in records] == ["2026-11-21T12:00:00Z"]
    _run_passes(store, "web1", [sample(T0 + timedelta(minutes=11), cpu=11.0)])
    records = rollup.read_records(store, "web1", "5m", T0.timestamp(), T0.timestamp() + 3600)
    assert [r["t"] for r in records] == ["2026-11-21T12:00:00Z", "2026-11-21T12:05:00Z"]
    assert records[1]["m"]["cpu"]["cpu"] == [5.0, 7.0, 9.0, 5]


def test_raw_reading_skips_a_torn_line_in_the_day_file(tmp_path: Path) -> None:
    store = Store(tmp_path)
    write_fast(store, "web1", [sample(t) for t in every(T0, 3)])
    day = tmp_path / "hosts" / "web1" / "2026-11-21.jsonl"
    with open(day, "ab") as fh:
        fh.write(b'{"v":1,"ts":"2026-11-21T12:03:00Z","host":"web1","ok":tr')
    got = rollup.read_raw(store, "web1", T0.timestamp(), T0.timestamp() + 3600)
    assert [s["ts"] for s in got] == [format_ts(t) for t in every(T0, 3)]


def test_raw_reading_of_the_end_of_a_day_reads_only_the_range(tmp_path: Path) -> None:
    store = Store(tmp_path)
    day_start = T0.replace(hour=0)
    write_fast(store, "web1", [sample(t) for t in every(day_start, 1440)])
    start = day_start + timedelta(hours=23, minutes=30)
    got = rollup.read_raw(store, "web1", start.timestamp(), start.timestamp() + 3600)
    assert [s["ts"] for s in got] == [format_ts(t) for t in every(start, 30)]


def test_catch_up_builds_rollups_for_old_data_a_day_at_a_time(tmp_path: Path) -> None:
    store = Store(tmp_path)
    start = T0.replace(hour=0) - timedelta(days=2)
    write_fast(store, "web1", [sample(t) for t in every(start, 3 * 288, step_s=300)])
    upto = (start + timedelta(days=3, minutes=-5)).timestamp()  # the newest sample
    # A deadline already passed: one day is done, the next call continues from there.
    assert rollup.catch_up(store, "web1", upto, deadline=time.monotonic() - 1) == 288 + 24
    assert rollup.catch_up(store, "web1", upto, deadline=time.monotonic() - 1) == 288 + 24
    assert rollup.catch_up(store, "web1", upto, deadline=_deadline()) == 287 + 23
    before = rollup_files(tmp_path, "web1")
    rollup.rebuild(store, "web1")
    assert rollup_files(tmp_path, "web1") == before


def test_a_down_host_writes_empty_buckets(tmp_path: Path) -> None:
    store = Store(tmp_path)
    _run_passes(store, "db2", [sample(t, ok=False) for t in every(T0, 6)])
    (record,) = rollup.read_records(store, "db2", "5m", T0.timestamp(), T0.timestamp() + 600)
    assert (record["n"], record["f"], record["m"]) == (0, 5, {})
    rows, _ = rollup.chart_rows(store, "db2", series.metric_spec("cpu"), "5m", T0.timestamp(),
                                T0.timestamp() + 600)
    assert [row.ok for row in rows] == [False, False]  # the closed bucket, then the open one


def test_chart_rows_join_rollups_and_the_raw_samples_past_them(tmp_path: Path) -> None:
    store = Store(tmp_path)
    samples = [sample(t, cpu=float(i)) for i, t in enumerate(every(T0, 8))]
    _run_passes(store, "web1", samples)  # 12:00 bucket closed; 12:05..12:07 still raw
    rows, step = rollup.chart_rows(store, "web1", series.metric_spec("cpu"), "5m",
                                   T0.timestamp(), T0.timestamp() + 3600)
    assert step == 300
    assert [(r.t - T0.timestamp(), r.values["cpu"]) for r in rows] == [
        (0, (0.0, 10.0, 4.0, 5)), (300, (5.0, 5.0, 5.0, 1)), (360, (6.0, 6.0, 6.0, 1)),
        (420, (7.0, 7.0, 7.0, 1))]


def test_on_pass_survives_a_bad_host_and_checks_land_in_rollups(tmp_path: Path) -> None:
    store = Store(tmp_path)
    checks = {"http": {"state": 0, "perf": {"time": {"value": 0.5, "uom": "s"}}}}
    for t in every(T0, 6):
        s = sample(t, checks=checks)
        store.append("web1", s)
        rollup.on_pass(None, store, {"../evil": s, "web1": s}, t, _deadline())
    (record,) = rollup.read_records(store, "web1", "5m", T0.timestamp(), T0.timestamp() + 600)
    assert record["m"]["check.http"] == {"time": [0.5, 0.5, 0.5, 5]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hosts", "rollups"]
    assert [p.name for p in (tmp_path / "rollups").iterdir()] == ["web1"]


def test_on_pass_leaves_time_for_alerting(tmp_path: Path) -> None:
    store = Store(tmp_path)
    write_fast(store, "web1", [sample(t) for t in every(T0, 20)])
    s = sample(T0 + timedelta(minutes=20))
    rollup.on_pass(None, store, {"web1": s}, T0, time.monotonic() - 1)  # no time left
    assert not (tmp_path / "rollups").exists()
    rollup.on_pass(None, store, {"web1": s}, T0, _deadline())
    assert rollup.last_record_time(store, "web1", "5m") == T0.timestamp() + 900


def test_gzipped_day_files_are_read(tmp_path: Path) -> None:
    store = Store(tmp_path)
    day = T0.replace(hour=0) - timedelta(days=1)
    write_fast(store, "web1", [sample(t) for t in every(day, 288, step_s=300)])
    plain = tmp_path / "hosts" / "web1" / "2026-11-20.jsonl"
    with gzip.open(plain.with_suffix(".jsonl.gz"), "wb") as fh:
        fh.write(plain.read_bytes())
    plain.unlink()
    got = rollup.read_raw(store, "web1", day.timestamp() + 7200, T0.timestamp())
    assert len(got) == 288 - 24
