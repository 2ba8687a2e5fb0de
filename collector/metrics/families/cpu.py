"""cpu: CPU time counters, and the busy percentage derived from them between two passes.

The probe sends raw seconds per CPU state (``/proc/stat``); the percentage covers the whole
interval between passes, so the probe never has to sleep in the steady state.  Only on a
host's first pass (or after a gap) does it measure a short in-probe interval
(``cpu_sample_s``).  A single field stepping back by a tick is clamped to 0 as psutil does
(iowait does on NO_HZ kernels, psutil #1210); a falling total is a reset, hence a gap.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from collector.metrics.exports import counter_series
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
from collector.metrics.schema import MAX_ITEMS, array, number, percent, record
from collector.metrics.values import (
    OBJECT,
    num,
    only,
    percent_judge,
    percent_lines,
    percent_value,
    section,
    usable_interval,
)

CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
DEFAULT_CPU_SAMPLE_S = 0.25

CPU_TIMES = record({key: number(unit="s") for key in CPU_FIELDS})


_IDLE, _IOWAIT = CPU_FIELDS.index("idle"), CPU_FIELDS.index("iowait")


def _times(value: Any) -> list[float] | None:
    """The seconds of a CPU times object in :data:`CPU_FIELDS` order, or None when any field
    is unusable (a list, not a dict: this runs for every core of every host each pass)."""
    if not isinstance(value, dict):
        return None
    times = [num(value.get(key)) for key in CPU_FIELDS]
    return None if None in times else times  # type: ignore[return-value]


def has_cpu_counters(previous: Any) -> bool:
    """True when ``previous`` holds the CPU counters an interval percentage needs."""
    return _times(section(previous, "cpu").get("times")) is not None


def cpu_params_for(previous: Any, now_ts: float, prev_ts: float | None) -> dict[str, float]:
    """Probe parameters for CPU sampling: no in-probe sleep when the previous sample is usable.

    Returns {"cpu_sample_s": 0.0} in the steady state, else the default short interval so
    the first pass of a host (or the first after a gap) still gets a CPU percentage.
    """
    if has_cpu_counters(previous) and usable_interval(now_ts, prev_ts) is not None:
        return {"cpu_sample_s": 0.0}
    return {"cpu_sample_s": DEFAULT_CPU_SAMPLE_S}


def busy_percent(before: Any, after: Any) -> float | None:
    """CPU busy percent between two times objects; None for a gap (reset, no time elapsed).

    busy = total - idle - iowait, as psutil computes it.
    """
    old, new = _times(before), _times(after)
    if old is None or new is None or sum(new) < sum(old):
        return None
    deltas = [max(0.0, n - o) for o, n in zip(old, new)]
    total = sum(deltas)
    if total <= 0:
        return None
    busy = total - deltas[_IDLE] - deltas[_IOWAIT]
    return round(min(100.0, max(0.0, busy * 100.0 / total)), 1)


def cpu_seconds(sample: Sample) -> Iterator[Point]:
    """node_cpu_seconds_total{cpu, mode}: the raw per-core counters, in seconds.  ``cpu`` is the
    core's position in /proc/stat (its number, unless a core is offline)."""
    cores = section(sample, "cpu").get("per_core_times")
    for index, core in enumerate(cores if isinstance(cores, list) else []):
        if isinstance(core, OBJECT):
            for mode in CPU_FIELDS:
                value = num(core.get(mode))
                if value is not None:
                    yield (str(index), mode), value


def derive_cpu(cpu: dict, prev_cpu: Any, seconds: float | None) -> dict:
    """CPU percent over the interval between passes, else the probe's in-probe figures.

    A changed core count is a gap for the whole interval (hotplug, or another machine
    answering under the same name).
    """
    out = dict(cpu)
    prev = prev_cpu if isinstance(prev_cpu, dict) else {}
    prev_cores = prev.get("per_core_times")
    cores = cpu.get("per_core_times") or []
    same_cores = isinstance(prev_cores, list) and len(prev_cores) == len(cores) and \
        prev.get("count") == cpu.get("count")
    percent_now = None
    if seconds is not None and same_cores:
        percent_now = busy_percent(prev.get("times"), cpu.get("times"))
    if percent_now is not None:
        out["percent"] = percent_now
        out["per_core"] = [busy_percent(old, new) for old, new in zip(prev_cores, cores)]
        out["percent_source"] = "interval"
    else:
        out["percent"] = cpu.get("percent")
        out["per_core"] = cpu.get("per_core")
        out["percent_source"] = "probe" if out["percent"] is not None else None
    return out


FAMILY = Family(
    name="cpu",
    doc="CPU time counters per state and core; busy percent over the interval between passes",
    section="cpu",
    schema=record({
        "count": number(1, MAX_ITEMS, integer=True),
        "times": CPU_TIMES,
        "per_core_times": array(CPU_TIMES),
        "load": array(number(), length=3, nullable=True),
        "percent": percent(nullable=True),
        "per_core": array(percent(nullable=True), nullable=True),
    }),
    derive=derive_cpu,
    params=cpu_params_for,
    stored=(("cpu.percent_source", 'one of "interval", "probe" or null', ""),),
    chart=ChartSpec("CPU", PERCENT, percent_lines("cpu"), only("cpu")),
    thresholds=ThresholdSpec(percent_judge("cpu"), Level(80, 95, 3)),
    summary=Summary("CPU", percent_value("cpu"), overview=True, terminal="CPU"),
    facts=(Fact("CPUs", "cpu.count", "integer"),),
    exported=(counter_series("node_cpu_seconds_total", "Seconds the CPUs spent in each mode.",
                      cpu_seconds, ("cpu", "mode")),),
)
