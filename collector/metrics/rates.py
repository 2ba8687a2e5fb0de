"""Turn raw probe counters into the stored sample's derived values (DESIGN.md, sample schema).

The probe reports counters (CPU seconds, bytes); rates need two readings. The previous
stored sample of the same host is the first reading, so CPU percent and byte rates cover the
whole interval between passes, and the probe never has to sleep in the steady state.

Gaps: a counter that goes backwards (reboot, wrap, driver reload), a changed core count or
boot time, a missing or too old previous sample, all give `null`, never a negative rate or a
spike. Single CPU fields that step back by a tick are clamped to 0 as psutil does (iowait
does on NO_HZ kernels, psutil #1210); a falling total is a reset.

Units: `rx_bps`/`tx_bps` and `read_bps`/`write_bps` are BYTES per second, like the `*_bytes`
counters beside them. CPU percent is busy/total over all cores, 0..100.

Pure functions: the caller passes the timestamps, nothing here reads a clock.
"""

from __future__ import annotations

import math
from typing import Any

CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
DEFAULT_CPU_SAMPLE_S = 0.25
# Beyond this the previous sample is too old to make a meaningful "current" rate (and a
# counter could have wrapped unseen); the pass then asks for the in-probe interval.
MAX_INTERVAL_S = 900.0
# btime is computed by the kernel from the wall clock and moves by a second or so under NTP.
BOOT_TIME_TOLERANCE_S = 5.0


def _num(value: Any) -> float | None:
    """value as float when it is a finite real number (never bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _section(sample: Any, name: str) -> Any:
    return sample.get(name) if isinstance(sample, dict) else None


def _interval(now_ts: float, prev_ts: float | None) -> float | None:
    """Seconds between the passes when a rate over them is meaningful, else None."""
    if prev_ts is None:
        return None
    seconds = now_ts - prev_ts
    return seconds if 0 < seconds <= MAX_INTERVAL_S else None


def _same_boot(raw: dict, previous: Any) -> bool:
    """False when both samples carry a boot time and they differ: the host rebooted."""
    now_boot = _num(_section(_section(raw, "system"), "boot_time"))
    prev_boot = _num(_section(_section(previous, "system"), "boot_time"))
    if now_boot is None or prev_boot is None:
        return True  # cannot tell; falling counters still reveal a reboot
    return abs(now_boot - prev_boot) <= BOOT_TIME_TOLERANCE_S


def _times(value: Any) -> dict[str, float] | None:
    """A {field: seconds} CPU times object, or None when any field is unusable."""
    if not isinstance(value, dict):
        return None
    times = {key: _num(value.get(key)) for key in CPU_FIELDS}
    return None if any(v is None for v in times.values()) else times


def has_cpu_counters(previous: Any) -> bool:
    """True when `previous` holds the CPU counters an interval percentage needs."""
    return _times(_section(_section(previous, "cpu"), "times")) is not None


def cpu_params_for(previous: Any, now_ts: float, prev_ts: float | None) -> dict[str, float]:
    """Probe parameters for CPU sampling: no in-probe sleep when the previous sample is usable.

    Returns {"cpu_sample_s": 0.0} in the steady state, else the default short interval so
    the first pass of a host (or the first after a gap) still gets a CPU percentage.
    """
    if has_cpu_counters(previous) and _interval(now_ts, prev_ts) is not None:
        return {"cpu_sample_s": 0.0}
    return {"cpu_sample_s": DEFAULT_CPU_SAMPLE_S}


def busy_percent(before: Any, after: Any) -> float | None:
    """CPU busy percent between two times objects; None for a gap (reset, no time elapsed).

    busy = total - idle - iowait, as psutil computes it.
    """
    old, new = _times(before), _times(after)
    if old is None or new is None or sum(new.values()) < sum(old.values()):
        return None
    deltas = {key: max(0.0, new[key] - old[key]) for key in CPU_FIELDS}
    total = sum(deltas.values())
    if total <= 0:
        return None
    busy = total - deltas["idle"] - deltas["iowait"]
    return round(min(100.0, max(0.0, busy * 100.0 / total)), 1)


def _derive_cpu(cpu: dict, prev_cpu: Any, usable: bool) -> dict:
    """CPU percent over the interval between passes, else the probe's in-probe figures.

    A changed core count is a gap for the whole interval (hotplug, or another machine
    answering under the same name).
    """
    out = dict(cpu)
    prev_cores = _section(prev_cpu, "per_core_times")
    cores = cpu.get("per_core_times") or []
    same_cores = isinstance(prev_cores, list) and len(prev_cores) == len(cores) and \
        _section(prev_cpu, "count") == cpu.get("count")
    percent = None
    if usable and same_cores:
        percent = busy_percent(_section(prev_cpu, "times"), cpu.get("times"))
    if percent is not None:
        out["percent"] = percent
        out["per_core"] = [busy_percent(old, new) for old, new in zip(prev_cores, cores)]
        out["percent_source"] = "interval"
    else:
        out["percent"] = cpu.get("percent")
        out["per_core"] = cpu.get("per_core")
        out["percent_source"] = "probe" if out["percent"] is not None else None
    return out


def _rate(new: Any, old: Any, seconds: float | None) -> float | None:
    """Per-second rate of a counter; None when it went backwards or anything is missing."""
    new_value, old_value = _num(new), _num(old)
    if seconds is None or new_value is None or old_value is None or new_value < old_value:
        return None
    return round((new_value - old_value) / seconds, 1)


def _derive_counters(entries: list, prev_entries: Any, key: str, seconds: float | None,
                     rates: dict[str, str]) -> list:
    """Copy each entry (matched to the previous one by `key`) with rates added.

    `rates` maps output name -> counter name, e.g. {"rx_bps": "rx_bytes"}.
    """
    previous = {}
    if isinstance(prev_entries, list):
        previous = {item.get(key): item for item in prev_entries if isinstance(item, dict)}
    out = []
    for entry in entries:
        old = previous.get(entry.get(key)) if seconds is not None else None
        derived = dict(entry)
        for name, counter in rates.items():
            derived[name] = _rate(entry.get(counter), _section(old, counter), seconds)
        out.append(derived)
    return out


def _add_busy_percent(disks: list, seconds: float | None) -> list:
    """Disk utilisation like iostat %util: busy milliseconds per elapsed millisecond."""
    for disk in disks:
        busy_ms_per_s = disk.pop("busy_ms_per_s")
        disk["busy_percent"] = None if busy_ms_per_s is None or seconds is None else \
            round(min(100.0, busy_ms_per_s / 10.0), 1)
    return disks


def merge_top(processes: dict) -> list:
    """Union of top_cpu and top_mem by pid, busiest CPU first, then largest memory."""
    merged: dict[Any, dict] = {}
    for entry in list(processes.get("top_cpu") or []) + list(processes.get("top_mem") or []):
        merged.setdefault(entry.get("pid"), entry)
    return sorted(merged.values(), key=lambda p: (
        -(_num(p.get("cpu_percent")) or 0.0), -(_num(p.get("rss")) or 0.0),
        _num(p.get("pid")) or 0.0))


def derive_sample(raw: dict, previous: dict | None, now_ts: float,
                  prev_ts: float | None) -> dict:
    """The metric part of a stored line from raw (validated) probe output.

    `previous` is the last stored sample of the host (or None), taken at `prev_ts`; the
    caller adds v, ts, host, ok, error and collect. Raw counters are kept beside the rates
    (`cpu.times`, `cpu.per_core_times`, net and disk byte counters) for the next pass.
    A malformed `previous` (old schema, failed pass) is treated as no previous.
    """
    seconds = _interval(now_ts, prev_ts)
    usable = seconds is not None and isinstance(previous, dict) and _same_boot(raw, previous)
    if not usable:
        seconds = None
    sample: dict[str, Any] = {}
    for name in ("system", "cpu", "memory", "swap", "disks", "disk_io", "net", "processes",
                 "users", "checks"):
        if name in raw:
            sample[name] = raw[name]
    if isinstance(raw.get("cpu"), dict):
        sample["cpu"] = _derive_cpu(raw["cpu"], _section(previous, "cpu"), usable)
    if isinstance(raw.get("net"), list):
        sample["net"] = _derive_counters(raw["net"], _section(previous, "net"), "iface",
                                         seconds, {"rx_bps": "rx_bytes", "tx_bps": "tx_bytes"})
    if isinstance(raw.get("disk_io"), list):
        sample["disk_io"] = _add_busy_percent(_derive_counters(
            raw["disk_io"], _section(previous, "disk_io"), "device", seconds,
            {"read_bps": "read_bytes", "write_bps": "write_bytes",
             "busy_ms_per_s": "busy_ms"}), seconds)
    if isinstance(raw.get("processes"), dict):
        procs = raw["processes"]
        sample["processes"] = {"count": procs.get("count"), "top": merge_top(procs)}
        for key in ("scanned", "cpu_basis"):  # never "counters": the log must not grow by it
            if key in procs:
                sample["processes"][key] = procs[key]
    sample["errors"] = dict(raw.get("errors") or {})
    return sample
