"""Collect the local host in-process with psutil, in the probe's raw output shape.

psutil is an independent source (it is also what the probe is checked against), so the
numbers come from psutil, never from running the probe. Only the selection *policy* is
shared with the probe (which mounts are real file systems, which block devices are whole
physical disks), so the local host and remote hosts list the same kind of things.

Semantics match the probe: with `cpu_sample_s` > 0 system CPU percent is measured over that
in-process interval; with 0 (steady state, the collector has the previous counters) nothing
sleeps and it is left to collector.rates. Process CPU percent comes, like the probe's, from
`processes.counters` of the previous pass sent back as `proc_prev` (kept by
collector.store.proc_counters: `osmon collect` is a new process every minute, so memory would not
do), computed by the probe's own process_cpu_percent on the same units (clock ticks, the
boot clock); else from the in-process interval; else the lifetime average like `ps`. Lists
are capped like the probe's (LIST_CAPS). Each section fails alone into `errors`.
"""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import time
from collections.abc import Callable
from typing import Any

import psutil

from collector.metrics.registry import SECTIONS
from remote_probe.probe import (
    CPU_FIELDS,
    busy_percent,
    cap_entries,
    is_physical_disk,
    iso_utc,
    mask_command_line,
    parse_proc_prev,
    process_cpu_percent,
    select_mounts,
    statvfs_with_timeout,
)
from remote_probe.probe import DEFAULTS as PROBE_DEFAULTS
from remote_probe.probe import FAMILIES as PROBE_FAMILIES
from remote_probe.probe import Context as ProbeContext

#: The probe's parameters that mean something here, with the probe's own defaults: the two
#: must give the same sample for the same settings.
_SHARED_PARAMS = ("cpu_sample_s", "network_fs", "statvfs_timeout_s", "top_n",
                  "include_loopback", "max_processes", "command_lines")
DEFAULTS: dict[str, Any] = {key: PROBE_DEFAULTS[key] for key in _SHARED_PARAMS}
DEFAULTS["proc_prev"] = None
BOOT_ID = "/proc/sys/kernel/random/boot_id"
CMDLINE_CHARS = 200


class _State:
    """Readings shared between sections: the first half of the in-process interval."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params
        self.cpu_before: Any = None  # psutil per-cpu times at the start of the interval
        self.cpu_total_before: Any = None
        self.procs_before: dict[int, tuple[float, float]] | None = None  # pid -> (start, cpu)
        self.procs_before_at = 0.0
        self._probe: ProbeContext | None = None

    def probe_context(self) -> ProbeContext:
        """A probe context on this machine's /proc, for the families read by the probe's code."""
        if self._probe is None:
            self._probe = ProbeContext(dict(PROBE_DEFAULTS, checks=None, proc_prev=None))
        return self._probe


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def _times(cputimes: Any) -> dict[str, float]:
    return {key: float(getattr(cputimes, key, 0.0)) for key in CPU_FIELDS}


# --------------------------------------------------------------------------- sections


def _system(state: _State) -> dict[str, Any]:
    uname = platform.uname()
    boot = psutil.boot_time()
    return {
        "hostname": socket.gethostname(),
        "os": uname.system,
        "kernel": uname.release,
        "arch": uname.machine,
        "boot_time": int(boot),
        "uptime_s": round(max(0.0, time.time() - boot), 2),
        "python": platform.python_version(),
    }


def _cpu(state: _State) -> dict[str, Any]:
    per_core = psutil.cpu_times(percpu=True)
    total = psutil.cpu_times()
    result: dict[str, Any] = {
        "count": len(per_core) or 1,
        "times": _times(total),
        "per_core_times": [_times(core) for core in per_core],
        "load": [round(float(value), 2) for value in psutil.getloadavg()],
        "percent": None,
        "per_core": None,
    }
    if state.cpu_total_before is not None:
        result["percent"] = busy_percent(_times(state.cpu_total_before), result["times"])
        if len(state.cpu_before) == len(per_core):
            result["per_core"] = [busy_percent(_times(old), _times(new))
                                  for old, new in zip(state.cpu_before, per_core)]
    return result


def _memory(state: _State) -> dict[str, Any]:
    vm = psutil.virtual_memory()
    return {"total": vm.total, "available": vm.available, "used": vm.used,
            "percent": float(vm.percent), "buffers": getattr(vm, "buffers", 0),
            "cached": getattr(vm, "cached", 0)}


def _swap(state: _State) -> dict[str, Any]:
    sm = psutil.swap_memory()
    return {"total": sm.total, "used": sm.used, "percent": float(sm.percent)}


def _disks(state: _State, errors: dict[str, str]) -> list[dict[str, Any]]:
    """psutil.disk_partitions(all=False), then the probe's policy (no squashfs, one entry
    per device, network/FUSE only on request and under a timeout)."""
    parts = psutil.disk_partitions(all=False)
    selected = cap_entries(errors, "disks", select_mounts(
        [(p.device, p.mountpoint, p.fstype) for p in parts],
        frozenset(p.fstype for p in parts), state.params["network_fs"]), "file systems")
    timeout = state.params["statvfs_timeout_s"]
    timed = [mount for _, mount, _, is_timed in selected if is_timed]
    results = statvfs_with_timeout(timed, psutil.disk_usage, timeout, time.monotonic) \
        if timed else {}
    disks = []
    for device, mount, fstype, is_timed in selected:
        try:
            usage = results.get(mount) if is_timed else psutil.disk_usage(mount)
        except Exception as exc:  # noqa: BLE001 - reported per mount
            usage = exc
        if usage is None:
            errors["disks:" + mount] = f"TimeoutError: statvfs did not answer within " \
                                       f"{timeout:g} s ({fstype})"
        elif isinstance(usage, Exception):
            errors["disks:" + mount] = _describe(usage)
        else:
            disks.append({"mount": mount, "device": device, "fstype": fstype,
                          "total": usage.total, "used": usage.used, "free": usage.free,
                          "percent": float(usage.percent)})
    return disks


def _disk_io(state: _State, errors: dict[str, str]) -> list[dict[str, Any]]:
    try:
        block: frozenset[str] | None = frozenset(os.listdir("/sys/block"))
    except OSError:
        block = None
    counters = psutil.disk_io_counters(perdisk=True) or {}
    return cap_entries(errors, "disk_io", [
        {"device": name, "read_bytes": io.read_bytes, "write_bytes": io.write_bytes,
         "reads": io.read_count, "writes": io.write_count, "busy_ms": getattr(io, "busy_time", 0)}
        for name, io in counters.items() if is_physical_disk(name, block)], "devices",
        lambda entry: entry["read_bytes"] + entry["write_bytes"])


def _net(state: _State, errors: dict[str, str]) -> list[dict[str, Any]]:
    counters = psutil.net_io_counters(pernic=True) or {}
    return cap_entries(errors, "net", [
        {"iface": name, "rx_bytes": io.bytes_recv, "rx_packets": io.packets_recv,
         "rx_errors": io.errin, "rx_drops": io.dropin, "tx_bytes": io.bytes_sent,
         "tx_packets": io.packets_sent, "tx_errors": io.errout, "tx_drops": io.dropout}
        for name, io in counters.items() if state.params["include_loopback"] or name != "lo"],
        "interfaces", lambda entry: entry["rx_bytes"] + entry["tx_bytes"])


def _process_times(max_processes: int) -> dict[int, tuple[psutil.Process, float, float, int]]:
    """pid -> (process, create_time, user+system seconds, rss) for up to max_processes."""
    found = {}
    attrs = ["create_time", "cpu_times", "memory_info"]
    for count, proc in enumerate(psutil.process_iter(attrs)):
        if count >= max_processes:
            break
        info = proc.info
        if info["cpu_times"] is None or info["create_time"] is None:
            continue  # access denied or gone
        rss = info["memory_info"].rss if info["memory_info"] is not None else 0
        found[proc.pid] = (proc, info["create_time"],
                           info["cpu_times"].user + info["cpu_times"].system, rss)
    return found


def _process_entry(proc: psutil.Process, cpu: float | None, rss: int,
                   mem_total: int, command_lines: bool) -> dict[str, Any]:
    """Details for one top process; a process that vanished meanwhile keeps empty strings."""
    details = {"name": "", "user": "", "cmdline": ""}
    with contextlib.suppress(psutil.Error), proc.oneshot():
        details["name"] = proc.name()
        details["user"] = proc.username()
        if command_lines:  # masked as the probe masks them on the other hosts
            details["cmdline"] = " ".join(mask_command_line(proc.cmdline()))[:CMDLINE_CHARS]
    return {"pid": proc.pid, "user": details["user"], "name": details["name"],
            "cmdline": details["cmdline"], "cpu_percent": cpu,
            "mem_percent": round(rss * 100.0 / mem_total, 2), "rss": rss}


def boot_clock() -> float:
    """Seconds since boot on the clock /proc/uptime shows (CLOCK_BOOTTIME), not the wall clock:
    the interval between two collections must not move when NTP steps the time."""
    try:
        return time.clock_gettime(time.CLOCK_BOOTTIME)
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(0.0, time.time() - psutil.boot_time())


def _boot_id() -> str | None:
    try:
        with open(BOOT_ID, encoding="ascii") as fh:
            return fh.read(64).strip() or None
    except (OSError, ValueError):
        return None


def _tick_readings(current: dict[int, tuple[psutil.Process, float, float, int]],
                   boot: float, clk_tck: int) -> list[tuple[int, int, int]]:
    """(pid, starttime, ticks) in the probe's units: psutil's seconds are ticks / CLK_TCK and
    create_time is boot time + starttime / CLK_TCK, so rounding gives the kernel's integers
    back (and the same process the same starttime in the next `osmon collect`)."""
    return [(pid, max(0, round((start - boot) * clk_tck)), max(0, round(spent * clk_tck)))
            for pid, (_, start, spent, _) in current.items()]


def _processes(state: _State, errors: dict[str, str]) -> dict[str, Any]:
    """Top processes by CPU and by RSS; see the module docstring for CPU semantics."""
    count = len(psutil.pids())
    clk_tck = os.sysconf("SC_CLK_TCK")
    uptime = boot_clock()
    scanned_at = time.monotonic()
    current = _process_times(state.params["max_processes"])
    boot = psutil.boot_time()
    prev = None
    try:
        prev = parse_proc_prev(state.params["proc_prev"])
    except ValueError as exc:
        errors["processes:prev"] = _describe(exc)
    boot_id = _boot_id()
    cpu, counters, from_prev = process_cpu_percent(
        _tick_readings(current, boot, clk_tck), uptime, prev, clk_tck, boot_id)
    basis = "interval" if from_prev else "lifetime"
    before = state.procs_before
    interval = scanned_at - state.procs_before_at if before is not None else None
    if not from_prev and before is not None and interval:
        basis = "probe"
        for pid, (_, start, spent, _) in current.items():
            old = before.get(pid)
            delta = spent - old[1] if old is not None and old[0] == start else spent
            cpu[pid] = round(max(0.0, delta) / interval * 100.0, 1)
    top_n = state.params["top_n"]
    by_cpu = sorted(current, key=lambda pid: (-(cpu[pid] or 0.0), pid))[:top_n]
    by_mem = sorted(current, key=lambda pid: (-current[pid][3], pid))[:top_n]
    mem_total = psutil.virtual_memory().total
    details = {pid: _process_entry(current[pid][0], cpu[pid], current[pid][3], mem_total,
                                   state.params["command_lines"])
               for pid in dict.fromkeys(by_cpu + by_mem)}
    return {"count": count, "scanned": len(current), "cpu_basis": basis,
            "top_cpu": [details[pid] for pid in by_cpu],
            "top_mem": [details[pid] for pid in by_mem],
            "counters": {"uptime": uptime, "boot_id": boot_id, "ticks": counters}}


def _users(state: _State, errors: dict[str, str]) -> list[dict[str, Any]]:
    return cap_entries(errors, "users", [
        {"name": user.name, "tty": user.terminal, "from": user.host or None,
         "since": iso_utc(user.started)} for user in psutil.users()], "sessions")


# --------------------------------------------------------------------------- driver

#: psutil's reading of each section this module measures itself.
PSUTIL_READERS: dict[str, Callable[[_State, dict[str, str]], Any]] = {
    "system": lambda state, errors: _system(state),
    "cpu": lambda state, errors: _cpu(state),
    "memory": lambda state, errors: _memory(state),
    "swap": lambda state, errors: _swap(state),
    "disks": _disks,
    "disk_io": _disk_io,
    "net": _net,
    "processes": _processes,
    "users": _users,
}
#: The probe's own readers, for sections psutil cannot give (``Family.local == "probe"``).
PROBE_READERS = dict(PROBE_FAMILIES)
WIRE_ORDER = tuple(name for name, _reader in PROBE_FAMILIES if name in SECTIONS)


def _reader(section: str, source: str, state: _State,
            errors: dict[str, str]) -> Callable[[], Any] | None:
    """How the central host reads ``section``: psutil, or the probe's parser on /proc."""
    if source == "psutil" and section in PSUTIL_READERS:
        return lambda: PSUTIL_READERS[section](state, errors)
    if source == "probe" and section in PROBE_READERS:
        return lambda: PROBE_READERS[section](state.probe_context())
    return None


def _start_interval(state: _State, sleep: Callable[[float], None]) -> None:
    """First half of the in-process interval (first pass only), shared by CPU and processes
    (which need no first scan when the previous pass's counters came as proc_prev)."""
    sample = state.params["cpu_sample_s"]
    if sample <= 0:
        return
    started = time.monotonic()
    state.cpu_before = psutil.cpu_times(percpu=True)
    state.cpu_total_before = psutil.cpu_times()
    if state.params["proc_prev"] is None:
        state.procs_before_at = time.monotonic()
        state.procs_before = {pid: (start, spent) for pid, (_, start, spent, _)
                              in _process_times(state.params["max_processes"]).items()}
    sleep(max(0.0, sample - (time.monotonic() - started)))


def collect_local(params: dict[str, Any] | None = None,
                  sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """The local host's raw sample, the same shape as remote_probe's output."""
    merged = dict(DEFAULTS)
    merged.update({key: value for key, value in (params or {}).items() if key in DEFAULTS})
    state = _State(merged)
    errors: dict[str, str] = {}
    result: dict[str, Any] = {"probe": 1}
    try:
        _start_interval(state, sleep)
    except Exception as exc:  # noqa: BLE001 - the sections below still run without it
        errors["interval"] = _describe(exc)
    for name in WIRE_ORDER:  # the probe's output order, so both answers read alike
        reader = _reader(name, SECTIONS[name].local, state, errors)
        if reader is None:
            continue
        try:
            value = reader()
            if value is not None:  # None: this machine has no such thing (no PSI)
                result[name] = value
        except Exception as exc:  # noqa: BLE001 - one section's failure must not stop others
            errors[name] = _describe(exc)
    if (params or {}).get("checks"):
        _run_checks(params or {}, result, errors)
    result["errors"] = errors
    return result


def _run_checks(params: dict[str, Any], result: dict[str, Any], errors: dict[str, str]) -> None:
    """The central server's own checks, run by the probe's code so both behave the same.

    Why reuse the probe rather than psutil-style code here: the process-group kill, the output
    caps and the shared time budget are the delicate part, and one tested copy is enough.
    """
    from remote_probe.probe import run_checks

    try:
        answers, problems, _hung = run_checks(params["checks"],
                                              float(params.get("checks_budget_s") or 0.0))
    except Exception as exc:  # noqa: BLE001 - checks failing must not cost the metrics
        errors["checks"] = _describe(exc)
        return
    result["checks"] = answers
    if problems:
        errors["checks:params"] = "; ".join(problems)[:500]
