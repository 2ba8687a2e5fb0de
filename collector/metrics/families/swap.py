"""swap: swap space in bytes and the percent in use."""

from __future__ import annotations

from collections.abc import Iterator

from collector.metrics.exports import field, gauge_series
from collector.metrics.family import (
    PERCENT,
    ChartSpec,
    Fact,
    Family,
    Level,
    Point,
    Sample,
    Summary,
    ThresholdSpec,
)
from collector.metrics.schema import counter, percent, record
from collector.metrics.values import num, only, percent_judge, percent_lines, percent_value, section


def swap_free(sample: Sample) -> Iterator[Point]:
    """SwapFree: the probe and psutil both store ``used = SwapTotal - SwapFree``."""
    swap = section(sample, "swap")
    total, used = num(swap.get("total")), num(swap.get("used"))
    if total is not None and used is not None:
        yield (), max(0.0, total - used)

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
    exported=(
        gauge_series("node_memory_SwapTotal_bytes", "Memory information field SwapTotal_bytes.",
              field("swap", "total")),
        gauge_series("node_memory_SwapFree_bytes", "Memory information field SwapFree_bytes.",
              swap_free),
    ),
)
