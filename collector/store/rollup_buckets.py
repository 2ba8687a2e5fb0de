"""The arithmetic of a rollup bucket: samples reduced to points, points added into a bucket.

Why a module of its own: the same sums are made from raw samples read back from the store
(:mod:`collector.store.rollup`) and, in a long-lived ``osmon run``, from each sample as it is
stored (:mod:`collector.store.rollup_memory`); both must give the very same record, so the
adding lives here once.  Points are added in the order the samples were stored, which is the
order the store's lines are read in: the float sums come out alike to the last bit.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, NamedTuple

from collector.metrics import series
from collector.store import rollup_line
from collector.times import format_ts


class Point(NamedTuple):
    """A sample reduced to what rollups keep, extracted once for both resolutions."""

    t: float
    ok: bool
    metrics: dict[str, series.Values]
    combined: series.Values


def point_of(sample: Mapping[str, Any]) -> Point | None:
    """The point of one sample, None when its time is missing or malformed."""
    t = series.sample_time(sample)
    if t is None:
        return None
    if sample.get("ok") is False:
        return Point(t, False, {}, {})
    metrics = series.extract_all(sample)
    combined = {}
    for metric, values in metrics.items():
        one = series.combine(metric, values)
        if one is not None:
            combined[metric] = one
    return Point(t, True, metrics, combined)


def points_of(samples: list[Mapping[str, Any]]) -> list[Point]:
    return [p for p in map(point_of, samples) if p is not None]


def _add(slots: dict[str, list[float]], label: str, value: float) -> None:
    slot = slots.get(label)
    if slot is None:
        slots[label] = [value, value, value, 1]
    else:
        slot[0] = min(slot[0], value)
        slot[1] += value
        slot[2] = max(slot[2], value)
        slot[3] += 1


def _finish(slot: list[float]) -> list[float]:
    lo, total, hi, n = slot
    # Six significant digits: sums of floats (rx + tx) would otherwise print 17 of them.
    return [_short(lo), _short(total / n), _short(hi), int(n)]


def _short(value: float) -> float:
    return float(f"{value:.6g}")


class Bucket:
    """min, sum, max and count of every series of the points added, in the order added."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.metrics: dict[str, dict[str, list[float]]] = {}
        self.combined: dict[str, list[float]] = {}
        self.good = 0
        self.points = 0

    def add(self, point: Point) -> None:
        self.points += 1
        if not point.ok:
            return
        self.good += 1
        for metric, values in point.metrics.items():
            slots = self.metrics.get(metric)
            if slots is None:
                slots = self.metrics[metric] = {}
            for label, value in values.items():
                _add(slots, label, value)
        for metric, value in point.combined.items():
            _add(self.combined, metric, value)

    def record(self) -> dict[str, Any]:
        return rollup_line.record(
            format_ts(datetime.fromtimestamp(self.start, tz=timezone.utc)), self.good,
            self.points - self.good,
            {m: {k: _finish(s) for k, s in slots.items()} for m, slots in self.metrics.items()},
            {m: _finish(s) for m, s in self.combined.items()})


def record_of(points: list[Point], t: float) -> dict[str, Any]:
    """The record of the bucket starting at ``t`` (epoch seconds) holding ``points``."""
    bucket = Bucket(t)
    for point in points:
        bucket.add(point)
    return bucket.record()


def bucket_records(points: list[Point], secs: int, first: float, limit: float
                   ) -> list[dict[str, Any]]:
    """The records of the ``secs`` buckets starting in ``[first, limit)`` that hold points."""
    groups: dict[float, list[Point]] = {}
    for point in points:
        bucket = point.t - point.t % secs
        if first <= bucket < limit:
            groups.setdefault(bucket, []).append(point)
    return [record_of(groups[b], b) for b in sorted(groups)]
