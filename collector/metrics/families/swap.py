"""swap: swap space in bytes and the percent in use."""

from __future__ import annotations

from collector.metrics.family import PERCENT, ChartSpec, Fact, Family, Level, Summary, ThresholdSpec
from collector.metrics.schema import counter, percent, record
from collector.metrics.values import only, percent_judge, percent_lines, percent_value

FAMILY = Family(
    name="swap",
    doc="swap space in bytes and the percent in use",
    section="swap",
    schema=record({"total": counter(unit="bytes"), "used": counter(unit="bytes"),
                   "percent": percent()}),
    chart=ChartSpec("Swap", PERCENT, percent_lines("swap"), only("swap")),
    thresholds=ThresholdSpec(percent_judge("swap"), Level(50, 80, 3)),
    summary=Summary("Swap", percent_value("swap")),
    facts=(Fact("Swap", "swap.total", "size"),),
)
