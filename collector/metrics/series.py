"""Metric series: which numbers of a sample make chart lines, and how lines are downsampled.

A *metric* is a chart name: a family with a chart (:data:`collector.metrics.registry.CHARTS`)
or ``check.<name>``, resolved by a prefix rule of the checks family (one line per perfdata
label).  Its :class:`~collector.metrics.family.ChartSpec` turns one stored sample into
``{label: value}`` (one chart line per label), picks the one number per host drawn in the
all-hosts chart, and gives the unit kind that decides the axis.

Choices, and why:

* Downsampling keeps the *maximum* of each time bucket (a one-minute spike to 99 % stays
  visible on a 30-day chart) and the weighted average beside it, so a chart can show both.
* Gaps are drawn as gaps: a bucket holding only failed samples (``ok`` false) is a break, and
  so is a hole between two points longer than :data:`GAP_FACTOR` times the expected step.

Public API: :data:`METRIC_NAMES`, :func:`metric_spec`, :func:`extract_all`, :class:`Row`,
:func:`rows_from_samples`, :func:`estimate_step`, :func:`downsample` and :class:`Line`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, NamedTuple

from collector.metrics.families.checks import CHART_PREFIX
from collector.metrics.family import (  # noqa: F401 - unit kinds, re-exported for charts
    BYTES,
    LOAD,
    NUMBER,
    PERCENT,
    RATE,
    SECONDS,
    ChartSpec,
    Values,
)
from collector.metrics.registry import CHART_NAMES, CHARTS, chart_spec, dynamic_chart_names

#: Two points further apart than this many expected steps are not joined by a line.
GAP_FACTOR = 2.5

CHECK_PREFIX = CHART_PREFIX
_TS_SHAPE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

#: (min, sum, max, count) of one series over one bucket: sums merge exactly, averages do not.
Agg = tuple[float, float, float, int]


@dataclass(frozen=True)
class MetricSpec:
    """A chart's metric: its name in URLs, and its family's :class:`ChartSpec`."""

    name: str
    chart: ChartSpec

    @property
    def title(self) -> str:
        return self.chart.title

    @property
    def unit(self) -> str:
        return self.chart.unit

    @property
    def unit_of(self) -> Callable[[Mapping[str, Any]], str | None] | None:
        return self.chart.unit_of

    @property
    def legend(self) -> Mapping[str, str]:
        return self.chart.legend

    def extract(self, sample: Mapping[str, Any]) -> Values:
        return self.chart.lines(sample)

    def combine(self, values: Values) -> float | None:
        return self.chart.fleet(values)


METRIC_NAMES: tuple[str, ...] = CHART_NAMES


def metric_spec(metric: str) -> MetricSpec:
    """The spec of a metric name; ``ValueError`` for an unknown one (the web layer's 404)."""
    return MetricSpec(metric, chart_spec(metric))


#: (name, lines, fleet number) of every fixed chart, looked up once: this runs for every
#: sample a chart or a rollup reads.
_FIXED = tuple((name, f.chart.lines, f.chart.fleet) for name, f in CHARTS.items()
               if f.chart is not None)
_FLEET = {name: fleet for name, _lines, fleet in _FIXED}


def extract_all(sample: Mapping[str, Any]) -> dict[str, Values]:
    """Every metric of a sample (built-in ones and one per check), empty ones left out."""
    out = {}
    for name, lines, _fleet in _FIXED:
        values = lines(sample)
        if values:
            out[name] = values
    for name in dynamic_chart_names(sample):
        values = chart_spec(name).lines(sample)
        if values:
            out[name] = values
    return out


def combine(metric: str, values: Values) -> float | None:
    """The one number of ``metric`` the fleet chart draws for a host, from its lines."""
    fleet = _FLEET.get(metric)
    return fleet(values) if fleet is not None else chart_spec(metric).fleet(values)


class Row(NamedTuple):
    """One point in time of one source: a raw sample, or a rollup bucket.

    ``ok`` false marks a failed pass (or a bucket of failed passes only): a break in the lines.
    ``span`` is how long the row covers from ``t``: 0 for a sample, the bucket for a rollup.
    """

    t: float
    ok: bool
    values: dict[str, Agg]
    span: float = 0.0


def sample_time(sample: Mapping[str, Any]) -> float | None:
    """Epoch seconds of a sample's ``ts``, or None when it is missing or malformed."""
    return ts_seconds(sample.get("ts"))


def ts_seconds(text: Any) -> float | None:
    """Epoch seconds of a "YYYY-MM-DDTHH:MM:SSZ" text, or None.

    Hand-parsed: strptime costs about 10 us, a noticeable part of reading 43,200 samples.
    """
    if not isinstance(text, str) or len(text) != 20 or not _TS_SHAPE.match(text):
        return None
    try:
        return datetime(int(text[0:4]), int(text[5:7]), int(text[8:10]), int(text[11:13]),
                        int(text[14:16]), int(text[17:19]), tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None


def rows_from_samples(samples: Iterable[Mapping[str, Any]], spec: MetricSpec,
                      combined_label: str | None = None) -> list[Row]:
    """Raw samples as rows; with ``combined_label``, one line of ``spec.combine`` under it."""
    rows = []
    for sample in samples:
        t = sample_time(sample)
        if t is None:
            continue
        if sample.get("ok") is False:
            rows.append(Row(t, False, {}))
            continue
        values = spec.extract(sample)
        if combined_label is not None:
            one = spec.combine(values) if values else None
            values = {combined_label: one} if one is not None else {}
        rows.append(Row(t, True, {k: (v, v, v, 1) for k, v in values.items()}))
    return rows


def estimate_step(times: list[float], minimum: float) -> float:
    """The usual distance between samples (the median), at least ``minimum`` seconds.

    Measured rather than read from the config so that charts stay right for data written
    with another ``interval_s`` than today's.
    """
    deltas = sorted(b - a for a, b in zip(times, times[1:]) if b > a)
    if not deltas:
        return minimum
    return max(minimum, deltas[len(deltas) // 2])


@dataclass(frozen=True)
class Line:
    """One chart line: ``(t, value)`` points, ``value`` None where the line breaks."""

    label: str
    peak: list[tuple[float, float | None]]
    mean: list[tuple[float, float | None]]


def downsample(rows: Iterable[Row], start: float, end: float, width: float,
               step: float) -> list[Line]:
    """Bucket rows into ``width``-second buckets from ``start`` (aligned), one point each.

    Lines come out in order of first appearance.  A line breaks at a bucket holding failed
    rows and no value, and where the data it joins are more than ``GAP_FACTOR * step`` apart
    (measured between the rows themselves, not bucket starts, so that a pass run at :59 and
    the next at :01 is no gap).
    """
    # label -> bucket -> [min, sum, max, count, first t, last t + span]
    buckets: dict[str, dict[int, list[float]]] = {}
    with_data: set[int] = set()
    failed: set[int] = set()
    for row in rows:
        if not start <= row.t < end:
            continue
        index = int((row.t - start) // width)
        if not row.ok:
            failed.add(index)
            continue
        with_data.add(index)
        row_end = row.t + row.span
        for label, (lo, total, hi, n) in row.values.items():
            slot = buckets.setdefault(label, {}).get(index)
            if slot is None:
                buckets[label][index] = [lo, total, hi, n, row.t, row_end]
            else:
                slot[0] = min(slot[0], lo)
                slot[1] += total
                slot[2] = max(slot[2], hi)
                slot[3] += n
                slot[4] = min(slot[4], row.t)
                slot[5] = max(slot[5], row_end)
    dead = failed - with_data
    max_hole = GAP_FACTOR * step
    lines = []
    for label, by_index in buckets.items():
        peak: list[tuple[float, float | None]] = []
        mean: list[tuple[float, float | None]] = []
        previous: list[float] | None = None
        for index in sorted(by_index.keys() | dead):
            t = start + index * width
            slot = by_index.get(index)
            hole = slot is not None and previous is not None and slot[4] - previous[5] > max_hole
            if (slot is None or hole) and peak and peak[-1][1] is not None:
                gap_t = t if slot is None else t - width / 2
                peak.append((gap_t, None))
                mean.append((gap_t, None))
            if slot is not None:
                peak.append((t, slot[2]))
                mean.append((t, slot[1] / slot[3]))
                previous = slot
        lines.append(Line(label, peak, mean))
    return lines
