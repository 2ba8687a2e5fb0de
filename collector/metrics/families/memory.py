"""memory: RAM in bytes, and the percent in use (``used = total - available``, like free)."""

from __future__ import annotations

from collector.metrics.exports import field, gauge_series
from collector.metrics.family import PERCENT, ChartSpec, Fact, Family, Level, Summary, ThresholdSpec
from collector.metrics.schema import counter, percent, record
from collector.metrics.values import only, percent_judge, percent_lines, percent_value

FAMILY = Family(
    name="memory",
    doc="memory in bytes; percent = (total - available) / total",
    section="memory",
    schema=record({
        "total": counter(unit="bytes"), "available": counter(unit="bytes"),
        "used": counter(unit="bytes"), "percent": percent(),
        "buffers": counter(nullable=True, unit="bytes"),
        "cached": counter(nullable=True, unit="bytes"),
    }, optional=("buffers", "cached")),
    chart=ChartSpec("Memory", PERCENT, percent_lines("memory"), only("memory")),
    thresholds=ThresholdSpec(percent_judge("memory"), Level(85, 95, 3)),
    summary=Summary("Memory", percent_value("memory"), overview=True, terminal="MEM"),
    facts=(Fact("Memory", "memory.total", "size"),),
    # node_exporter's names for /proc/meminfo fields.  Not "cached": the probe adds
    # SReclaimable to it, so it is not node_memory_Cached_bytes.
    exported=tuple(
        gauge_series(f"node_memory_{meminfo}_bytes", f"Memory information field {meminfo}_bytes.",
              field("memory", key))
        for meminfo, key in (("MemTotal", "total"), ("MemAvailable", "available"),
                             ("Buffers", "buffers"))),
)
