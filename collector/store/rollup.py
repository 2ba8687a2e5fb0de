"""Chart rollups: 5-minute and 1-hour min/avg/max of every series, written as data arrives.

Why: a 30-day chart must not parse 43,200 raw samples of a few KiB each.  A rollup record
holds, for one host and one time bucket, ``[min, avg, max, count]`` of every series of
every metric (see :mod:`collector.metrics.series`), plus the same for the one number per host of the
combined charts::

    {"v":1,"t":"2026-11-21T22:40:00Z","n":5,"f":0,
     "m":{"cpu":{"cpu":[3.0,12.5,99.0,5]},"disk":{"/":[50.0,50.0,50.0,5]},...},
     "c":{"cpu":[3.0,12.5,99.0,5],"disk":[50.0,50.0,50.0,5],...}}

``n`` counts good samples, ``f`` failed ones: a record with ``n == 0`` is a bucket in which
the host was down, drawn as a gap.  Files are
``<data_dir>/rollups/<host>/5m/<YYYY-MM-DD>.jsonl`` and ``.../1h/<YYYY-MM>.jsonl``,
append-only, one bucket per line, oldest first; a torn last line is skipped by readers and
rewritten by the next pass.

A bucket is written once the host's samples have moved past it (:func:`on_pass`, a post-pass
hook); no state file is needed: the last record of a file *is* the watermark.  A host with raw
data but no rollups yet is caught up from its oldest day, within the pass deadline, a day at a
time.  :func:`rebuild` recomputes everything from raw (for ``osmon prune``, or after damage);
callers hold the data lock, as a pass does.

Readers (:func:`chart_rows`) take finalised buckets from the rollup and the newest raw
samples past the watermark from the store, so charts are complete before the bucket closes;
closed buckets the files lack are built from raw in memory, a day at a time and once for
every chart (:mod:`collector.store.built_rollups`), never written by a reader.

Public API: :data:`RESOLUTIONS`, :func:`on_pass`, :func:`catch_up`, :func:`rebuild`,
:func:`read_records`, :func:`read_raw`, :func:`aggregate`, :func:`chart_rows`.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from collector.metrics import series
from collector.store import rollup_memo, rollup_memory
from collector.store.rollup_buckets import Point, bucket_records, point_of, points_of, record_of
from collector.store.rollup_memory import OpenBuckets
from collector.store.samples import (
    DayFile,
    Store,
    append_whole_lines,
    day_lines,
    encode_line,
    tail_lines,
)
from collector.store.statefile import atomic_write_bytes
from collector.times import format_ts

log = logging.getLogger(__name__)

#: resolution name -> bucket length in seconds (each divides a day, so a day file holds
#: whole buckets).
RESOLUTIONS: dict[str, int] = {"5m": 300, "1h": 3600}
_FILE_FORMAT = {"5m": "%Y-%m-%d", "1h": "%Y-%m"}
_DAY = 86400
#: Lines start with {"v":1,"ts":"...: the time is found in the first bytes of a line.
_PEEK = 48
#: First tail read when only the end of a day file is needed; doubled until enough.
_TAIL_CHUNK = 256 * 1024
#: A rollup record is about 1 KiB: the watermark is in the last few KiB of a file.
_LAST_CHUNK = 16 * 1024


# -- raw samples ---------------------------------------------------------------------------------
def _peek(line: bytes, key: bytes) -> str | None:
    at = line.find(key, 0, _PEEK)
    if at < 0:
        return None
    text = line[at + len(key):at + len(key) + 20]
    return text.decode("ascii", "replace") if len(text) == 20 and text.endswith(b"Z") else None


def _decode(line: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None  # a torn line from a killed writer: skip it, as store.py does
    return value if isinstance(value, dict) else None


def _tail_lines(path: Path, start_text: str) -> list[bytes]:
    """The end of a plain day file from (at least) the first line at or after ``start_text``."""
    with open(path, "rb") as fh:
        pos = fh.seek(0, os.SEEK_END)
        data = b""
        chunk = _TAIL_CHUNK
        while pos > 0:
            new_pos = max(0, pos - chunk)
            fh.seek(new_pos)
            data = fh.read(pos - new_pos) + data
            pos = new_pos
            newline = data.find(b"\n")
            if pos > 0 and newline >= 0:
                ts = _peek(data[newline + 1:newline + 1 + _PEEK], b'"ts":"')
                if ts is not None and ts < start_text:
                    break
            chunk *= 2
    lines = data.split(b"\n")
    return lines[1:] if pos > 0 else lines


def _day_lines(store: Store, host: str, start: float, end: float) -> Iterator[bytes]:
    start_text = format_ts(_utc(start))
    first_day = _utc(start).date()
    last_day = _utc(end - 1).date()
    by_day: dict[Any, list[Path]] = {}
    for day_file in store.day_files(host):
        if first_day <= day_file.day <= last_day:
            by_day.setdefault(day_file.day, []).append(day_file.path)
    for day, paths in sorted(by_day.items()):
        try:
            if len(paths) > 1:  # plain and gzipped: each line once (store.samples.day_lines)
                yield from day_lines(paths)
            # Starting late in a day (a 6 h chart, a closing bucket): read only the file's end.
            elif day == first_day and paths[0].suffix != ".gz" and start % _DAY >= 3600:
                yield from _tail_lines(paths[0], start_text)
            else:
                yield from _whole_file(paths[0])
        except FileNotFoundError:  # pruned while we read
            continue


def _whole_file(path: Path) -> list[bytes]:
    if path.suffix == ".gz":
        try:
            with gzip.open(path, "rb") as fh:
                return fh.read().split(b"\n")
        except (EOFError, OSError):
            return []
    return path.read_bytes().split(b"\n")


def read_raw(store: Store, host: str, start: float, end: float) -> list[dict[str, Any]]:
    """Raw samples with ``start <= ts < end`` (epoch seconds), oldest first.

    Faster than ``Store.samples`` for charts: only lines whose time (peeked in the first bytes)
    is in range are JSON-decoded, and a range starting late in a day reads only the file's end.
    """
    start_text, end_text = format_ts(_utc(start)), format_ts(_utc(end))
    out = []
    for line in _day_lines(store, host, start, end):
        if not line.strip():
            continue
        ts = _peek(line, b'"ts":"')
        if ts is not None and not start_text <= ts < end_text:
            continue
        sample = _decode(line)
        if sample is None or not isinstance(sample.get("ts"), str):
            continue
        if start_text <= sample["ts"] < end_text:
            out.append(sample)
    return out


# -- aggregation ---------------------------------------------------------------------------------
def aggregate(samples: list[Mapping[str, Any]], t: float) -> dict[str, Any]:
    """The rollup record of one bucket starting at ``t`` (epoch seconds)."""
    return record_of(points_of(samples), t)


def day_records(lines: Iterable[bytes], res: str, day_start: float) -> list[dict[str, Any]]:
    """The records of every bucket of the UTC day starting at ``day_start`` from its raw
    lines, each line reduced to its chart values as soon as it is read: a day of large
    samples costs its numbers, not its text (see :mod:`collector.store.built_rollups`)."""
    points: list[Point] = []
    for line in lines:
        sample = _decode(line) if line.strip() else None
        if sample is not None and isinstance(sample.get("ts"), str):
            point = point_of(sample)
            if point is not None:
                points.append(point)
    return bucket_records(points, RESOLUTIONS[res], day_start, day_start + _DAY)


# -- files ---------------------------------------------------------------------------------------
def rollup_dir(store: Store, host: str) -> Path:
    store.host_dir(host)  # raises ValueError for a name that is unsafe as a path
    return store.data_dir / "rollups" / host


def _file_for(store: Store, host: str, res: str, t: float) -> Path:
    return rollup_dir(store, host) / res / (_utc(t).strftime(_FILE_FORMAT[res]) + ".jsonl")


def _files(store: Store, host: str, res: str) -> list[Path]:
    try:
        names = os.listdir(rollup_dir(store, host) / res)
    except FileNotFoundError:
        return []
    return [rollup_dir(store, host) / res / n for n in sorted(names) if n.endswith(".jsonl")]


def _append(path: Path, records: list[dict[str, Any]]) -> None:
    append_whole_lines(path, b"".join(encode_line(r) for r in records))


def _append_records(store: Store, host: str, res: str, records: list[dict[str, Any]]) -> int:
    """Append ``records`` (oldest first) to their files, a day (5m) or a month (1h) each."""
    by_file: dict[Path, list[dict[str, Any]]] = {}
    for record in records:
        by_file.setdefault(_file_for(store, host, res, _record_time(record) or 0),
                           []).append(record)
    for path, in_file in by_file.items():
        _append(path, in_file)
    return len(records)


def _record_time(record: Mapping[str, Any]) -> float | None:
    return series.ts_seconds(record.get("t"))


def last_record_time(store: Store, host: str, res: str) -> float | None:
    """Start of the newest complete bucket written, reading only the end of the newest file."""
    for path in reversed(_files(store, host, res)):
        try:
            lines, cut = tail_lines(path, _LAST_CHUNK)
        except FileNotFoundError:
            continue
        for line in reversed(lines):
            record = _decode(line) if line.strip() else None
            t = _record_time(record) if record is not None else None
            if t is not None:
                return t
        if cut:  # no whole record in the end: damage; rebuild() repairs it
            log.warning("rollup file %s: no valid record at its end", path)
            return None
    return None


def read_records(store: Store, host: str, res: str, start: float, end: float
                 ) -> list[dict[str, Any]]:
    """Records of buckets starting in ``[start, end)``, oldest first, one per bucket."""
    first = _utc(start).strftime(_FILE_FORMAT[res])
    last = _utc(end - 1).strftime(_FILE_FORMAT[res])
    start_text, end_text = format_ts(_utc(start)), format_ts(_utc(end))
    by_time: dict[str, dict[str, Any]] = {}
    for path in _files(store, host, res):
        if not first <= path.name[:-len(".jsonl")] <= last:
            continue
        try:
            lines = path.read_bytes().split(b"\n")
        except FileNotFoundError:
            continue
        for line in lines:
            t = _peek(line, b'"t":"')
            if t is None or not start_text <= t < end_text:
                continue
            record = _decode(line)
            if record is not None and record.get("t") == t:
                by_time[t] = record  # a bucket written twice (rebuild race): the last wins
    return [by_time[t] for t in sorted(by_time)]


# -- writing as data arrives ---------------------------------------------------------------------
def catch_up(store: Store, host: str, upto: float, deadline: float | None = None,
             kept: OpenBuckets | None = None) -> int:
    """Write every complete bucket before ``upto`` not yet written; return records written.

    Works a day of raw data at a time and stops between days once ``deadline``
    (``time.monotonic()``) has passed; the next call continues where this one stopped.
    ``kept``: the host's buckets as ``osmon run`` kept them (:mod:`rollup_memory`); a
    resolution whose buckets to write were all seen whole there is written from them, without
    reading the raw samples.
    """
    todo: dict[str, tuple[float, float]] = {}
    oldest: float | None = None
    written = 0
    for res, secs in RESOLUTIONS.items():
        last = last_record_time(store, host, res)
        if last is None and oldest is None:
            files = store.day_files(host)
            if not files:
                return 0
            oldest = _first_sample_time(files[0])
        start = last + secs if last is not None else oldest
        assert start is not None
        first = start - start % secs
        limit = upto - upto % secs
        if first >= limit:
            continue
        if kept is not None and kept.serves(res, first):
            written += _append_records(store, host, res, kept.take(res, first, limit))
            continue
        if kept is not None:
            kept.take(res, first, limit)  # written from the raw samples below instead
        todo[res] = (first, limit)
    if not todo:
        return written
    begin = min(first for first, _ in todo.values())
    end = max(limit for _, limit in todo.values())
    for day_start in _days_with_data(store, host, begin, end):
        points = points_of(read_raw(store, host, max(begin, day_start),
                                    min(end, day_start + _DAY)))
        for res, (first, limit) in todo.items():
            written += _append_records(
                store, host, res, bucket_records(points, RESOLUTIONS[res], first, limit))
        if deadline is not None and time.monotonic() >= deadline:
            log.info("rollups of %s: stopped at the deadline, will continue next pass", host)
            break
    return written


def _first_sample_time(day_file: DayFile) -> float:
    """When the oldest raw sample was taken (peeked in the first bytes of the oldest day
    file), else the start of that day.  A host without rollups yet starts from there: from
    the day's start, every bucket boundary of a new host's first hour read the whole day
    file for an hour's bucket that could not close yet."""
    day_start = datetime.combine(day_file.day, datetime.min.time(), timezone.utc).timestamp()
    try:
        if day_file.compressed:
            with gzip.open(day_file.path, "rb") as fh:
                head = fh.read(_PEEK)
        else:
            with open(day_file.path, "rb") as fh:
                head = fh.read(_PEEK)
    except (OSError, EOFError):
        return day_start
    t = series.ts_seconds(_peek(head, b'"ts":"'))
    return t if t is not None and day_start <= t < day_start + _DAY else day_start


def _days_with_data(store: Store, host: str, begin: float, end: float) -> list[float]:
    days = set()
    for day_file in store.day_files(host):
        day_start = datetime.combine(day_file.day, datetime.min.time(), timezone.utc).timestamp()
        if day_start + _DAY > begin and day_start < end:
            days.add(day_start)
    return sorted(days)


def on_pass(config: Any, store: Store, samples: dict[str, dict], now: datetime,
            deadline: float) -> None:
    """Post-pass hook: write the buckets each host's new sample has moved past.

    Rollups are a convenience and alerting runs after this hook, so it takes at most a third
    of the time left; hosts not reached are done by a later pass (the watermark is in the
    files).  The starting host rotates every minute so a short budget still reaches everyone.
    One host's trouble (a full disk, a bad name) is logged and does not stop the others.
    """
    budget_end = min(deadline, time.monotonic() + max(0.0, deadline - time.monotonic()) / 3)
    hosts = list(samples)
    kept: dict[str, OpenBuckets | None] = {}
    for host in hosts:  # every stored sample, whatever the budget: memory must miss none
        kept[host] = rollup_memory.feed(store.data_dir, host, samples[host],
                                        store.appended.get(host), RESOLUTIONS)
    first = int(now.timestamp() // 60) % len(hosts) if hosts else 0
    for host in hosts[first:] + hosts[:first]:
        if time.monotonic() >= budget_end:
            log.warning("rollups: time budget spent, remaining hosts next pass")
            return
        sample = samples[host]
        upto = series.sample_time(sample) if isinstance(sample, Mapping) else None
        if upto is None:
            continue
        boundary = upto - upto % RESOLUTIONS["5m"]
        try:
            if rollup_memo.up_to_date(store.data_dir, host, boundary):
                continue  # nothing new to write: see rollup_memo
            newest_file = _file_for(store, host, "5m", boundary - RESOLUTIONS["5m"])
            catch_up(store, host, upto, budget_end, kept.get(host))
        except (OSError, ValueError) as exc:
            log.warning("rollups of %s not updated: %s", host, exc)
            continue
        if time.monotonic() < budget_end:  # not stopped at the deadline: complete
            rollup_memo.remember(store.data_dir, host, boundary, newest_file)


def rebuild(store: Store, host: str) -> int:
    """Recompute all rollups of a host from its raw samples; return the records written.

    Each file is replaced atomically (readers see the old or the new one); rollup files whose
    days have no raw data any more are removed.  The bucket of the newest sample stays open.
    """
    newest = store.latest(host)
    upto = series.sample_time(newest) if newest is not None else None
    by_file: dict[Path, list[dict[str, Any]]] = {}
    if upto is not None:
        for day_start in _days_with_data(store, host, 0, upto):
            points = points_of(read_raw(store, host, day_start, min(upto, day_start + _DAY)))
            for res, secs in RESOLUTIONS.items():
                for record in bucket_records(points, secs, 0, upto - upto % secs):
                    path = _file_for(store, host, res, _record_time(record) or 0)
                    by_file.setdefault(path, []).append(record)
    for path, records in by_file.items():
        atomic_write_bytes(path, b"".join(encode_line(r) for r in records))
    for res in RESOLUTIONS:
        for path in _files(store, host, res):
            if path not in by_file:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
    return sum(len(r) for r in by_file.values())


# -- reading for charts --------------------------------------------------------------------------
def _rows_from_records(records: list[dict[str, Any]], secs: int, metric: str,
                       combined_label: str | None) -> list[series.Row]:
    rows = []
    for record in records:
        t = _record_time(record)
        if t is None:
            continue
        if not record.get("n"):
            rows.append(series.Row(t, False, {}))
            continue
        if combined_label is None:
            section = record.get("m")
            slots = section.get(metric) if isinstance(section, dict) else None
        else:
            section = record.get("c")
            one = section.get(metric) if isinstance(section, dict) else None
            slots = {combined_label: one} if one is not None else None
        values = {}
        for label, slot in (slots.items() if isinstance(slots, dict) else ()):
            if isinstance(slot, list) and len(slot) == 4 and slot[3]:
                lo, avg, hi, n = slot
                values[label] = (lo, avg * n, hi, n)
        rows.append(series.Row(t, True, values, float(secs)))
    return rows


def chart_rows(store: Store, host: str, spec: series.MetricSpec, res: str | None,
               start: float, end: float, combined_label: str | None = None,
               built: Any = None) -> tuple[list[series.Row], float]:
    """Rows of one metric in ``[start, end)`` and the step between them (for gap detection).

    ``res`` None reads raw samples; otherwise finalised buckets of that resolution, the
    closed buckets the files lack built from raw in bounded memory (kept in ``built``, a
    :class:`~collector.store.built_rollups.BuiltRollups`, when given), and the raw samples
    of the bucket still open.
    """
    if res is None:
        rows = series.rows_from_samples(read_raw(store, host, start, end), spec, combined_label)
        return rows, series.estimate_step([r.t for r in rows], 60.0)
    secs = RESOLUTIONS[res]
    records = read_records(store, host, res, start, end)
    last = _record_time(records[-1]) if records else None
    watermark = last + secs if last is not None else start
    newest = store.latest(host)
    upto = series.sample_time(newest) if newest is not None else None
    if upto is not None and min(end, upto - upto % secs) > watermark:
        # The files stop short (no rollups yet, or passes had no time to write them): the
        # closed buckets in between are built from raw a day at a time, never all at once.
        from collector.store.built_rollups import BuiltRollups

        source = built if built is not None else BuiltRollups(max_records=0)
        stop = min(end, upto - upto % secs)
        records = records + source.records(store, host, res, watermark, stop)
        watermark = stop
    rows = _rows_from_records(records, secs, spec.name, combined_label)
    raw = read_raw(store, host, max(start, watermark), end)
    return rows + series.rows_from_samples(raw, spec, combined_label), float(secs)


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, timezone.utc)
