"""processes: how many there are, and the top ones by CPU and by memory.

Per-process CPU percent covers the interval between passes: the probe sends
``processes.counters`` ({pid: [starttime, ticks]}), which the pass takes out before storing
(collector.store.proc_counters keeps it) and sends back next pass.  The stored section holds
one merged ``top`` list instead of the probe's ``top_cpu`` and ``top_mem``.
"""

from __future__ import annotations

from typing import Any

from collector.metrics.exports import field, gauge_series
from collector.metrics.family import Column, Fact, Family, Table
from collector.metrics.schema import (
    MAX_ITEMS,
    array,
    counter,
    exact_string,
    number,
    one_of,
    percent,
    pid_ticks,
    record,
    string,
)
from collector.metrics.values import num

MAX_TOP = 1000
# processes.counters: one entry per scanned process (remote_probe.probe.PROC_COUNTERS_MAX)
MAX_PROC_COUNTERS = 100_000
CPU_BASES = ("interval", "probe", "lifetime")

PROCESS = record({
    "pid": counter(),
    "user": string(64),
    "name": string(256),
    "cmdline": string(1024),
    # percent of one CPU, as top and psutil report it: above 100 for multi-threaded work
    "cpu_percent": number(0.0, 100.0 * MAX_ITEMS, nullable=True, unit="%"),
    "mem_percent": percent(nullable=True),
    "rss": counter(nullable=True, unit="bytes"),
})


def merge_top(processes: dict) -> list:
    """Union of top_cpu and top_mem by pid, busiest CPU first, then largest memory.

    On a quiet host the probe fills top_cpu up with processes that used nothing (kernel
    threads: no CPU in the interval, no resident memory), which only push the interesting
    ones down the page: those are left out, unless fewer than the lists' length (``top_n``)
    would remain, so a container with five processes still lists them all."""
    top_cpu = list(processes.get("top_cpu") or [])
    top_mem = list(processes.get("top_mem") or [])
    merged: dict[Any, dict] = {}
    for entry in top_cpu + top_mem:
        merged.setdefault(entry.get("pid"), entry)
    used: list[dict] = []
    idle: list[dict] = []
    for process in sorted(merged.values(), key=_rank):
        (used if _uses_something(process) else idle).append(process)
    wanted = max(len(top_cpu), len(top_mem))
    return used if len(used) >= wanted else used + idle[:wanted - len(used)]


def _rank(process: dict) -> tuple[float, float, float]:
    """Busiest CPU first, then largest memory, then by pid."""
    return (-(num(process.get("cpu_percent")) or 0.0), -(num(process.get("rss")) or 0.0),
            num(process.get("pid")) or 0.0)


def _uses_something(process: dict) -> bool:
    return bool(num(process.get("cpu_percent")) or num(process.get("rss"))
                or num(process.get("mem_percent")))


def derive_processes(procs: dict, previous: Any, seconds: float | None) -> dict:
    out = {"count": procs.get("count"), "top": merge_top(procs)}
    for key in ("scanned", "cpu_basis"):  # never "counters": the log must not grow by it
        if key in procs:
            out[key] = procs[key]
    return out


FAMILY = Family(
    name="processes",
    doc="the process count and the top processes by CPU and by resident memory",
    section="processes",
    schema=record({
        "count": counter(),
        "scanned": counter(nullable=True),
        "cpu_basis": one_of(CPU_BASES),
        "top_cpu": array(PROCESS, MAX_TOP),
        "top_mem": array(PROCESS, MAX_TOP),
        "counters": record({
            "uptime": number(unit="s"), "boot_id": exact_string(64, nullable=True),
            "ticks": pid_ticks(MAX_PROC_COUNTERS),
        }, optional=("boot_id",)),
    }, optional=("scanned", "cpu_basis", "counters")),
    derive=derive_processes,
    stored=(("processes.top", f"list (at most {2 * MAX_TOP}): top_cpu and top_mem merged by "
             "pid, less the processes with no CPU and no memory (unless fewer than top_n "
             "remain)", ""),)
    + tuple((path.replace("processes.top_cpu[]", "processes.top[]"), text, unit)
            for path, text, unit in PROCESS.rows("processes.top_cpu[]")),
    not_stored=("processes.top_cpu", "processes.top_mem", "processes.counters"),
    facts=(Fact("Processes", "processes.count", "integer"),),
    table=Table("Top processes", "processes.top", (
        Column("pid", "PID", "integer"), Column("name", "Name"), Column("user", "User"),
        Column("cmdline", "Command line"), Column("cpu_percent", "CPU", "percent"),
        Column("mem_percent", "Memory", "percent"), Column("rss", "Resident", "size")),
        "No process reported."),
    exported=(gauge_series("osmon_processes", "Processes on the host (the probe's count of /proc).",
                    field("processes", "count")),),
)
