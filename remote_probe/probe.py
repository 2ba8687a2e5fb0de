#!/usr/bin/env python3
"""osmon remote probe: one snapshot of a Linux host as one JSON object on stdout.

The collector pipes this file into `python3 -` on every monitored server, with one line
prepended: `OSMON_PARAMS = '<json>'`. Parameters therefore arrive as data, never through a
shell string. Run it by hand (`python3 remote_probe/probe.py`) for a local look.

Constraints, and why:
- stdlib only and Python 3.6+: it runs on whatever `python3` the server has (CentOS 7 era
  boxes included). Annotations are quoted so they are never evaluated (no `typing` import on
  3.6, and no start-up cost); no f-string `=`, walrus, dataclasses or positional-only params.
- The source is ASCII only: a 3.6 interpreter under the C locale reads it from stdin.
- Raw counters only (CPU seconds, byte counters): rates are derived by the collector, which
  keeps the previous sample. The in-probe CPU interval (`cpu_sample_s`) is used only on the
  first pass of a host, so the steady state never sleeps.
- One section per metric family, each a pure parse function over text plus a reader rooted at
  `proc_root` (node_exporter style). A family that raises is reported in `errors` and the
  others still come out.
- Bounded: every read has a size cap, final path components are opened with O_NOFOLLOW, the
  process scan has a count and a time cap, and a file system that may hang (network, FUSE) is
  never `statvfs`'d unless asked, then only in daemon threads under one shared timeout.

Parameters (all optional, see DEFAULTS): cpu_sample_s (0 = no sleep), network_fs,
statvfs_timeout_s, top_n, include_loopback, max_processes, max_scan_s, proc_root, sys_root,
etc_root (for passwd), utmp_path, utmp_check_pids, self_timing (adds `timing`), clk_tck and
page_size (0 = the host's; set by fixture tests), command_lines (false: the top processes'
command lines are not read; true: read, with secrets masked), checks (Nagios plugins to run:
a list of
{name, command (argv list), timeout_s, max_output}), checks_budget_s (wall time for all checks
together; 0 = automatic, see CHECKS_DEFAULT_BUDGET_S), proc_prev (the previous pass's
`processes.counters`, kept by the collector, so per-process CPU percent covers the interval
between passes without a sleep).
Output: {"probe": 1, "system", "cpu", "memory", "swap", "disks", "disk_io", "net",
"processes", "users", "pressure" (kernels with PSI only), "errors"}, plus "checks" ({name:
{exit, output, duration_s, [stderr], [error], [truncated]}}) when checks were asked for; a
failed family is absent and named in `errors`. A list cut to its cap (LIST_CAPS) is still
there, and `errors["<family>:truncated"]` says how much was left out.
"""

import os
import sys
import time

PROBE_VERSION = 1

DEFAULTS = {
    "cpu_sample_s": 0.25,
    "network_fs": False,
    "statvfs_timeout_s": 2.0,
    "top_n": 10,
    "include_loopback": False,
    "max_processes": 20000,
    "max_scan_s": 5.0,
    "proc_root": "/proc",
    "sys_root": "/sys",
    "etc_root": "/etc",
    "utmp_path": "/var/run/utmp",
    "utmp_check_pids": True,
    "self_timing": False,
    "clk_tck": 0,
    "page_size": 0,
    "checks_budget_s": 0.0,
    "command_lines": True,
}
# (low, high) clamps for numeric parameters: a bad value must not make the probe sleep for
# an hour or scan without bound.
PARAM_RANGES = {
    "cpu_sample_s": (0.0, 5.0),
    "statvfs_timeout_s": (0.01, 30.0),
    "top_n": (0, 100),
    "max_processes": (0, 1000000),
    "max_scan_s": (0.1, 60.0),
    "clk_tck": (0, 1000000),
    "page_size": (0, 1 << 30),
    "checks_budget_s": (0.0, 3600.0),
}

SYS_FILE_LIMIT = 8 << 20  # /proc/stat on a 4096-CPU host is well under this
SMALL_FILE_LIMIT = 64 << 10
PID_FILE_LIMIT = 4096  # stat and the head of status (Uid is on line 9)
CMDLINE_LIMIT = 4096
CMDLINE_CHARS = 200
UTMP_LIMIT = 4 << 20
# Entries of the lists the collector refuses beyond 4096 (probe_schema.MAX_ITEMS): a host with
# 5000 veth interfaces must lose interfaces, not its whole sample.
LIST_CAPS = {"disks": 1024, "disk_io": 1024, "net": 1024, "users": 1024}
# Entries of processes.counters (probe_schema.MAX_PROC_COUNTERS), and of proc_prev accepted.
PROC_COUNTERS_MAX = 100000

_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
               | getattr(os, "O_CLOEXEC", 0))

CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")

# Never statvfs'd unless `network_fs` is true: statvfs on a dead server hangs in the kernel
# and ignores signals. Plain "fuse" and every "fuse.<subtype>" (sshfs, s3fs...) count too.
NETWORK_FS = frozenset((
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "sshfs", "fuse", "ceph", "glusterfs", "9p", "afs",
    "lustre", "gpfs", "beegfs", "davfs", "ncpfs", "coda", "orangefs", "ocfs2", "gfs2",
))
# Real data but backed by a userspace daemon (ntfs-3g, exfat-fuse): kept, but measured in a
# thread under the timeout like a network mount.
TIMED_FS = frozenset(("fuseblk",))
# Block file systems we still skip: snap/AppImage images are read-only and always 100 % full.
SKIPPED_FS = frozenset(("squashfs",))
# Used only when /proc/filesystems cannot be read: the common "nodev" file systems.
PSEUDO_FS = frozenset((
    "proc", "sysfs", "tmpfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "overlay", "autofs",
    "mqueue", "hugetlbfs", "debugfs", "tracefs", "securityfs", "pstore", "bpf", "configfs",
    "fusectl", "binfmt_misc", "rpc_pipefs", "nsfs", "ramfs", "efivarfs", "selinuxfs", "rootfs",
    "aufs", "shm", "none",
))

# Whole-disk names that are layers over other disks or not disks at all: counting them beside
# their members would double the I/O (dm-*, md*) or add noise (loop, ram, zram, cd-rom).
VIRTUAL_DISK_PREFIXES = ("loop", "ram", "zram", "dm-", "md", "sr", "fd", "nbd", "drbd")

USER_PROCESS = 7  # utmp ut_type of a logged-in user (utmp.h)


# --------------------------------------------------------------------------- reading


def read_bytes(path: str, limit: int = SYS_FILE_LIMIT) -> bytes:
    """Read at most `limit` bytes of `path` without following a symlink in the last component.

    O_NONBLOCK keeps a FIFO planted in a test tree from blocking the open.
    """
    fd = os.open(path, _OPEN_FLAGS)
    try:
        chunks = []
        size = 0
        while size < limit:
            chunk = os.read(fd, min(65536, limit - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_text(path: str, limit: int = SYS_FILE_LIMIT) -> str:
    """`read_bytes` decoded as UTF-8, undecodable bytes replaced (output must be JSON-safe)."""
    return read_bytes(path, limit).decode("utf-8", "replace")


def describe(exc: BaseException) -> str:
    """One line for `errors`: "<ExcType>: message"."""
    text = str(exc).replace("\n", " ")
    return f"{type(exc).__name__}: {text[:300]}"


def _pct(part: float, whole: float, digits: int = 1) -> float:
    """part/whole in percent, clamped to 0..100, 0.0 for an empty whole (psutil's convention)."""
    if whole <= 0:
        return 0.0
    return round(min(100.0, max(0.0, part * 100.0 / whole)), digits)


# --------------------------------------------------------------------------- JSON
# `import json` pulls in `re`, `enum`, `functools`...: about 10 ms of CPU on every run, more
# than all the probe's own work. The C accelerator `_json` (CPython 3.x) does the hard parts
# without them; elsewhere (PyPy) the json module is the fallback.


class _ScanContext:
    """The attributes _json.make_scanner reads from a json.JSONDecoder."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo = None

    @staticmethod
    def parse_constant(name: str) -> float:
        raise ValueError(f"{name} is not allowed")


def json_loads(text: str) -> "object":
    """json.loads for the parameters; raises ValueError on anything that is not one JSON value."""
    try:
        import _json
    except ImportError:  # pragma: no cover - not CPython
        import json

        return json.loads(text)
    scan = _json.make_scanner(_ScanContext())
    start = len(text) - len(text.lstrip())
    try:
        value, end = scan(text, start)
    except StopIteration:
        raise ValueError("not JSON") from None
    except Exception as exc:  # noqa: BLE001 - JSONDecodeError without importing json
        raise ValueError(str(exc)) from None
    if text[end:].strip():
        raise ValueError(f"extra data after the JSON value at {end}")
    return value


def _string_encoder() -> "object":
    try:
        from _json import encode_basestring_ascii
    except ImportError:  # pragma: no cover - not CPython
        from json.encoder import encode_basestring_ascii
    return encode_basestring_ascii


def json_dumps(value: "object") -> str:
    """Compact ASCII JSON of the output tree (dict, list, str, int, float, bool, None), as
    json.dumps(separators=(",", ":")) writes it; the tree has been through json_safe."""
    encode_str = _string_encoder()
    out = []

    def encode(item: "object") -> None:
        if item is None:
            out.append("null")
        elif item is True:
            out.append("true")
        elif item is False:
            out.append("false")
        elif isinstance(item, str):
            out.append(encode_str(item))
        elif isinstance(item, int):
            out.append(int.__repr__(item))
        elif isinstance(item, float):
            out.append(float.__repr__(item) if item - item == 0.0 else "null")
        elif type(item) is CounterMap:
            out.append(item.to_json())
        elif isinstance(item, dict):
            out.append("{")
            for index, (key, member) in enumerate(item.items()):
                out.append("," if index else "")
                out.append(encode_str(str(key)))
                out.append(":")
                encode(member)
            out.append("}")
        elif isinstance(item, (list, tuple)):
            out.append("[")
            for index, member in enumerate(item):
                out.append("," if index else "")
                encode(member)
            out.append("]")
        else:
            raise TypeError(f"{type(item).__name__} is not JSON serializable")

    encode(value)
    return "".join(out)


def _c_encoder() -> "object":
    """CPython's C encoder for compact JSON that refuses NaN and infinity and writes non-ASCII
    text as it is (so that encode_output sees it), or None where there is none."""
    try:
        from _json import encode_basestring, make_encoder

        def refuse(item: "object") -> None:
            raise TypeError(f"{type(item).__name__} is not JSON serializable")

        # (markers, default, encoder, indent, key_separator, item_separator, sort_keys,
        #  skipkeys, allow_nan): json.encoder's own call since Python 3.
        return make_encoder(None, refuse, encode_basestring, None, ":", ",", False, False,
                            False)
    except (ImportError, TypeError):  # pragma: no cover - not CPython
        return None


_ENCODE = _c_encoder()


def encode_output(result: dict) -> str:
    """json_dumps(json_safe(result)), the very same text, mostly without either: the C
    encoder writes that text whenever the tree holds no NaN or infinity (it refuses them)
    and its text is plain printable ASCII (no surrogate to replace, nothing to escape
    otherwise).  Walking and copying the tree in Python was a sixth of a resident probe's
    answer on a host with few processes."""
    if _ENCODE is not None:
        try:
            text = "".join(_ENCODE(result, 0))
        except (ValueError, TypeError, RecursionError):
            text = None
        if text is not None and "\x7f" not in text:
            try:
                text.encode("ascii")
                return text
            except UnicodeEncodeError:
                pass
    return json_dumps(json_safe(result))


# --------------------------------------------------------------------------- parameters


def _coerce(key: str, value: object, default: object) -> object:
    """Check one parameter against the type of its default; clamp numbers to PARAM_RANGES."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false")
        return value
    if isinstance(default, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise ValueError(f"{key} must be a number")
        low, high = PARAM_RANGES.get(key, (value, value))
        value = min(high, max(low, value))
        return int(value) if isinstance(default, int) else float(value)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} must be a non-empty string")
    return value


def parse_params(params_json: "str | None") -> "tuple[dict, str | None]":
    """Parameters from the JSON text the collector prepends; defaults for what is missing.

    A bad value does not stop the probe: its default is used and the problem is returned as
    one message for `errors["params"]`. Unknown keys are ignored, except `checks`, which is
    kept as-is: the checks family validates it entry by entry (parse_check_specs), and
    `proc_prev`, checked by parse_proc_prev.
    """
    if params_json is None:
        return params_from(None)
    try:
        raw = json_loads(params_json)
    except ValueError as exc:
        return params_from(None)[0], f"ValueError: OSMON_PARAMS is not JSON: {exc}"
    if not isinstance(raw, dict):
        return params_from(None)[0], "ValueError: OSMON_PARAMS is not a JSON object"
    return params_from(raw)


def params_from(raw: "dict | None") -> "tuple[dict, str | None]":
    """parse_params for an already decoded object (a resident request carries one)."""
    params = dict(DEFAULTS)
    params["checks"] = None
    params["proc_prev"] = None
    if raw is None:
        return params, None
    problems = []
    for key, default in DEFAULTS.items():
        if key in raw:
            try:
                params[key] = _coerce(key, raw[key], default)
            except ValueError as exc:
                problems.append(str(exc))
    params["checks"] = raw.get("checks")
    params["proc_prev"] = raw.get("proc_prev")
    return params, ("ValueError: " + "; ".join(problems)) if problems else None


# --------------------------------------------------------------------------- context


def _sysconf(name: str, default: int) -> int:
    """os.sysconf, or the Linux default where it does not exist (the non-Linux path)."""
    try:
        return os.sysconf(name)
    except (AttributeError, ValueError, OSError):
        return default


class Context:
    """What every family needs: parameters, injected side effects, shared reads, errors.

    Side effects (statvfs, clocks, sleep) are injected so fixture tests are deterministic
    and can simulate a hung NFS server.
    """

    def __init__(self, params: dict, statvfs: "object" = None, now: "object" = None,
                 monotonic: "object" = None, sleep: "object" = None) -> None:
        self.params = params
        self.proc = params["proc_root"]
        self.statvfs = statvfs or os.statvfs
        self.now = now or time.time
        self.monotonic = monotonic or time.monotonic
        self.sleep = sleep or time.sleep
        self.clk_tck = params["clk_tck"] or _sysconf("SC_CLK_TCK", 100)
        self.page_size = params["page_size"] or _sysconf("SC_PAGE_SIZE", 4096)
        self.errors = {}  # type: dict
        self.hung_threads = False  # a statvfs thread is still blocked in the kernel
        self.first_stat = None  # /proc/stat text at the start of the in-probe interval
        self.first_procs = None  # {pid: (starttime, ticks)} at the start of the interval
        self.first_procs_at = 0.0
        self.pid_files = None  # type: PidStatFiles | None  # a resident probe's kept files
        # A resident probe's previous scan, (uptime, boot_id, {pid: parse_pid_stat}), which
        # serves as the previous counters; the scan of this run, kept for the next; whether
        # this run's answer must carry the counters (always, but in a resident probe).
        self.prev_scan = None  # type: tuple | None
        self.scan = None  # type: tuple | None
        self.want_counters = True
        self._cache = {}  # type: dict

    def proc_path(self, *parts: str) -> str:
        return os.path.join(self.proc, *parts)

    def proc_text(self, name: str, limit: int = SYS_FILE_LIMIT) -> str:
        """Text of a system-wide /proc file, read once per run (families share meminfo...)."""
        if name not in self._cache:
            self._cache[name] = read_text(self.proc_path(name), limit)
        return self._cache[name]

    def attempt(self, name: str, func: "object", default: "object" = None) -> "object":
        """Run an optional part of a family; its failure lands in errors[name] alone."""
        try:
            return func()
        except Exception as exc:  # noqa: BLE001 - every failure is reported, none is fatal
            self.errors[name] = describe(exc)
            return default


def cap_entries(errors: dict, family: str, entries: list, noun: str,
                weight: "object" = None) -> list:
    """`entries` cut to LIST_CAPS[family], the cut recorded in errors["<family>:truncated"].

    With `weight`, the heaviest entries are kept (in their original order, so the list reads
    as before); without, the first ones. The key is not the family's own name, which would
    say the family failed (probe_schema accepts an absent section explained by it).
    """
    cap = LIST_CAPS[family]
    if len(entries) <= cap:
        return entries
    errors[family + ":truncated"] = f"truncated to {cap} of {len(entries)} {noun}"
    if weight is None:
        return entries[:cap]
    kept = sorted(range(len(entries)), key=lambda index: -weight(entries[index]))[:cap]
    return [entries[index] for index in sorted(kept)]


# --------------------------------------------------------------------------- system


def parse_uptime(text: str) -> float:
    """Seconds since boot from /proc/uptime ("12345.67 23456.78")."""
    return float(text.split()[0])


def parse_btime(text: str) -> "int | None":
    """Boot time (epoch seconds) from the `btime` line of /proc/stat, None if absent."""
    for line in text.splitlines():
        if line.startswith("btime "):
            return int(line.split()[1])
    return None


def _btime_or_none(ctx: Context) -> "int | None":
    """btime, or None when /proc/stat is unreadable (the cpu family reports that)."""
    try:
        return parse_btime(ctx.proc_text("stat"))
    except (OSError, ValueError, IndexError):
        return None


def collect_system(ctx: Context) -> dict:
    """Identity and uptime. hostname/kernel come from /proc/sys/kernel so fixtures pin them."""
    uname = os.uname()
    hostname = ctx.attempt("system:hostname", lambda: read_text(
        ctx.proc_path("sys", "kernel", "hostname"), SMALL_FILE_LIMIT).strip()) or uname.nodename
    kernel = ctx.attempt("system:kernel", lambda: read_text(
        ctx.proc_path("sys", "kernel", "osrelease"), SMALL_FILE_LIMIT).strip()) or uname.release
    uptime = parse_uptime(ctx.proc_text("uptime", SMALL_FILE_LIMIT))
    boot_time = _btime_or_none(ctx)
    if boot_time is None:
        # btime missing (truncated /proc/stat): derive it; the collector tolerates jitter.
        boot_time = int(ctx.now() - uptime)
    return {
        "hostname": hostname,
        "os": uname.sysname,
        "kernel": kernel,
        "arch": uname.machine,
        "boot_time": boot_time,
        "uptime_s": uptime,
        "python": _python_version(),
    }


# --------------------------------------------------------------------------- cpu


def _cpu_times(name: str, values: "list[str]", clk_tck: int) -> dict:
    """One /proc/stat cpu line as seconds per field; fields a kernel lacks count as 0.

    steal appeared in 2.6.11 and guest in 2.6.24; guest time is already inside user/nice,
    so it is not reported separately (psutil subtracts it for the same reason).
    """
    if len(values) < 4:
        raise ValueError(f"{name} line has {len(values)} values, expected at least 4")
    times = {}
    for index, key in enumerate(CPU_FIELDS):
        times[key] = int(values[index]) / float(clk_tck) if index < len(values) else 0.0
    return times


def parse_stat(text: str, clk_tck: int) -> dict:
    """Aggregate and per-core CPU times from /proc/stat: {"total": {...}, "per_core": [...]}.

    A cpu line cut short (no final newline) is an error rather than plausible wrong numbers.
    """
    lines = text.split("\n")
    if lines and lines[-1].startswith("cpu"):
        raise ValueError("/proc/stat ends inside a cpu line (truncated)")
    total = None
    per_core = []
    for line in lines:
        if not line.startswith("cpu"):
            continue
        fields = line.split()
        name = fields[0]
        if name == "cpu":
            total = _cpu_times(name, fields[1:], clk_tck)
        elif name[3:].isdigit():
            per_core.append(_cpu_times(name, fields[1:], clk_tck))
    if total is None:
        raise ValueError("/proc/stat has no aggregate cpu line")
    return {"total": total, "per_core": per_core}


def busy_percent(before: dict, after: dict) -> "float | None":
    """CPU busy percent between two readings: busy = total - idle - iowait, like psutil.

    A field that went slightly backwards counts as 0 (iowait does on NO_HZ kernels,
    psutil #1210). None when no time elapsed at all.
    """
    deltas = dict((key, max(0.0, after[key] - before[key])) for key in CPU_FIELDS)
    total = sum(deltas.values())
    if total <= 0:
        return None
    return _pct(total - deltas["idle"] - deltas["iowait"], total)


def parse_loadavg(text: str) -> "list[float]":
    """The 1, 5 and 15 minute load averages from /proc/loadavg."""
    fields = text.split()
    if len(fields) < 3:
        raise ValueError(f"/proc/loadavg has {len(fields)} fields, expected at least 3")
    return [float(value) for value in fields[:3]]


def collect_cpu(ctx: Context) -> dict:
    """Raw CPU seconds, load, and percentages when the in-probe interval was taken."""
    stat = parse_stat(ctx.proc_text("stat"), ctx.clk_tck)
    result = {
        "count": len(stat["per_core"]) or 1,
        "times": stat["total"],
        "per_core_times": stat["per_core"],
        "load": ctx.attempt("cpu:load", lambda: parse_loadavg(
            ctx.proc_text("loadavg", SMALL_FILE_LIMIT))),
        "percent": None,
        "per_core": None,
    }
    if ctx.first_stat is not None:
        before = parse_stat(ctx.first_stat, ctx.clk_tck)
        result["percent"] = busy_percent(before["total"], stat["total"])
        if len(before["per_core"]) == len(stat["per_core"]):
            result["per_core"] = [busy_percent(old, new) for old, new
                                  in zip(before["per_core"], stat["per_core"])]
    return result


# --------------------------------------------------------------------------- memory


def parse_meminfo(text: str) -> "dict[str, int]":
    """/proc/meminfo as {key: bytes}; unparsable lines are skipped (callers check keys)."""
    result = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        parts = rest.split()
        if not sep or not parts:
            continue
        try:
            value = int(parts[0])
        except ValueError:
            continue
        if len(parts) > 1 and parts[1] == "kB":
            value *= 1024
        result[key.strip()] = value
    return result


def parse_zoneinfo_low(text: str) -> int:
    """Sum of the per-zone `low` watermarks (pages) in /proc/zoneinfo."""
    total = 0
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] == "low":
            total += int(fields[1])
    return total


def estimate_available(info: "dict[str, int]", low_watermark: "int | None") -> int:
    """MemAvailable for kernels < 3.14, which lack it: psutil's port of si_mem_available().

    free - low watermark, plus page cache and reclaimable slab each minus min(half, low
    watermark). Without the LRU or slab lines or zoneinfo: MemFree + Cached, psutil's fallback.
    """
    free = info["MemFree"]
    fallback = free + info.get("Cached", 0)
    needed = ("Active(file)", "Inactive(file)", "SReclaimable")
    if low_watermark is None or any(key not in info for key in needed):
        return fallback
    pagecache = info["Active(file)"] + info["Inactive(file)"]
    available = free - low_watermark
    available += pagecache - min(pagecache / 2.0, low_watermark)
    available -= min(info["SReclaimable"] / 2.0, low_watermark)
    return int(available)


def require_keys(info: "dict[str, int]", keys: "tuple[str, ...]") -> None:
    """Refuse a meminfo without the lines a section is computed from (garbage, truncation)."""
    for key in keys:
        if key not in info:
            raise ValueError(f"/proc/meminfo has no usable {key} line")


def memory_from_meminfo(info: "dict[str, int]", low_watermark: "int | None" = None) -> dict:
    """Memory in bytes as psutil 6+ reports it: used = total - available (like `free`).

    cached includes SReclaimable (kernel 2.6.19+), as `free` and psutil show it.
    """
    require_keys(info, ("MemTotal", "MemFree"))
    total = info["MemTotal"]
    if "MemAvailable" in info:
        available = info["MemAvailable"]
    else:
        available = estimate_available(info, low_watermark)
    available = min(total, max(0, available))
    return {
        "total": total,
        "available": available,
        "used": total - available,
        "percent": _pct(total - available, total),
        "buffers": info.get("Buffers", 0),
        "cached": info.get("Cached", 0) + info.get("SReclaimable", 0),
    }


def swap_from_meminfo(info: "dict[str, int]") -> dict:
    """Swap totals in bytes from SwapTotal/SwapFree."""
    require_keys(info, ("SwapTotal", "SwapFree"))
    total = info["SwapTotal"]
    used = max(0, total - info["SwapFree"])
    return {"total": total, "used": used, "percent": _pct(used, total)}


def collect_memory(ctx: Context) -> dict:
    info = parse_meminfo(ctx.proc_text("meminfo", SMALL_FILE_LIMIT))
    require_keys(info, ("MemTotal", "MemFree"))
    low = None
    if "MemAvailable" not in info:
        low = ctx.attempt("memory:zoneinfo", lambda: parse_zoneinfo_low(
            ctx.proc_text("zoneinfo")) * ctx.page_size)
    return memory_from_meminfo(info, low)


def collect_swap(ctx: Context) -> dict:
    return swap_from_meminfo(parse_meminfo(ctx.proc_text("meminfo", SMALL_FILE_LIMIT)))


# --------------------------------------------------------------------------- disks


def unescape_mount_field(field: str) -> str:
    """Undo the octal escapes of /proc/mounts (space is \\040, tab \\011, newline \\012...)."""
    if "\\" not in field:
        return field
    out = []
    index = 0
    while index < len(field):
        chunk = field[index + 1:index + 4]
        if field[index] == "\\" and len(chunk) == 3 and all(c in "01234567" for c in chunk):
            out.append(chr(int(chunk, 8)))
            index += 4
        else:
            out.append(field[index])
            index += 1
    return "".join(out)


def parse_mounts(text: str) -> "list[tuple[str, str, str]]":
    """(device, mount point, fstype) per line of /proc/self/mounts, paths unescaped."""
    result = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 3:
            result.append((unescape_mount_field(fields[0]), unescape_mount_field(fields[1]),
                           fields[2]))
    return result


def parse_filesystems(text: str) -> "frozenset[str]":
    """File system types that need a block device ("nodev" absent) from /proc/filesystems.

    zfs is listed as nodev but holds real data, so it is added (psutil does the same).
    """
    block = set(["zfs"])
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 1:
            block.add(fields[0])
    return frozenset(block)


def _is_network_fs(fstype: str) -> bool:
    return fstype in NETWORK_FS or fstype.startswith("fuse.")


def _is_block_fs(fstype: str, block_fs: "frozenset[str] | None") -> bool:
    if block_fs is None:
        return fstype not in PSEUDO_FS
    return fstype in block_fs


def select_mounts(mounts: "list[tuple[str, str, str]]", block_fs: "frozenset[str] | None",
                  network_fs: bool) -> "list[tuple[str, str, str, bool]]":
    """The real file systems to measure, as (device, mount, fstype, timed).

    Decided like psutil.disk_partitions(all=False): block-device file systems (from
    /proc/filesystems, or the PSEUDO_FS deny list when unreadable) with a device, plus:
    - network and FUSE file systems only when `network_fs`, then `timed` (may hang);
    - fuseblk kept but `timed`; squashfs (snaps) skipped;
    - overlay kept only when mounted on "/" (a container's root: its only view of a disk);
    - a mount point mounted over keeps only its last (visible) entry;
    - the same device mounted twice (bind mounts, btrfs subvolumes: one usage) keeps the
      shortest mount path.
    Sorted by mount path.
    """
    visible = {}
    for device, mount, fstype in mounts:
        visible[mount] = (device, fstype)
    by_device = {}
    for mount, (device, fstype) in visible.items():
        timed = fstype in TIMED_FS
        if _is_network_fs(fstype):
            if not network_fs:
                continue
            timed = True
        elif fstype in SKIPPED_FS:
            continue
        elif fstype == "overlay":
            if mount != "/":
                continue
        elif not timed and not _is_block_fs(fstype, block_fs):
            continue
        if not device or device == "none":
            continue
        kept = by_device.get(device)
        if kept is None or (len(mount), mount) < (len(kept[1]), kept[1]):
            by_device[device] = (device, mount, fstype, timed)
    return sorted(by_device.values(), key=lambda item: item[1])


def usage_from_statvfs(st: "object") -> dict:
    """total/used/free/percent in bytes as psutil.disk_usage and df compute them.

    free is what an unprivileged user may still write (f_bavail); percent is
    used / (used + avail), so the root-reserved blocks do not count as free.
    """
    frsize = st.f_frsize or st.f_bsize
    total = st.f_blocks * frsize
    used = max(0, (st.f_blocks - st.f_bfree) * frsize)
    free = st.f_bavail * frsize
    return {"total": total, "used": used, "free": free, "percent": _pct(used, used + free)}


def statvfs_with_timeout(paths: "list[str]", statvfs: "object", timeout: float,
                         monotonic: "object") -> "dict[str, object]":
    """statvfs each path in its own daemon thread, all under one shared deadline.

    A hung statvfs (dead NFS server) cannot be interrupted, so its thread is abandoned;
    the result maps path -> os.statvfs_result or the exception, and omits timed-out paths.
    """
    import threading  # only paid for when a mount can hang

    results = {}

    def worker(path: str) -> None:
        try:
            results[path] = statvfs(path)
        except Exception as exc:  # noqa: BLE001 - reported per mount
            results[path] = exc

    threads = []
    for path in paths:
        thread = threading.Thread(target=worker, args=(path,), name="statvfs")
        thread.daemon = True
        thread.start()
        threads.append(thread)
    deadline = monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - monotonic()))
    return dict(results)


def collect_disks(ctx: Context) -> list:
    """Usage of each real file system; a mount that fails or hangs goes to errors alone."""
    try:
        text = read_text(ctx.proc_path("self", "mounts"))
    except OSError:
        text = ctx.proc_text("mounts")
    block_fs = ctx.attempt("disks:filesystems", lambda: parse_filesystems(
        ctx.proc_text("filesystems", SMALL_FILE_LIMIT)))
    selected = cap_entries(ctx.errors, "disks", select_mounts(
        parse_mounts(text), block_fs, ctx.params["network_fs"]), "file systems")
    timeout = ctx.params["statvfs_timeout_s"]
    timed = [mount for _, mount, _, is_timed in selected if is_timed]
    results = {}
    if timed:
        results = statvfs_with_timeout(timed, ctx.statvfs, timeout, ctx.monotonic)
    disks = []
    for device, mount, fstype, is_timed in selected:
        if is_timed:
            st = results.get(mount)
            if st is None:
                ctx.hung_threads = True
                ctx.errors["disks:" + mount] = (
                    f"TimeoutError: statvfs did not answer within {timeout:g} s ({fstype})")
                continue
        else:
            try:
                st = ctx.statvfs(mount)
            except Exception as exc:  # noqa: BLE001 - reported per mount
                st = exc
        if isinstance(st, Exception):
            ctx.errors["disks:" + mount] = describe(st)
            continue
        entry = {"mount": mount, "device": device, "fstype": fstype}
        entry.update(usage_from_statvfs(st))
        disks.append(entry)
    return disks


# --------------------------------------------------------------------------- disk I/O


def looks_like_partition(name: str) -> bool:
    """Partition names by convention, for when /sys/block cannot be listed."""
    if name.startswith(("nvme", "mmcblk")):
        head, sep, tail = name.rpartition("p")
        return bool(sep) and tail.isdigit() and head[-1:].isdigit()
    if name.startswith(("sd", "vd", "hd", "xvd")):
        return name[-1:].isdigit()
    return False


def is_physical_disk(name: str, block_devices: "frozenset[str] | None" = None) -> bool:
    """True for a whole physical disk: listed in /sys/block (partitions are not) and not a
    virtual layer (VIRTUAL_DISK_PREFIXES). Without /sys, partition names are guessed."""
    if name.startswith(VIRTUAL_DISK_PREFIXES):
        return False
    if block_devices is not None:
        return name in block_devices
    return not looks_like_partition(name)


def parse_diskstats(text: str) -> "list[dict]":
    """Every device of /proc/diskstats with byte counters (sectors are always 512 bytes)."""
    result = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 14:
            continue  # pre-2.6.25 partition lines carry only 4 counters
        result.append({
            "device": fields[2],
            "read_bytes": int(fields[5]) * 512,
            "write_bytes": int(fields[9]) * 512,
            "reads": int(fields[3]),
            "writes": int(fields[7]),
            "busy_ms": int(fields[12]),
        })
    return result


def collect_disk_io(ctx: Context) -> list:
    try:
        block = frozenset(os.listdir(os.path.join(ctx.params["sys_root"], "block")))
    except OSError:
        block = None
    return cap_entries(ctx.errors, "disk_io", [
        entry for entry in parse_diskstats(ctx.proc_text("diskstats"))
        if is_physical_disk(entry["device"], block)], "devices",
        lambda entry: entry["read_bytes"] + entry["write_bytes"])


# --------------------------------------------------------------------------- net

NET_FIELDS = ((0, "rx_bytes"), (1, "rx_packets"), (2, "rx_errors"), (3, "rx_drops"),
              (8, "tx_bytes"), (9, "tx_packets"), (10, "tx_errors"), (11, "tx_drops"))


def parse_net_dev(text: str) -> "list[dict]":
    """Counters per interface from /proc/net/dev (two header lines, then `name: 16 numbers`).

    The name is split on the first ":" because old kernels glue big counters to it
    ("eth0:123456"); Linux forbids ":" in interface names.
    """
    result = []
    for line in text.splitlines():
        name, sep, rest = line.partition(":")
        if not sep or "|" in line:
            continue
        fields = rest.split()
        if len(fields) < 16:
            raise ValueError(f"/proc/net/dev: {name.strip()} has {len(fields)} counters, "
                             "expected 16")
        entry = {"iface": name.strip()}
        for index, key in NET_FIELDS:
            entry[key] = int(fields[index])
        result.append(entry)
    return result


def collect_net(ctx: Context) -> list:
    """All interfaces but loopback ("lo") unless `include_loopback`; the busiest by bytes
    when there are more than LIST_CAPS allows (a container host's veth pairs)."""
    entries = parse_net_dev(read_text(ctx.proc_path("net", "dev"), SYS_FILE_LIMIT))
    if not ctx.params["include_loopback"]:
        entries = [entry for entry in entries if entry["iface"] != "lo"]
    return cap_entries(ctx.errors, "net", entries, "interfaces",
                       lambda entry: entry["rx_bytes"] + entry["tx_bytes"])


# --------------------------------------------------------------------------- processes


def parse_pid_stat(text: str) -> "tuple[str, int, int, int]":
    """(comm, utime+stime ticks, starttime ticks, rss pages) from /proc/<pid>/stat.

    comm may contain spaces and parentheses, so fields are split after the LAST ")".
    """
    left = text.index("(")
    right = text.rindex(")")
    fields = text[right + 2:].split()
    # fields[0] is state (field 3 of proc(5)): utime is field 14, rss field 24.
    return text[left + 1:right], int(fields[11]) + int(fields[12]), int(fields[19]), \
        int(fields[21])


def parse_status_uid(text: str) -> "int | None":
    """Real uid from the Uid: line of /proc/<pid>/status (psutil's username() uses it)."""
    for line in text.splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    return None


def parse_passwd(text: str) -> "dict[int, str]":
    """{uid: name} from an /etc/passwd text; first entry wins, like getpwuid."""
    users = {}
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[2].isdigit():
            users.setdefault(int(fields[2]), fields[0])
    return users


def list_pids(proc_root: str) -> "list[int]":
    return sorted(int(name) for name in os.listdir(proc_root) if name.isdigit())


def scan_processes(ctx: Context, pids: "list[int]") -> "dict[int, tuple]":
    """{pid: (comm, ticks, starttime, rss_pages)}; vanished or unreadable pids are skipped.

    Stops early once `max_scan_s` is spent, so 50k processes cannot hold the run.
    """
    deadline = ctx.monotonic() + ctx.params["max_scan_s"]
    root = ctx.proc.rstrip("/") + "/"
    if ctx.pid_files is not None:
        return ctx.pid_files.scan(root, pids, deadline, ctx.monotonic)
    found = {}
    for count, pid in enumerate(pids):
        if count % 256 == 255 and ctx.monotonic() > deadline:
            break
        try:
            found[pid] = _pid_stat(f"{root}{pid}/stat")
        except (OSError, ValueError, IndexError):
            continue  # exited meanwhile, or a kernel we do not understand for this pid
    return found


def _pid_stat(path: str) -> tuple:
    return parse_pid_stat(_read_pid_stat(path))


def _read_pid_stat(path: str) -> str:
    """One read, as ps does: the kernel builds /proc/<pid>/stat whole (a few hundred bytes),
    so the second read of read_bytes that finds the end is one syscall per process saved."""
    fd = os.open(path, _OPEN_FLAGS)
    try:
        return os.read(fd, PID_FILE_LIMIT).decode("utf-8", "replace")
    finally:
        os.close(fd)


class PidStatFiles:
    """The /proc/<pid>/stat files a resident probe keeps open from one request to the next.

    Reading an open one again (pread at offset 0: the kernel builds it afresh) costs one
    system call instead of three (open, read, close), and a file that reads exactly as last
    time (an idle process: most of them) is not decoded and parsed again: together a third of
    the probe's CPU on a host with a thousand processes.  A kept file belongs to its process,
    not to its pid number: once the process has exited, reading fails (ESRCH) and the file is
    closed, so a reused pid is opened again.  At most `limit` files are kept, well under the
    soft RLIMIT_NOFILE, so the checks and the probe's own files always have descriptors left.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.fds = {}  # type: dict  # pid -> [fd, the bytes last read, their parse]

    def scan(self, root: str, pids: "list[int]", deadline: float,
             monotonic: "object") -> "dict[int, tuple]":
        """scan_processes through the kept files: {pid: parse_pid_stat}, the files of the
        processes not found closed.  One loop, the kept file's parse reused when it reads
        as last time: at a thousand processes this loop is most of what the probe costs a
        pass beyond the kernel's own work."""
        kept = self.fds
        pread = os.pread
        found = {}
        for count, pid in enumerate(pids):
            if count & 255 == 255 and monotonic() > deadline:
                break
            entry = kept.get(pid)
            if entry is not None:
                try:
                    data = pread(entry[0], PID_FILE_LIMIT, 0)
                except OSError:
                    data = b""  # its process exited: the pid may be another process's by now
                if data == entry[1]:
                    found[pid] = entry[2]
                    continue
                if data:
                    try:
                        entry[2] = parse_pid_stat(data.decode("utf-8", "replace"))
                    except (ValueError, IndexError):
                        continue  # a kernel we do not understand for this pid
                    entry[1] = data
                    found[pid] = entry[2]
                    continue
                del kept[pid]
                os.close(entry[0])
            try:
                found[pid] = self._open(root, pid)
            except (OSError, ValueError, IndexError):
                continue  # exited meanwhile, or a kernel we do not understand for this pid
        for pid in kept.keys() - found.keys():
            os.close(kept.pop(pid)[0])
        return found

    def _open(self, root: str, pid: int) -> tuple:
        """The parse of a process's stat file, read for the first time; the file is kept
        while there is room."""
        fd = os.open(f"{root}{pid}/stat", _OPEN_FLAGS)
        try:
            data = os.read(fd, PID_FILE_LIMIT)
            parsed = parse_pid_stat(data.decode("utf-8", "replace"))
        except BaseException:
            os.close(fd)
            raise
        if len(self.fds) < self.limit:
            self.fds[pid] = [fd, data, parsed]
        else:
            os.close(fd)
        return parsed


def pid_files_limit() -> int:
    """How many /proc/<pid>/stat files a resident probe keeps open: its soft limit of open
    files less a margin (checks' pipes, the probe's own reads), at most 65536."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return 0
    if soft == getattr(resource, "RLIM_INFINITY", -1) or soft < 0:
        soft = 65536 + 256
    return max(0, min(65536, soft - 256))


class CounterMap(dict):
    """processes.counters["ticks"]: {"<pid>": [starttime, ticks]}, digit keys and plain ints.

    A dict for every caller (and for json.dumps); json_safe passes it through untouched and
    json_dumps writes it with one join, because tens of thousands of entries through the
    generic recursive encoder would cost more CPU than the scan that read them.
    """

    def to_json(self) -> str:
        return "{" + ",".join(f'"{key}":[{start:d},{ticks:d}]'
                              for key, (start, ticks) in self.items()) + "}"


def _finite(value: "object") -> bool:
    return (not isinstance(value, bool) and isinstance(value, (int, float))
            and value - value == 0.0)


def parse_proc_prev(raw: "object") -> "dict | None":
    """params["proc_prev"] (the previous pass's processes.counters) checked, or None.

    The shape is checked here and a map over PROC_COUNTERS_MAX refused (ValueError), so the
    work it causes stays bounded. Single entries are checked when looked up (process_cpu_percent):
    a malformed one only means no previous reading for that pid.
    """
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ValueError("proc_prev must be an object")
    uptime, ticks, boot_id = raw.get("uptime"), raw.get("ticks"), raw.get("boot_id")
    if not _finite(uptime) or uptime < 0:
        raise ValueError("proc_prev.uptime must be a finite number >= 0")
    if not isinstance(ticks, dict):
        raise ValueError("proc_prev.ticks must be an object")
    if len(ticks) > PROC_COUNTERS_MAX:
        raise ValueError(f"proc_prev.ticks has {len(ticks)} entries, at most "
                         f"{PROC_COUNTERS_MAX}")
    if boot_id is not None and not isinstance(boot_id, str):
        raise ValueError("proc_prev.boot_id must be a string")
    return {"uptime": float(uptime), "ticks": ticks, "boot_id": boot_id}


def process_cpu_percent(readings: "object", uptime: "float | None", prev: "dict | None",
                        clk_tck: int, boot_id: "str | None" = None,
                        ) -> "tuple[dict, CounterMap, bool]":
    """CPU percent of one CPU per pid from counters (above 100 for multi-threaded work).

    `readings` yields (pid, starttime, ticks): clock ticks since boot, and utime+stime.
    `uptime` is /proc/uptime at this reading and `prev` the previous pass's counters
    (parse_proc_prev). Over the interval: (ticks - prev ticks) / clk_tck / (uptime - prev
    uptime), when uptime advanced on the same boot (boot_id, when both have one; a lower
    uptime is a new boot anyway) and the pid is in prev with the same starttime. Otherwise
    the lifetime average, cputime / time since start, what `ps` shows: the first pass, a
    process started since the previous one (its whole life is inside the interval), a
    reused pid. The boot clock, not the wall clock: an NTP step does not move it.

    Returns ({pid: percent or None}, this reading's counters for the next pass, whether the
    previous counters were usable).
    """
    tck = float(clk_tck)
    before = None
    elapsed = 0.0
    if prev is not None and uptime is not None and uptime > prev["uptime"] and (
            boot_id is None or prev.get("boot_id") is None or boot_id == prev["boot_id"]):
        before = prev["ticks"]
        elapsed = (uptime - prev["uptime"]) * tck / 100.0  # ticks per percent
    percents = {}
    counters = CounterMap()
    room = PROC_COUNTERS_MAX
    since_boot = uptime * tck if uptime is not None else None
    for pid, start, ticks in readings:
        key = str(pid)
        if room > 0:
            counters[key] = [start, ticks]
            room -= 1
        if before is not None:
            # A well-formed [starttime, ticks] of the same process (another starttime: the
            # pid was reused); checked inline, as a thousand processes pass here each time.
            old = before.get(key)
            if (type(old) is list and len(old) == 2 and type(old[0]) is int
                    and old[0] == start and type(old[1]) is int and 0 <= old[1] <= ticks):
                percents[pid] = round((ticks - old[1]) / elapsed, 1)
                continue
        if since_boot is not None:
            life = since_boot - start
            percents[pid] = round(ticks * 100.0 / life, 1) if life > 0 else 0.0
        else:
            percents[pid] = None
    return percents, counters, before is not None


def cpu_since_scan(current: "dict[int, tuple]", uptime: "float | None", boot_id: "str | None",
                   prev_scan: tuple, clk_tck: int) -> "tuple[dict, bool]":
    """process_cpu_percent for a resident probe, whose previous counters are its own previous
    scan, prev_scan = (uptime, boot_id, {pid: parse_pid_stat}): the same percents, without a
    counter map built and checked for every process at every pass.  A process whose stat
    file read as last time has the very same parse: 0.0 at once.

    Returns ({pid: percent or None}, whether the previous scan was usable).
    """
    prev_uptime, prev_boot_id, before = prev_scan
    tck = float(clk_tck)
    if (uptime is None or prev_uptime is None or not uptime > prev_uptime
            or boot_id is not None and prev_boot_id is not None and boot_id != prev_boot_id):
        before = None
    elapsed = (uptime - prev_uptime) * tck / 100.0 if before is not None else 0.0
    since_boot = uptime * tck if uptime is not None else None
    percents = {}
    for pid, info in current.items():
        if before is not None:
            old = before.get(pid)
            if old is info:
                percents[pid] = 0.0
                continue
            if old is not None and old[2] == info[2] and old[1] <= info[1]:
                percents[pid] = round((info[1] - old[1]) / elapsed, 1)
                continue
        if since_boot is not None:
            life = since_boot - info[2]
            percents[pid] = round(info[1] * 100.0 / life, 1) if life > 0 else 0.0
        else:
            percents[pid] = None
    return percents, before is not None


def counter_map(current: "dict[int, tuple]") -> CounterMap:
    """processes.counters["ticks"] of a scan: its first PROC_COUNTERS_MAX processes."""
    counters = CounterMap()
    for pid, info in current.items():
        if len(counters) >= PROC_COUNTERS_MAX:
            break
        counters[str(pid)] = [info[2], info[1]]
    return counters


def _in_probe_cpu(ctx: Context, current: "dict[int, tuple]", interval: float) -> "dict":
    """First pass without previous counters: ticks spent between the two scans of the
    in-probe interval / its wall time, a pid whose start time changed (reused) or is new
    counting all its ticks."""
    tck = float(ctx.clk_tck)
    result = {}
    for pid, (_, ticks, start, _) in current.items():
        old = ctx.first_procs.get(pid)
        spent = ticks - old[1] if old is not None and old[0] == start else ticks
        result[pid] = round(max(0, spent) / tck / interval * 100.0, 1)
    return result


# A command line often carries a secret: --password=..., PGPASSWORD=..., a database URL with
# user:pass@, an "Authorization: Bearer ..." header, mysql's -pSECRET. They are masked here,
# on the host, before anything leaves it (and collector.transport.local calls this same
# function for the central host). Plain string work: importing `re` would cost every host
# more than the masking of a few command lines. Masking too much is the safe side.
SECRET_MASK = "[hidden]"
SECRET_WORDS = ("password", "passwd", "passphrase", "pwd", "secret", "token", "apikey",
                "accesskey", "privatekey", "credential", "auth", "sessionid", "cookie")
_MYSQL_TOOLS = ("mysql", "mysqldump", "mysqladmin", "mysqlimport", "mysqlshow", "mysqlcheck",
                "mariadb", "mariadb-dump", "mariadb-admin")
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_VALUE_ENDS = frozenset("&; ,'\"")


def is_secret_key(key: str) -> bool:
    """Whether an option or variable named `key` holds a secret (--db-password, PGPASSWORD,
    api_key, client.secret, X-Auth-Token, dbpass)."""
    word = key.lower().lstrip("-").replace("-", "").replace("_", "")
    return bool(word) and (word.endswith("pass") or any(w in word for w in SECRET_WORDS))


def _mask_url_passwords(arg: str) -> str:
    """scheme://user:secret@host -> scheme://user:[hidden]@host, for every URL in `arg`."""
    out, start = [], 0
    while True:
        found = arg.find("://", start)
        if found < 0:
            out.append(arg[start:])
            return "".join(out)
        begin = found + 3
        end = begin
        while end < len(arg) and arg[end] not in "/?# \"'":
            end += 1
        at = arg.rfind("@", begin, end)
        colon = arg.find(":", begin, at) if at >= 0 else -1
        if colon >= 0 and colon + 1 < at:
            out.append(arg[start:colon + 1] + SECRET_MASK + "@")
        else:
            out.append(arg[start:at + 1] if at >= 0 else arg[start:begin])
        start = at + 1 if at >= 0 else begin


def _mask_assignments(arg: str) -> str:
    """key=value (also in a query string or a list of them) -> key=[hidden] for a secret key."""
    out, start, index = [], 0, arg.find("=")
    while index >= 0:
        key_start = index
        while key_start > 0 and arg[key_start - 1] in _KEY_CHARS:
            key_start -= 1
        end = index + 1
        while end < len(arg) and arg[end] not in _VALUE_ENDS:
            end += 1
        if end > index + 1 and is_secret_key(arg[key_start:index]):
            out.append(arg[start:index + 1] + SECRET_MASK)
            start = end
        index = arg.find("=", max(end, index + 1))
    out.append(arg[start:])
    return "".join(out)


def _mask_schemes(arg: str) -> str:
    """'Authorization: Bearer xyz' / 'Basic xyz' inside one argument -> the token masked."""
    lower = arg.lower()
    for scheme in ("bearer ", "basic "):
        at = lower.find(scheme)
        if at >= 0:
            begin = at + len(scheme)
            end = begin
            while end < len(arg) and arg[end] not in " '\"":
                end += 1
            if end > begin:
                return arg[:begin] + SECRET_MASK + _mask_schemes(arg[end:])
    return arg


def mask_command_line(args: "list[str]") -> "list[str]":
    """`args` (argv) with the secrets it shows masked: key=value and --key value for secret
    keys, passwords in URLs, Bearer/Basic tokens, mysql's -pSECRET."""
    masked = []
    hide_next = False
    mysql = bool(args) and os.path.basename(args[0]) in _MYSQL_TOOLS
    for arg in args:
        if hide_next and not arg.startswith("-"):
            if arg.lower() in ("bearer", "basic"):  # "Authorization:" "Basic" "<token>"
                masked.append(arg)
                continue
            masked.append(SECRET_MASK)
            hide_next = False
            continue
        lower = arg.lower()
        hide_next = (arg.startswith("-") and "=" not in arg and is_secret_key(arg)
                     or lower in ("bearer", "basic")
                     or lower.endswith(("authorization:", "auth:")))
        if mysql and arg.startswith("-p") and len(arg) > 2 and not arg.startswith("--"):
            masked.append("-p" + SECRET_MASK)
            continue
        if "://" in arg:
            arg = _mask_url_passwords(arg)
        if "=" in arg:
            arg = _mask_assignments(arg)
        if "bearer " in lower or "basic " in lower:
            arg = _mask_schemes(arg)
        masked.append(arg)
    return masked


# Masked command lines by their raw bytes: the top processes are mostly the same from one
# pass to the next, and a resident probe (serve) would otherwise mask them again every time.
MASKED_KEPT = 512
_MASKED = {}  # type: dict


def _read_cmdline(ctx: Context, pid: int) -> bytes:
    try:
        return read_bytes(ctx.proc_path(str(pid), "cmdline"), CMDLINE_LIMIT)
    except OSError:
        return b""


def _process_entry(ctx: Context, pid: int, info: tuple, cpu: "float | None",
                   mem_total: "int | None", users: "dict[int, str]") -> dict:
    """Details for one top process: user, full name, command line (secrets masked, cut);
    with command_lines false the command line is not even read, the name is comm."""
    comm, _, _, rss_pages = info
    raw = _read_cmdline(ctx, pid) if ctx.params["command_lines"] else b""
    args = raw.rstrip(b"\0").split(b"\0")
    words = [a.decode("utf-8", "replace") for a in args] if raw else []
    cmdline = _MASKED.get(raw)
    if cmdline is None:
        cmdline = " ".join(mask_command_line(words)).strip()
        if len(_MASKED) >= MASKED_KEPT:  # a resident probe keeps it bounded: start afresh
            _MASKED.clear()
        _MASKED[raw] = cmdline
    name = comm
    if len(comm) >= 15 and words:
        # comm is cut at 15 characters; take the full name from argv[0] (psutil does too).
        base = os.path.basename(words[0]).split(" ")[0]
        if base.startswith(comm):
            name = base
    try:
        uid = parse_status_uid(read_text(ctx.proc_path(str(pid), "status"), PID_FILE_LIMIT))
    except (OSError, ValueError, IndexError):
        uid = None
    rss = rss_pages * ctx.page_size
    return {
        "pid": pid,
        "user": users.get(uid, str(uid) if uid is not None else ""),
        "name": name,
        "cmdline": cmdline[:CMDLINE_CHARS],
        "cpu_percent": cpu,
        "mem_percent": round(rss * 100.0 / mem_total, 2) if mem_total else None,
        "rss": rss,
    }


def start_interval(ctx: Context) -> None:
    """First readings of the in-probe interval (first pass only), then sleep the rest of it.

    The first /proc/stat and process scan are taken here so one sleep serves both; a failure
    is left for the family to report when it reads again. With proc_prev the previous pass's
    counters serve the processes, so they are not scanned twice.
    """
    sample = ctx.params["cpu_sample_s"]
    if sample <= 0:
        return
    started = ctx.monotonic()
    try:
        ctx.first_stat = read_text(ctx.proc_path("stat"))
    except OSError:
        ctx.first_stat = None
    if ctx.params.get("proc_prev") is None and ctx.prev_scan is None:
        try:
            pids = list_pids(ctx.proc)[:ctx.params["max_processes"]]
            ctx.first_procs_at = ctx.monotonic()
            ctx.first_procs = dict((pid, (info[2], info[1]))
                                   for pid, info in scan_processes(ctx, pids).items())
        except OSError:
            ctx.first_procs = None
    ctx.sleep(max(0.0, sample - (ctx.monotonic() - started)))


def read_boot_id(ctx: Context) -> "str | None":
    """This boot's random id (Linux 2.6.19+), None where it cannot be read."""
    try:
        return read_text(ctx.proc_path("sys", "kernel", "random", "boot_id"),
                         SMALL_FILE_LIMIT).strip()[:64] or None
    except OSError:
        return None


def collect_processes(ctx: Context) -> dict:
    """Process count, the top_n processes by CPU and by resident memory, and the counters.

    Only /proc/<pid>/stat is read for every process (bounded by `max_processes`); status and
    cmdline are read for the few top candidates. User names come from one parse of
    etc_root/passwd (not a getpwuid per pid); uids it lacks (LDAP...) are shown as numbers.
    CPU percent: over the interval since the previous pass when proc_prev has its counters
    (cpu_basis "interval"), else over the in-probe interval ("probe"), else the lifetime
    average ("lifetime"); see process_cpu_percent. `counters` is for the collector to send
    back next time, which strips it before storing.
    """
    pids = list_pids(ctx.proc)
    # Read with the scan, not the cached copy of the system family: disks may have waited
    # seconds on a mount in between, which would bend the interval.
    uptime = ctx.attempt("processes:uptime", lambda: parse_uptime(
        read_text(ctx.proc_path("uptime"), SMALL_FILE_LIMIT)))
    scanned_at = ctx.monotonic()
    current = scan_processes(ctx, pids[:ctx.params["max_processes"]])
    boot_id = read_boot_id(ctx)
    counters = None
    if ctx.params["proc_prev"] is None and ctx.prev_scan is not None:
        cpu, from_prev = cpu_since_scan(current, uptime, boot_id, ctx.prev_scan, ctx.clk_tck)
    else:
        prev = ctx.attempt("processes:prev", lambda: parse_proc_prev(ctx.params["proc_prev"]))
        cpu, counters, from_prev = process_cpu_percent(
            ((pid, info[2], info[1]) for pid, info in current.items()), uptime, prev,
            ctx.clk_tck, boot_id)
    ctx.scan = (uptime, boot_id, current)
    basis = "interval" if from_prev else "lifetime"
    if not from_prev and ctx.first_procs is not None and scanned_at > ctx.first_procs_at:
        cpu = _in_probe_cpu(ctx, current, scanned_at - ctx.first_procs_at)
        basis = "probe"
    top_n = ctx.params["top_n"]
    by_cpu = sorted(current, key=lambda pid: (-(cpu[pid] or 0.0), pid))[:top_n]
    by_mem = sorted(current, key=lambda pid: (-current[pid][3], pid))[:top_n]
    mem_total = ctx.attempt("processes:meminfo", lambda: parse_meminfo(
        ctx.proc_text("meminfo", SMALL_FILE_LIMIT))["MemTotal"])
    users = ctx.attempt("processes:passwd", lambda: parse_passwd(read_text(
        os.path.join(ctx.params["etc_root"], "passwd"), SYS_FILE_LIMIT)), {})
    details = {}
    for pid in by_cpu + by_mem:
        if pid not in details:
            details[pid] = _process_entry(ctx, pid, current[pid], cpu[pid], mem_total, users)
    result = {
        "count": len(pids),
        "scanned": len(current),
        "cpu_basis": basis,
        "top_cpu": [details[pid] for pid in by_cpu],
        "top_mem": [details[pid] for pid in by_mem],
    }
    if uptime is not None and ctx.want_counters:
        if counters is None:
            counters = counter_map(current)
        result["counters"] = {"uptime": uptime, "boot_id": boot_id, "ticks": counters}
    return result


# --------------------------------------------------------------------------- users


def _utmp_layouts() -> "list[tuple[int, object]]":
    """Candidate struct layouts of glibc's `struct utmp`, the likeliest first.

    384 bytes where 64-bit glibc keeps 32-bit times for compatibility (x86_64, ppc64, s390x
    and all 32-bit), 400 bytes where it does not (aarch64, riscv64): long ut_session and
    struct timeval, 8-byte aligned.
    """
    import struct

    compat = struct.Struct("=hxxi32s4s32s256shhiii16s20x")
    wide = struct.Struct("=hxxi32s4s32s256shhqqq16s20x4x")
    machine = os.uname().machine
    if machine.startswith(("aarch64", "arm64", "riscv64", "loongarch64")):
        return [(wide.size, wide), (compat.size, compat)]
    return [(compat.size, compat), (wide.size, wide)]


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def iso_utc(epoch: float) -> "str | None":
    """ISO 8601 UTC with a Z, None for a time the platform cannot represent."""
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
    except (OverflowError, ValueError, OSError):
        return None


def _utmp_layout(data: bytes) -> "tuple[int, object]":
    """The first candidate layout whose size divides the file and whose ut_type values are
    all valid (0..9); else the likeliest one (a torn last record is then ignored)."""
    layouts = _utmp_layouts()
    for size, layout in layouts:
        if len(data) % size == 0 and all(
                0 <= layout.unpack_from(data, offset)[0] <= 9
                for offset in range(0, len(data), size)):
            return size, layout
    return layouts[0]


def parse_utmp(data: bytes) -> "list[dict]":
    """USER_PROCESS records of a utmp file as {name, tty, from, since, pid}."""
    size, layout = _utmp_layout(data)
    records = [layout.unpack_from(data, offset)
               for offset in range(0, len(data) - size + 1, size)]
    users = []
    for rec in records:
        ut_type, pid, line, _, user, host = rec[:6]
        name = _cstr(user)
        if ut_type != USER_PROCESS or not name:
            continue
        users.append({"name": name, "tty": _cstr(line), "from": _cstr(host) or None,
                      "since": iso_utc(rec[9]), "pid": pid})
    return users


PRESSURE_RESOURCES = ("cpu", "memory", "io")
PRESSURE_AVERAGES = ("avg10", "avg60", "avg300")
# EOPNOTSUPP: a kernel built with PSI but booted with psi=0 keeps the files and refuses reads.
_NO_PSI_ERRNOS = (95,)


def parse_pressure(text: str) -> dict:
    """One /proc/pressure/<resource> file as {"some": {...}, "full": {...}}.

    Lines look like `some avg10=1.53 avg60=0.87 avg300=0.25 total=1234567`: the share of the
    last 10, 60 and 300 s in which tasks stalled, in percent, and the cumulative stall time
    in microseconds. A line missing one of those four is left out (a truncated read).
    """
    result = {}
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0] not in ("some", "full"):
            continue
        values = {}
        for field in fields[1:]:
            key, sep, value = field.partition("=")
            if sep and key in PRESSURE_AVERAGES:
                values[key] = min(100.0, max(0.0, float(value)))
            elif sep and key == "total":
                values[key] = max(0, int(value))
        if len(values) == len(PRESSURE_AVERAGES) + 1:
            result[fields[0]] = values
    return result


def collect_pressure(ctx: Context) -> "dict | None":
    """Pressure stall information (kernel 4.20+); None, not an error, where the kernel has none.

    cpu keeps only "some": its system-wide "full" (added in 5.13) is always zero.
    """
    base = ctx.proc_path("pressure")
    if not os.path.isdir(base):
        return None
    result = {}
    for resource in PRESSURE_RESOURCES:
        try:
            text = read_text(os.path.join(base, resource), SMALL_FILE_LIMIT)
        except FileNotFoundError:
            continue
        except OSError as exc:
            if exc.errno in _NO_PSI_ERRNOS:
                continue
            raise
        lines = parse_pressure(text)
        if resource == "cpu":
            lines.pop("full", None)
        if "some" in lines:
            result[resource] = lines
    return result or None


def collect_users(ctx: Context) -> list:
    """Logged-in users from utmp, as `who` lists them.

    Like coreutils `who` reading the system utmp, an entry whose process is gone (crashed
    session that left no DEAD_PROCESS record) is skipped; liveness is the existence of
    proc_root/<pid>. No utmp file means nobody is logged in (containers), not an error.
    """
    try:
        data = read_bytes(ctx.params["utmp_path"], UTMP_LIMIT)
    except FileNotFoundError:
        return []
    result = []
    for entry in parse_utmp(data):
        pid = entry.pop("pid")
        if ctx.params["utmp_check_pids"] and (
                pid <= 0 or not os.path.exists(ctx.proc_path(str(pid)))):
            continue
        result.append(entry)
    return cap_entries(ctx.errors, "users", result, "sessions")


# --------------------------------------------------------------------------- checks
# Nagios-plugin-API checks from the admin's [[checks]] tables. They arrive as data in
# params["checks"] (argv lists, never a shell string), and nothing read on this host is ever
# added to a command. The raw exit code and capped output go back; parsing the plugin output
# is the collector's job. This family runs only when checks are asked for (ON_REQUEST), so a
# probe without checks never imports subprocess or starts a thread.

CHECK_WORKERS = 8  # checks run side by side: the probe waits about the longest, not the sum
MAX_CHECKS = 200
CHECK_NAME_CHARS = 128
CHECK_MAX_ARGS = 1024
CHECK_DEFAULT_TIMEOUT_S = 10.0
CHECK_TIMEOUT_RANGE = (0.1, 3600.0)
CHECK_DEFAULT_OUTPUT = 65536
# Bytes of stdout + stderr read from one check; one byte more and it is killed as a flood.
CHECK_OUTPUT_RANGE = (256, 1 << 20)
CHECK_STDERR_CHARS = 2048  # stderr is a diagnostic, kept short
CHECK_ERROR_CHARS = 300
# JSON-escaped characters of all checks' texts together. The collector refuses a `checks`
# section over 2 MiB (probe_schema.CHECKS_MAX_BYTES) and a probe answer over 4 MiB
# (ssh.MAX_STDOUT): 1 MiB of text plus at most MAX_CHECKS small records stays well inside.
CHECKS_TEXT_BUDGET = 1 << 20
# When `checks_budget_s` is 0 (not sent): all checks must be done this long after the first
# starts, or after the longest timeout if that is longer. A wave of slow checks behind
# CHECK_WORKERS others gets what is left, so the probe cannot outlive the host deadline.
CHECKS_DEFAULT_BUDGET_S = 25.0
# After the plugin exits, how long a child of it that still holds the pipes may keep writing
# before its process group is killed.
CHECK_EXIT_GRACE_S = 0.5
CHECK_POLL_S = 0.1  # how often "has the plugin exited?" is asked while its pipes are open
CHECK_REAP_S = 2.0  # a SIGKILLed process stuck in the kernel (D state) is not waited on longer


def _clamped_number(value: "object", default: float, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return default
    return min(high, max(low, value))


def parse_check_specs(raw: "object") -> "tuple[list[dict], list[str]]":
    """The runnable checks of params["checks"], and one message per entry that is not.

    A check whose command is unusable is still listed (with `problem`) so its answer says
    why; one without a usable name cannot be answered and is only reported.
    """
    if not isinstance(raw, list):
        raise ValueError(f"checks must be a list, not {type(raw).__name__}")
    specs = []
    problems = []
    seen = set()
    for index, item in enumerate(raw):
        if len(specs) >= MAX_CHECKS:
            problems.append(f"{len(raw) - index} checks over the limit of {MAX_CHECKS} "
                            "were not run")
            break
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name or len(name) > CHECK_NAME_CHARS:
            problems.append(f"check #{index + 1} has no usable name")
            continue
        if name in seen:
            problems.append(f"check #{index + 1}: duplicate name, run once")
            continue
        seen.add(name)
        command = item.get("command")
        if (not isinstance(command, list) or not command or len(command) > CHECK_MAX_ARGS
                or not all(isinstance(arg, str) and arg and "\0" not in arg
                           for arg in command)):
            specs.append({"name": name, "problem": "the command is not a non-empty list of "
                                                   "non-empty strings"})
            continue
        specs.append({
            "name": name, "argv": list(command),
            "timeout_s": float(_clamped_number(item.get("timeout_s"), CHECK_DEFAULT_TIMEOUT_S,
                                               *CHECK_TIMEOUT_RANGE)),
            "max_output": int(_clamped_number(item.get("max_output"), CHECK_DEFAULT_OUTPUT,
                                              *CHECK_OUTPUT_RANGE)),
        })
    return specs, problems


def _has_exited(pid: int) -> bool:
    """True once the child has exited, without reaping it.

    WNOWAIT keeps the zombie, so its pid (the process group's id) cannot be reused before
    `_end_group` has sent the group SIGKILL: no unrelated process can be hit.
    """
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _read_capped(proc: "object", deadline: float, cap: int,
                 monotonic: "object") -> "tuple[bytes, bytes, str | None]":
    """stdout and stderr of `proc` until it exits, at most `cap` bytes together.

    Returns (stdout, stderr, reason): reason is "timeout" or "flood" when the check must be
    killed, else None. Reads raw file descriptors with a selector, so a plugin that writes
    to both pipes cannot deadlock us and a byte count is known at every step.
    """
    import selectors

    fds = {proc.stdout.fileno(): [], proc.stderr.fileno(): []}
    selector = selectors.DefaultSelector()
    for fd in fds:
        selector.register(fd, selectors.EVENT_READ)
    size = 0
    reason = None
    exited_at = None
    try:
        while True:
            now = monotonic()
            if exited_at is None and _has_exited(proc.pid):
                exited_at = now
            open_fds = bool(selector.get_map())
            if exited_at is not None and (not open_fds or now >= exited_at + CHECK_EXIT_GRACE_S):
                break
            if now >= deadline:  # a plugin that did exit keeps its answer
                reason = None if exited_at is not None else "timeout"
                break
            if exited_at is not None:
                wait = min(deadline, exited_at + CHECK_EXIT_GRACE_S) - now
            else:
                wait = min(deadline - now, CHECK_POLL_S if open_fds else 0.01)
            if not open_fds:  # pipes closed, plugin still running: just watch the clock
                time.sleep(wait)
                continue
            for key, _ in selector.select(wait):
                data = os.read(key.fd, min(65536, cap + 1 - size))
                if not data:
                    selector.unregister(key.fd)
                    continue
                fds[key.fd].append(data)
                size += len(data)
                if size > cap:
                    fds[key.fd][-1] = data[:len(data) - (size - cap)]
                    reason = "flood"
                    break
            if reason:
                break
    finally:
        selector.close()
    return b"".join(fds[proc.stdout.fileno()]), b"".join(fds[proc.stderr.fileno()]), reason


def _end_group(proc: "object") -> bool:
    """SIGKILL the check's whole process group, then reap the plugin; False if it would not die.

    Always done, also after a clean exit: a child the plugin left behind in its group is an
    orphan nobody would stop. A child that called setsid() itself has left on purpose.
    """
    import contextlib
    import signal
    import subprocess

    with contextlib.suppress(OSError):  # the group is already empty
        os.killpg(proc.pid, signal.SIGKILL)
    try:
        proc.wait(timeout=CHECK_REAP_S)
        return True
    except subprocess.TimeoutExpired:  # stuck in the kernel; init reaps it when it dies
        return False
    finally:
        proc.stdout.close()
        proc.stderr.close()


def _signal_name(number: int) -> str:
    import signal

    try:
        return signal.Signals(number).name
    except ValueError:
        return "signal " + str(number)


# A check runs in a session of its own, out of reach of whatever kills the probe (the
# host-side limit of the remote command, the OOM killer, an admin): a small `sh` in another
# session watches a pipe from the probe and kills the check's process group if the probe
# dies before saying the check is over. (GNU `timeout` around the check would die with the
# group when the probe kills it, and leave the plugin to init as a zombie.)
_GUARD_SCRIPT = 'read -r word; [ "$word" = done ] || kill -9 -"$1" 2>/dev/null'


def _guard(pgid: int) -> "tuple[object, int] | None":
    """Start the watcher of process group `pgid`; None if it cannot run (no sh)."""
    import subprocess

    read_end, write_end = os.pipe()
    try:
        watcher = subprocess.Popen(["sh", "-c", _GUARD_SCRIPT, "osmon-check-guard", str(pgid)],
                                   stdin=read_end, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, close_fds=True,
                                   start_new_session=True)
    except (OSError, ValueError):
        os.close(write_end)
        return None
    finally:
        os.close(read_end)
    return watcher, write_end


def _release(guard: "tuple[object, int] | None") -> None:
    """The check is over: its watcher leaves without killing anything."""
    if guard is None:
        return
    import contextlib
    import subprocess

    watcher, write_end = guard
    with contextlib.suppress(OSError):  # the watcher is gone already: nothing to tell it
        os.write(write_end, b"done\n")
    os.close(write_end)
    try:
        watcher.wait(timeout=CHECK_REAP_S)
    except subprocess.TimeoutExpired:
        watcher.kill()


def run_check(spec: dict, deadline: float, budget_s: float,
              monotonic: "object" = time.monotonic) -> dict:
    """Run one check: argv, no shell, stdin /dev/null, its own session and process group.

    Answer: {"exit": code or None, "output": stdout text, "duration_s", and when set
    "stderr" and "error" (why there is no usable exit code: not runnable, timed out,
    flooded, killed by a signal)}. Never raises for a problem of the check itself.
    """
    start = monotonic()
    answer = {"exit": None, "output": "", "duration_s": 0.0}
    if "problem" in spec:
        answer["error"] = spec["problem"]
        return answer
    timeout = min(spec["timeout_s"], deadline - start)
    if timeout < CHECK_TIMEOUT_RANGE[0]:
        answer["error"] = (f"not run: the {budget_s:g} s the probe gives all checks were "
                           "used up by slower ones")
        return answer
    import subprocess

    argv0 = spec["argv"][0][:200]
    try:
        proc = subprocess.Popen(spec["argv"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, close_fds=True, start_new_session=True)
    except FileNotFoundError:
        answer["error"] = f"command not found: {argv0}"
        return answer
    except PermissionError:
        answer["error"] = f"command not executable (permission denied): {argv0}"
        return answer
    except (OSError, ValueError) as exc:
        answer["error"] = f"cannot run {argv0}: {describe(exc)}"[:CHECK_ERROR_CHARS]
        return answer
    guard = _guard(proc.pid)
    try:
        out, err, reason = _read_capped(proc, start + timeout, spec["max_output"], monotonic)
    finally:
        reaped = _end_group(proc)
        _release(guard)
    answer["duration_s"] = round(monotonic() - start, 3)
    answer["output"] = out.decode("utf-8", "replace")
    if err:
        answer["stderr"] = err.decode("utf-8", "replace")[:CHECK_STDERR_CHARS]
    code = proc.returncode
    if reason == "timeout":
        cut = "" if timeout >= spec["timeout_s"] else (
            f" (cut short: the {budget_s:g} s the probe gives all checks ran out)")
        answer["error"] = f"timed out after {round(timeout, 1):g} s, killed{cut}"
    elif reason == "flood":
        answer["error"] = (f"more than {spec['max_output']} bytes of output, killed "
                           "(raise max_output if that much is expected)")
    elif code is None:
        answer["error"] = "did not exit and could not be killed (stuck in the kernel?)"
    elif code < 0:
        answer["error"] = f"killed by {_signal_name(-code)}"
    else:
        answer["exit"] = code
    if not reaped and "error" in answer:
        answer["error"] += "; the process could not be reaped"
    return answer


def _escaped_len(encode: "object", text: str) -> int:
    return len(encode(text)) - 2  # the JSON text without its quotes


def _clip_escaped(encode: "object", text: str, limit: int) -> str:
    """The longest prefix of `text` whose JSON-escaped form has at most `limit` characters."""
    low, high = 0, min(len(text), limit)
    while low < high:
        middle = (low + high + 1) // 2
        if _escaped_len(encode, text[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    return text[:low]


def fit_texts(answers: dict, budget: int = CHECKS_TEXT_BUDGET) -> None:
    """Trim the answers' output and stderr so that, JSON-escaped, they total at most `budget`.

    Fair share: the smallest texts are kept whole and what is left is split evenly among the
    larger ones, so one chatty check cannot starve the others. A trimmed answer gets
    "truncated": true. Escaped length counts: a byte of binary garbage becomes a
    6-character \\ufffd, so a byte cap alone would not bound the JSON.
    """
    encode = _string_encoder()
    texts = []
    for name, answer in answers.items():
        for field in ("output", "stderr"):
            if answer.get(field):
                texts.append((_escaped_len(encode, answer[field]), name, field))
    texts.sort(key=lambda item: item[0])
    remaining = budget
    for index, (size, name, field) in enumerate(texts):
        share = remaining // (len(texts) - index)
        if size > share:
            answers[name][field] = _clip_escaped(encode, answers[name][field], share)
            answers[name]["truncated"] = True
            size = _escaped_len(encode, answers[name][field])
        remaining -= size


def run_checks(raw: "object", budget_s: float = 0.0, workers: int = CHECK_WORKERS,
               monotonic: "object" = time.monotonic) -> "tuple[dict, list[str], bool]":
    """Run the checks of params["checks"] on a small pool of threads.

    Returns ({name: answer} in the given order, problems with the list itself, hung): hung
    is True when a worker thread is still alive at the end (it should never be: each check
    is bounded by its timeout plus the kill), so the caller can leave with os._exit.
    """
    import threading

    specs, problems = parse_check_specs(raw)
    if not specs:
        return {}, problems, False
    if budget_s <= 0:
        budget_s = max([CHECKS_DEFAULT_BUDGET_S] + [s.get("timeout_s", 0.0) for s in specs])
    deadline = monotonic() + budget_s
    pending = list(reversed(specs))
    answers = {}
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if not pending:
                    return
                spec = pending.pop()
            try:
                answer = run_check(spec, deadline, budget_s, monotonic)
            except Exception as exc:  # noqa: BLE001 - a bug here must cost one check only
                answer = {"exit": None, "output": "", "duration_s": 0.0,
                          "error": "probe error: " + describe(exc)}
            with lock:
                answers[spec["name"]] = answer

    threads = [threading.Thread(target=worker, name="check") for _ in
               range(min(max(1, workers), len(specs)))]
    for thread in threads:
        thread.daemon = True
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline + CHECK_EXIT_GRACE_S + CHECK_REAP_S + 1.0 - monotonic()))
    hung = any(thread.is_alive() for thread in threads)
    with lock:
        ordered = {}
        for spec in specs:
            ordered[spec["name"]] = answers.get(spec["name"]) or {
                "exit": None, "output": "", "duration_s": None,
                "error": "still running when the probe had to answer"}
    for answer in ordered.values():
        if "error" in answer:
            answer["error"] = answer["error"][:CHECK_ERROR_CHARS]
    fit_texts(ordered)
    return ordered, problems, hung


def collect_checks(ctx: Context) -> dict:
    """The checks family: {name: answer} for every check in params["checks"]."""
    answers, problems, hung = run_checks(ctx.params["checks"], ctx.params["checks_budget_s"],
                                         monotonic=ctx.monotonic)
    if problems:
        ctx.errors["checks:params"] = "ValueError: " + "; ".join(problems)[:CHECK_ERROR_CHARS]
    if hung:
        ctx.hung_threads = True
    return answers



# --------------------------------------------------------------------------- driver

# One row per metric family, in output order. Each function takes the Context and returns
# the JSON value of its section; an exception lands in errors[<family>].
FAMILIES = (
    ("system", collect_system),
    ("cpu", collect_cpu),
    ("memory", collect_memory),
    ("swap", collect_swap),
    ("disks", collect_disks),
    ("disk_io", collect_disk_io),
    ("net", collect_net),
    ("processes", collect_processes),
    ("users", collect_users),
    ("pressure", collect_pressure),
)
# Families that run after those, only when their parameter asks for something (a non-empty
# list): a probe without checks pays nothing for them. (family, function, parameter)
ON_REQUEST = (
    ("checks", collect_checks, "checks"),
)


def _python_version() -> str:
    return ".".join(str(part) for part in sys.version_info[:3])


def portable_system() -> dict:
    """What can be said without /proc, for a non-Linux host (platform works on Windows too)."""
    import platform

    uname = platform.uname()
    return {"hostname": uname.node, "os": uname.system, "kernel": uname.release,
            "arch": uname.machine, "boot_time": None, "uptime_s": None,
            "python": _python_version()}


def run(ctx: Context, platform: str = sys.platform) -> dict:
    """All families in order; each failure is recorded and the rest still run."""
    result = {"probe": PROBE_VERSION}
    if not platform.startswith("linux"):
        result["system"] = portable_system()
        ctx.errors["platform"] = (f"UnsupportedPlatform: {platform}; osmon reads Linux /proc, "
                                  "only system facts are reported")
        result["errors"] = ctx.errors
        return result
    start_interval(ctx)
    families = list(FAMILIES) + [(name, family) for name, family, key in ON_REQUEST
                                 if ctx.params.get(key)]
    for name, family in families:
        try:
            value = family(ctx)
            if value is not None:  # None: the host has no such thing (no PSI), not an error
                result[name] = value
        except Exception as exc:  # noqa: BLE001 - one family's failure must not stop others
            ctx.errors[name] = describe(exc)
    result["errors"] = ctx.errors
    return result


def collect(params: "dict | None" = None, statvfs: "object" = None, now: "object" = None,
            monotonic: "object" = None, sleep: "object" = None,
            platform: str = sys.platform) -> dict:
    """Collect with explicit parameters and injectable side effects (the tests' entry)."""
    merged = dict(DEFAULTS)
    merged["checks"] = None
    merged["proc_prev"] = None
    merged.update(params or {})
    ctx = Context(merged, statvfs=statvfs, now=now, monotonic=monotonic, sleep=sleep)
    return run(ctx, platform)


def json_safe(value: "object") -> "object":
    """Copy of `value` that json.dumps(allow_nan=False) accepts: no NaN/inf, no surrogates.

    A CounterMap holds only ints and digit strings: it is kept as it is (and not copied)."""
    if type(value) is CounterMap:
        return value
    if isinstance(value, float):
        return value if value - value == 0.0 else None
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        return value
    if isinstance(value, dict):
        return dict((json_safe(key), json_safe(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def main(params_json: "str | None" = None) -> int:
    """Parse parameters, collect, print one compact JSON object; 0 unless output failed.

    With `self_timing`, `timing` reports the CPU and wall time spent in here, which
    excludes interpreter start-up. When a statvfs thread is stuck in the kernel the process
    leaves with os._exit after flushing, so interpreter shutdown cannot wait on it.
    """
    cpu_start = time.process_time()
    wall_start = time.monotonic()
    params, param_error = parse_params(params_json)
    ctx = Context(params)
    result = run(ctx)
    if param_error:
        ctx.errors["params"] = param_error
    if params["self_timing"]:
        result["timing"] = {"cpu_s": round(time.process_time() - cpu_start, 6),
                            "wall_s": round(time.monotonic() - wall_start, 6)}
    sys.stdout.write(encode_output(result))
    sys.stdout.write("\n")
    sys.stdout.flush()
    if ctx.hung_threads:
        os._exit(0)
    return 0


# --------------------------------------------------------------------------- resident mode
# `osmon run` keeps one probe process per host across passes (docs/architecture.md, "Resident
# sessions"). The remote command's `resident` branch starts
#   python3 -I -S -c 'import sys;b=sys.stdin.buffer;exec(b.read(int(b.readline(32))),
#                     dict(__name__=sys.argv[1],OSMON_STDIN=b))' osmon-resident <watchdog>
# so stdin stays open after the source: "<length>\n<this file>", then one request per pass,
# each one JSON line {"id", "params", "limit_s", "idle_s", "counters"}. Each answer is a frame,
# "osmon <id> <length>\n" and that many bytes of the JSON document main() would print.
# Until this loop runs, a watchdog the remote command started in the background (this
# process's child, its pid the argument after "osmon-resident") kills the session's process
# group once the start-up limit is over (an "interpreter" that never reads its input);
# stopping it hands the limits over to this loop: SIGALRM (default action: the process ends)
# bounds every request by its `limit_s` and every wait between two requests by `idle_s`, so
# a probe the collector forgot cannot stay.

RESIDENT_NAME = "osmon-resident"
RESIDENT_MAX_REQUEST = 64 << 20  # proc_prev of PROC_COUNTERS_MAX pids fits well inside
RESIDENT_LIMIT_S = (1, 3600)
RESIDENT_IDLE_S = (1, 7 * 86400)
RESIDENT_DEFAULT_IDLE_S = 3600


def _clamped_seconds(value: "object", default: int, bounds: "tuple[int, int]") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return default
    return int(min(bounds[1], max(bounds[0], -(-value // 1))))


def parse_request(line: bytes) -> dict:
    """One request line -> {"id", "params", "limit_s", "idle_s", "counters"}; ValueError when
    it is not a request (the collector never sends that: the session then ends)."""
    raw = json_loads(line.decode("ascii"))
    if not isinstance(raw, dict) or type(raw.get("id")) is not int or raw["id"] < 0:
        raise ValueError("a request is an object with a non-negative integer id")
    params = raw.get("params")
    return {"id": raw["id"], "params": params if isinstance(params, dict) else None,
            "limit_s": _clamped_seconds(raw.get("limit_s"), 60, RESIDENT_LIMIT_S),
            "idle_s": _clamped_seconds(raw.get("idle_s"), RESIDENT_DEFAULT_IDLE_S,
                                       RESIDENT_IDLE_S),
            "counters": raw.get("counters") is True}


def answer_frame(request_id: int, document: str) -> bytes:
    body = document.encode("ascii")
    return f"osmon {request_id:d} {len(body):d}\n".encode("ascii") + body


def _release_watchdog(argv: "list[str] | tuple") -> None:
    """Stop the start-up watchdog: its limit ends here.  `argv` is the probe's arguments after
    its name: the watchdog's pid, when the remote command started one.  Only a child of this
    process is signalled (waitpid tells), so no other process can be hit by mistake; it is
    reaped, so it does not stay as a zombie beside the probe for the session's life."""
    import signal

    try:
        pid = int(argv[0])
        if pid <= 1 or os.waitpid(pid, os.WNOHANG)[0] != 0:
            return  # not a pid, or the watchdog ended already (now reaped)
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
    except (IndexError, ValueError, OSError):
        pass  # no watchdog (the tests start the probe alone), or not a child of this process


class Resident:
    """The probe between requests: what it keeps from one to the next (its last process scan,
    so per-process CPU covers the interval between passes without the collector sending
    counters back every time, and the processes' stat files open: PidStatFiles).  The
    counters go to the collector only when a request asks for them."""

    def __init__(self) -> None:
        self.last_scan = None  # type: tuple | None  # Context.scan of the last answer
        self.pid_files = PidStatFiles(pid_files_limit())

    def answer(self, request: dict) -> "tuple[str, bool]":
        """The JSON document for one request, and whether the probe must end after it (a
        thread stuck in the kernel: only a fresh process is sure to be clean)."""
        params, param_error = params_from(request["params"])
        ctx = Context(params)
        ctx.pid_files = self.pid_files
        ctx.prev_scan = self.last_scan
        ctx.want_counters = request["counters"]
        cpu_start, wall_start = time.process_time(), time.monotonic()
        result = run(ctx)
        if param_error:
            ctx.errors["params"] = param_error
        if ctx.scan is not None and ctx.scan[0] is not None:  # an uptime: counters to keep
            self.last_scan = ctx.scan
        if params["self_timing"]:
            result["timing"] = {"cpu_s": round(time.process_time() - cpu_start, 6),
                                "wall_s": round(time.monotonic() - wall_start, 6)}
        return encode_output(result), ctx.hung_threads


def serve(stdin: "object", stdout: "object" = None, argv: "list[str]" = ()) -> int:
    """Answer requests until stdin ends: 0 at end of input, 2 on a line that is no request.
    `argv`: the arguments after the probe's name (the start-up watchdog's pid)."""
    import signal

    out = stdout or sys.stdout.buffer
    alarm = getattr(signal, "alarm", lambda seconds: 0)
    alarm(RESIDENT_DEFAULT_IDLE_S)  # armed before the watchdog lets go: no gap
    _release_watchdog(argv)
    resident = Resident()
    while True:
        line = stdin.readline(RESIDENT_MAX_REQUEST + 1)
        if not line:
            return 0
        try:
            if not line.endswith(b"\n"):
                raise ValueError(f"a request line over {RESIDENT_MAX_REQUEST} bytes")
            request = parse_request(line)
        except ValueError as exc:
            sys.stderr.write(f"osmon probe: not a request ({describe(exc)[:200]}); ending\n")
            return 2
        alarm(request["limit_s"])
        document, must_end = resident.answer(request)
        try:
            out.write(answer_frame(request["id"], document))
            out.flush()
        except (BrokenPipeError, ValueError):
            return 0  # the collector closed the session meanwhile
        alarm(request["idle_s"])
        if must_end:
            os._exit(0)


if __name__ == "__main__":
    sys.exit(main(globals().get("OSMON_PARAMS")))
elif __name__ == RESIDENT_NAME:
    sys.exit(serve(globals()["OSMON_STDIN"], argv=sys.argv[2:]))
