"""Metric series: which numbers of a sample make a chart line, and how lines are downsampled.

A *metric* is one entry of :data:`METRIC_TABLE` (name -> :class:`MetricSpec`): an extractor that
turns one stored sample into ``{label: value}`` (one chart line per label), a ``combine``
function that picks the one number per host drawn in the all-hosts chart, and a unit kind
that decides the axis.  Nagios checks need no entry of their own: ``check.<name>`` is resolved
by a prefix rule in :func:`metric_spec` (one line per perfdata label).

Choices, and why:

* ``net`` is the sum over interfaces (``lo`` excluded: loopback traffic is not network load),
  one ``rx`` and one ``tx`` line.  Per-interface lines would explode with container ``veth``
  interfaces, which come and go.  If any interface has no rate (``rx_bps`` is null after a
  counter reset or on the first pass) the sum is unknown for that sample: a missing point is
  honest, a dip would not be.
* The combined chart draws ``disk`` as the worst mount, ``load`` as the 1-minute load and
  ``net`` as rx + tx.
* Downsampling keeps the *maximum* of each time bucket (a one-minute spike to 99 % stays
  visible on a 30-day chart) and the weighted average beside it, so a chart can show both.
* Gaps are drawn as gaps: a bucket holding only failed samples (``ok`` false) is a break, and
  so is a hole between two points longer than :data:`GAP_FACTOR` times the expected step.

Public API: :data:`METRIC_NAMES`, :func:`metric_spec`, :func:`extract_all`, :class:`Row`,
:func:`rows_from_samples`, :func:`estimate_step`, :func:`downsample` and :class:`Line`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, NamedTuple

from collector.config import SAFE_NAME

PERCENT = "percent"
LOAD = "load"
RATE = "bytes/s"      # base-1000 units (kB/s, MB/s), as network people count
BYTES = "bytes"       # base-1024 units (KiB, MiB), as the kernel counts memory and disks
SECONDS = "seconds"
NUMBER = "number"

#: Two points further apart than this many expected steps are not joined by a line.
GAP_FACTOR = 2.5

CHECK_PREFIX = "check."
_TS_SHAPE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

Values = dict[str, float]
#: (min, sum, max, count) of one series over one bucket: sums merge exactly, averages do not.
Agg = tuple[float, float, float, int]


@dataclass(frozen=True)
class MetricSpec:
    name: str
    title: str
    unit: str
    extract: Callable[[Mapping[str, Any]], Values]
    combine: Callable[[Values], float | None]
    #: For ``check.*``: the unit depends on the perfdata, so it is read from a sample.
    unit_of: Callable[[Mapping[str, Any]], str | None] | None = None


def _num(value: Any) -> float | None:
    """A finite number, or None: JSON from a host may hold anything."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _section(sample: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = sample.get(key)
    return value if isinstance(value, Mapping) else {}


def _items(sample: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = sample.get(key)
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def _percent_of(section: str) -> Callable[[Mapping[str, Any]], Values]:
    def extract(sample: Mapping[str, Any]) -> Values:
        value = _num(_section(sample, section).get("percent"))
        return {section: value} if value is not None else {}
    return extract


def _disk(sample: Mapping[str, Any]) -> Values:
    out: Values = {}
    for disk in _items(sample, "disks"):
        mount, value = disk.get("mount"), _num(disk.get("percent"))
        if isinstance(mount, str) and value is not None:
            out[mount] = value
    return out


LOAD_LABELS = ("load1", "load5", "load15")


def _load(sample: Mapping[str, Any]) -> Values:
    load = _section(sample, "cpu").get("load")
    if not isinstance(load, list):
        return {}
    out: Values = {}
    for label, raw in zip(LOAD_LABELS, load):
        value = _num(raw)
        if value is not None and value >= 0:
            out[label] = value
    return out


def _net(sample: Mapping[str, Any]) -> Values:
    out: Values = {}
    ifaces = [i for i in _items(sample, "net") if i.get("iface") != "lo"]
    if not ifaces:
        return out
    for label, key in (("rx", "rx_bps"), ("tx", "tx_bps")):
        rates = [_num(i.get(key)) for i in ifaces]
        # Unknown (or, defensively, negative) rate on any interface: the sum is unknown.
        if all(r is not None and r >= 0 for r in rates):
            out[label] = sum(rates)  # type: ignore[arg-type]
    return out


def _only(label: str) -> Callable[[Values], float | None]:
    return lambda values: values.get(label)


def _max(values: Values) -> float | None:
    return max(values.values()) if values else None


def _rx_plus_tx(values: Values) -> float | None:
    if "rx" in values and "tx" in values:
        return values["rx"] + values["tx"]
    return None


def _first(values: Values) -> float | None:
    return next(iter(values.values()), None)


METRIC_TABLE: dict[str, MetricSpec] = {
    "cpu": MetricSpec("cpu", "CPU", PERCENT, _percent_of("cpu"), _only("cpu")),
    "memory": MetricSpec("memory", "Memory", PERCENT, _percent_of("memory"), _only("memory")),
    "swap": MetricSpec("swap", "Swap", PERCENT, _percent_of("swap"), _only("swap")),
    "disk": MetricSpec("disk", "Disk usage", PERCENT, _disk, _max),
    "load": MetricSpec("load", "Load average", LOAD, _load, _only("load1")),
    "net": MetricSpec("net", "Network", RATE, _net, _rx_plus_tx),
}
METRIC_NAMES: tuple[str, ...] = tuple(METRIC_TABLE)

# Nagios units of measure (Monitoring Plugins guidelines) -> (unit kind, factor to base unit).
_UOM: dict[str, tuple[str, float]] = {
    "%": (PERCENT, 1.0), "s": (SECONDS, 1.0), "ms": (SECONDS, 1e-3), "us": (SECONDS, 1e-6),
    "B": (BYTES, 1.0), "KB": (BYTES, 1024.0), "MB": (BYTES, 1024.0 ** 2),
    "GB": (BYTES, 1024.0 ** 3), "TB": (BYTES, 1024.0 ** 4),
}


def _check_perf(sample: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    check = _section(sample, "checks").get(name)
    perf = check.get("perf") if isinstance(check, Mapping) else None
    return perf if isinstance(perf, Mapping) else {}


def _check_spec(name: str) -> MetricSpec:
    def extract(sample: Mapping[str, Any]) -> Values:
        out: Values = {}
        for label, item in _check_perf(sample, name).items():
            if not isinstance(label, str) or not isinstance(item, Mapping):
                continue
            value = _num(item.get("value"))
            if value is not None:
                uom = item.get("uom")
                factor = _UOM.get(uom, (NUMBER, 1.0))[1] if isinstance(uom, str) else 1.0
                out[label] = value * factor
        return out

    def unit_of(sample: Mapping[str, Any]) -> str | None:
        for item in _check_perf(sample, name).values():
            if isinstance(item, Mapping) and isinstance(item.get("uom"), str):
                return _UOM.get(item["uom"], (NUMBER, 1.0))[0]
        return None

    return MetricSpec(CHECK_PREFIX + name, f"Check {name}", NUMBER, extract, _first, unit_of)


def metric_spec(metric: str) -> MetricSpec:
    """The spec of a metric name; ``ValueError`` for an unknown one (the web layer's 404)."""
    spec = METRIC_TABLE.get(metric)
    if spec is not None:
        return spec
    if metric.startswith(CHECK_PREFIX) and SAFE_NAME.match(metric[len(CHECK_PREFIX):]):
        return _check_spec(metric[len(CHECK_PREFIX):])
    raise ValueError(f"unknown metric {metric!r}")


def extract_all(sample: Mapping[str, Any]) -> dict[str, Values]:
    """Every metric of a sample (built-in ones and one per check), empty ones left out."""
    out = {}
    names = list(METRIC_NAMES)
    names += [CHECK_PREFIX + n for n in _section(sample, "checks")
              if isinstance(n, str) and SAFE_NAME.match(n)]
    for name in names:
        values = metric_spec(name).extract(sample)
        if values:
            out[name] = values
    return out


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
