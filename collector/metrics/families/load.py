"""load: the 1, 5 and 15 minute load averages (``cpu.load``), judged per core."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from collector.metrics.exports import gauge_series
from collector.metrics.family import (
    LOAD,
    ChartSpec,
    Family,
    Judged,
    Level,
    Point,
    Sample,
    Summary,
    ThresholdSpec,
    Values,
)
from collector.metrics.values import num, only, section

LOAD_LABELS = ("load1", "load5", "load15")


def load_lines(sample: Sample) -> Values:
    load = section(sample, "cpu").get("load")
    if not isinstance(load, list):
        return {}
    out: Values = {}
    for label, raw in zip(LOAD_LABELS, load):
        value = num(raw)
        if value is not None and value >= 0:
            out[label] = value
    return out


def load_average(position: int) -> Callable[[Sample], Iterator[Point]]:
    def points(sample: Sample) -> Iterator[Point]:
        load = section(sample, "cpu").get("load")
        value = num(load[position]) if isinstance(load, list) and len(load) == 3 else None
        if value is not None:
            yield (), value
    return points


def load1(sample: Sample) -> float | None:
    load = section(sample, "cpu").get("load")
    return num(load[0]) if isinstance(load, list) and load else None


def per_core(sample: Sample) -> list[Judged] | None:
    """The 1-minute load divided by the CPU count: a load of 4 is idle on 16 cores."""
    count, one = num(section(sample, "cpu").get("count")), load1(sample)
    if not count or count < 1 or one is None:
        return None
    value = round(one / count, 2)
    return [Judged(None, value, value)]


FAMILY = Family(
    name="load",
    within="cpu",
    doc="load averages over 1, 5 and 15 minutes; thresholds compare the 1-minute one per core",
    chart=ChartSpec("Load average", LOAD, load_lines, only("load1"),
                    legend={"load1": "1 min", "load5": "5 min", "load15": "15 min"}),
    thresholds=ThresholdSpec(per_core, Level(2.0, 4.0, 3), unit="/core", relative_margin=True,
                             note="per core"),
    summary=Summary("Load (1 min)", lambda sample: (load1(sample), None), format="number",
                    overview=True),
    exported=tuple(
        gauge_series(f"node_{label}", f"{minutes}m load average.", load_average(position))
        for position, (label, minutes) in enumerate(zip(LOAD_LABELS, (1, 5, 15)))),
)
