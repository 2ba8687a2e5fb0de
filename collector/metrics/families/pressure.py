"""pressure: Linux pressure stall information (PSI, ``/proc/pressure``, kernel 4.20+).

The share of time in which tasks were stalled waiting for CPU, memory or I/O: ``some`` (at
least one task stalled) and, for memory and io, ``full`` (every non-idle task stalled at
once), each as the kernel's 10, 60 and 300 second averages in percent, plus ``total``, the
cumulative stall time in microseconds (a counter).  Unlike a utilisation percentage it says
whether work is actually waiting: a host at 100 % CPU with no CPU pressure is merely busy.

The section is absent on kernels without PSI (before 4.20, or booted with ``psi=0``): that is
no error.  The central host reads it with the probe's own parser (psutil has no PSI).  The
60-second ``some`` average is what the chart draws and the thresholds judge: memory and io
warn at 10 % and are critical at 30 %; cpu is off by default (a busy build server lives at
high CPU pressure and is fine).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from collector.metrics.exports import counter_series
from collector.metrics.family import (
    PERCENT,
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
from collector.metrics.schema import counter, percent, record
from collector.metrics.values import highest, largest, num, section

RESOURCES = ("cpu", "memory", "io")
#: The kernel reports "full" for cpu only since 5.13, and at the system level it is zero.
KINDS = {"cpu": ("some",), "memory": ("some", "full"), "io": ("some", "full")}
AVERAGE = "avg60"

_LINE = record({"avg10": percent(), "avg60": percent(), "avg300": percent(),
                "total": counter(unit="us")})


def _average(sample: Sample, resource: str, kind: str) -> float | None:
    return num(section(section(section(sample, "pressure"), resource), kind).get(AVERAGE))


#: node_exporter's PSI counters: (resource, kind) -> (name, help).  "some" is waiting (at
#: least one task stalled), "full" stalled (no task could run).
NODE_SERIES = {
    ("cpu", "some"): ("cpu_waiting", "Total time in seconds that processes have waited for CPU "
                                     "time"),
    ("io", "some"): ("io_waiting", "Total time in seconds that processes have waited due to IO "
                                   "congestion"),
    ("io", "full"): ("io_stalled", "Total time in seconds no process could make progress due "
                                   "to IO congestion"),
    ("memory", "some"): ("memory_waiting", "Total time in seconds that processes have waited "
                                           "for memory"),
    ("memory", "full"): ("memory_stalled", "Total time in seconds no process could make "
                                           "progress due to memory congestion"),
}


def stall_seconds(resource: str, kind: str) -> Callable[[Sample], Iterator[Point]]:
    """The cumulative stall time; the kernel counts it in microseconds."""
    def points(sample: Sample) -> Iterator[Point]:
        total = num(section(section(section(sample, "pressure"), resource), kind).get("total"))
        if total is not None:
            yield (), total / 1e6
    return points


def pressure_lines(sample: Sample) -> Values:
    out: Values = {}
    for resource in RESOURCES:
        for kind in KINDS[resource]:
            value = _average(sample, resource, kind)
            if value is not None:
                out[f"{resource} {kind}"] = value
    return out


def stalls(sample: Sample) -> list[Judged] | None:
    """The 60-second "some" average of each resource the host reports."""
    if not isinstance(sample.get("pressure"), dict):
        return None
    judged = []
    for resource in RESOURCES:
        value = _average(sample, resource, "some")
        if value is not None:
            judged.append(Judged(resource, value, value))
    return judged


def worst(sample: Sample) -> tuple[float | None, str | None]:
    """The resource under the most pressure, as (percent, resource)."""
    return highest((judged.item, judged.value) for judged in stalls(sample) or [])


FAMILY = Family(
    name="pressure",
    doc="pressure stall information: percent of time tasks waited for cpu, memory, io",
    section="pressure",
    schema=record({
        resource: record({kind: _LINE for kind in KINDS[resource]},
                         optional=KINDS[resource][1:])
        for resource in RESOURCES}, optional=RESOURCES),
    optional=True,
    chart=ChartSpec("Pressure stall (60 s average)", PERCENT, pressure_lines, largest),
    thresholds=ThresholdSpec(stalls, Level(None, None, 2), fixed_items={
        "cpu": Level(None, None, 2), "memory": Level(10, 30, 2), "io": Level(10, 30, 2)},
        note="the 60-second 'some' average, per resource", item_label="resource"),
    summary=Summary("Pressure", worst, item_field="pressure_resource"),
    local="probe",
    exported=tuple(counter_series(f"node_pressure_{name}_seconds_total", help_text,
                           stall_seconds(resource, kind))
                   for (resource, kind), (name, help_text) in NODE_SERIES.items()),
)
