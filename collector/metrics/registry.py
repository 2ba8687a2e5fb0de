"""The metric registry: every family osmon knows, in the order they are shown.

This is the one list that validation (:mod:`collector.metrics.gate`), rates
(:mod:`collector.metrics.rates`), chart series (:mod:`collector.metrics.series`), thresholds
(:mod:`collector.config`), alert rules (:mod:`collector.alerts.rules`), host verdicts
(:mod:`collector.views.health`), pages and mail loop over.  Adding a family is its probe
reader, one module in :mod:`collector.metrics.families` and one line here (see
docs/architecture.md, "How to add a metric family").
"""

from __future__ import annotations

from collections.abc import Iterator

from collector.metrics.families import (
    checks,
    cpu,
    disk_full,
    disk_io,
    disks,
    load,
    memory,
    net,
    pressure,
    processes,
    swap,
    system,
    users,
)
from collector.metrics.family import ChartSpec, Family, Level

#: In display order: charts, overview columns, host page lines and alerts follow it.
FAMILIES: tuple[Family, ...] = tuple(module.FAMILY for module in (
    system, cpu, memory, swap, disks, disk_full, load, net, pressure, disk_io, processes, users,
    checks))

BY_NAME: dict[str, Family] = {family.name: family for family in FAMILIES}
#: The sample's sections, each owned by one family (load has none: it reads ``cpu.load``).
SECTIONS: dict[str, Family] = {f.section: f for f in FAMILIES if f.section is not None}

#: Families with a fixed chart, by metric name: the chart URLs' ``<metric>``.
CHARTS: dict[str, Family] = {f.name: f for f in FAMILIES if f.chart is not None}
CHART_NAMES: tuple[str, ...] = tuple(CHARTS)
#: Families judged against thresholds that hosts.toml may set.
CONFIGURABLE: tuple[Family, ...] = tuple(
    f for f in FAMILIES if f.thresholds is not None and f.thresholds.configurable)
JUDGED: tuple[Family, ...] = tuple(f for f in FAMILIES if f.thresholds is not None)
SUMMARIZED: tuple[Family, ...] = tuple(f for f in FAMILIES if f.summary is not None)


def family(name: str) -> Family:
    """The family of a metric name; ``KeyError`` for an unknown one."""
    return BY_NAME[name]


def chart_spec(metric: str) -> ChartSpec:
    """The chart of a metric name (``cpu``, ``check.<name>``); ``ValueError`` if unknown."""
    fixed = CHARTS.get(metric)
    if fixed is not None and fixed.chart is not None:
        return fixed.chart
    for candidate in FAMILIES:
        prefix = candidate.chart_prefix
        if prefix and metric.startswith(prefix) and candidate.chart_for is not None:
            return candidate.chart_for(metric[len(prefix):])
    raise ValueError(f"unknown metric {metric!r}")


_DYNAMIC = tuple(f for f in FAMILIES if f.chart_prefix and f.chart_names is not None)


def dynamic_chart_names(sample: dict) -> Iterator[str]:
    """The per-item charts a sample has (``check.<name>`` for each of its checks)."""
    for candidate in _DYNAMIC:
        assert candidate.chart_names is not None and candidate.chart_prefix is not None
        for name in candidate.chart_names(sample):
            yield candidate.chart_prefix + name


def builtin_levels() -> tuple[dict[str, Level], dict[str, dict[str, Level]]]:
    """The most general level of the threshold resolution chain: every judged family's own
    defaults, and the per-item ones of families with fixed items (pressure resources)."""
    levels = {f.name: f.thresholds.default for f in JUDGED if f.thresholds is not None}
    items = {f.name: dict(f.thresholds.fixed_items) for f in JUDGED
             if f.thresholds is not None and f.thresholds.fixed_items}
    return levels, items
