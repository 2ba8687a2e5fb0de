"""Validation of probe output received from monitored hosts, which we do not trust.

`validate_probe_output(obj)` returns a cleaned copy that holds only the keys the probe
documents, so nothing unexpected reaches the stored log, and raises `InvalidProbeOutput`
(the collector records it as error kind `invalid-output`) when the shape is wrong:

- the top level is not an object, or `probe` is not the version we sent;
- a section or field has the wrong type (bool is not a number), a number is not finite,
  is negative where it counts something, or a percentage is outside 0..100;
- a list is absurdly long (more than 4096 disks, interfaces, cores or users, more than
  1000 processes in a top list, more than 100,000 entries in `processes.counters`);
- `processes.counters` (per-pid CPU counters the collector keeps for the next pass, never
  stored in the log) is not exactly {uptime, boot_id, ticks: {"<digits>": [int, int]}};
- a section is missing and `errors` does not explain it (a failed family is named there,
  or `platform` says the host is not Linux).

Strings are truncated to a per-field cap rather than rejected (a long command line is normal,
a 10 MB one is cut); they are otherwise kept as plain data: escaping is the web layer's job.
Unknown keys are dropped. `checks` passes through as-is when it is an object whose JSON
encoding is at most CHECKS_MAX_BYTES; its inner shape is validated elsewhere.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

MAX_ITEMS = 4096
MAX_TOP = 1000
MAX_ERRORS = 4096
MAX_COUNTER = 2**64  # kernel counters are u64
# processes.counters: one entry per scanned process (remote_probe.probe.PROC_COUNTERS_MAX)
MAX_PROC_COUNTERS = 100_000
PID_DIGITS = 10  # pid_max is at most 2**22 (7 digits)
CPU_BASES = ("interval", "probe", "lifetime")
# Nagios-style check outputs (up to `max_output`, 64 KiB by default, each): generous, yet
# below the transport's 4 MiB stdout cap so one section cannot be the whole answer.
CHECKS_MAX_BYTES = 2 * 1024 * 1024
PROBE_VERSION = 1

SECTIONS = ("system", "cpu", "memory", "swap", "disks", "disk_io", "net", "processes", "users")


class InvalidProbeOutput(ValueError):
    """Probe output with the wrong shape; `reason` names the offending path."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


Check = Callable[[Any, str], Any]


# --------------------------------------------------------------------------- field checks


def number(low: float | None = 0.0, high: float | None = None, *, nullable: bool = False,
           integer: bool = False) -> Check:
    """A finite int or float (never bool) within [low, high]; integer=True demands an int."""

    def check(value: Any, path: str) -> Any:
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidProbeOutput(f"{path}: expected a number, got {type(value).__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidProbeOutput(f"{path}: not a finite number")
        if integer and not isinstance(value, int):
            if not value.is_integer():
                raise InvalidProbeOutput(f"{path}: expected an integer")
            value = int(value)
        if (low is not None and value < low) or (high is not None and value > high):
            raise InvalidProbeOutput(f"{path}: {value!r} is outside [{low}, {high}]")
        return value

    return check


def counter(*, nullable: bool = False) -> Check:
    """A non-negative integer that fits a u64 (bytes, packets, pids)."""
    return number(0, MAX_COUNTER, nullable=nullable, integer=True)


def percent(*, nullable: bool = False) -> Check:
    return number(0.0, 100.0, nullable=nullable)


#: Control characters (but tab, newline and carriage return) and lone surrogates: a lone
#: surrogate cannot be encoded as UTF-8 (it made the store raise and cost the whole pass), and
#: control characters make SVG charts ill-formed XML and reach plain-text mail and terminals.
_UNSAFE_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def clean_text(value: str, cap: int) -> str:
    """``value`` cut to ``cap`` characters, each unsafe character replaced by U+FFFD."""
    return _UNSAFE_CHARS.sub("\ufffd", value[:cap])


def string(cap: int = 256, *, nullable: bool = False) -> Check:
    """A str, truncated to `cap` characters and cleaned (:func:`clean_text`)."""

    def check(value: Any, path: str) -> Any:
        if value is None and nullable:
            return None
        if not isinstance(value, str):
            raise InvalidProbeOutput(f"{path}: expected a string, got {type(value).__name__}")
        return clean_text(value, cap)

    return check


def array(item: Check, max_items: int = MAX_ITEMS, *, length: int | None = None,
          nullable: bool = False) -> Check:
    """A list of `item`, at most `max_items` long (exactly `length` when given)."""

    def check(value: Any, path: str) -> Any:
        if value is None and nullable:
            return None
        if not isinstance(value, list):
            raise InvalidProbeOutput(f"{path}: expected a list, got {type(value).__name__}")
        if len(value) > max_items:
            raise InvalidProbeOutput(f"{path}: {len(value)} items, at most {max_items} allowed")
        if length is not None and len(value) != length:
            raise InvalidProbeOutput(f"{path}: expected {length} items, got {len(value)}")
        return [item(element, f"{path}[{index}]") for index, element in enumerate(value)]

    return check


def record(fields: dict[str, Check], *, optional: tuple[str, ...] = (),
           nullable: bool = False) -> Check:
    """An object with the given fields (all required but `optional`); other keys dropped."""

    def check(value: Any, path: str) -> Any:
        if value is None and nullable:
            return None
        if not isinstance(value, dict):
            raise InvalidProbeOutput(f"{path}: expected an object, got {type(value).__name__}")
        cleaned = {}
        for key, field_check in fields.items():
            if key not in value:
                if key in optional:
                    continue
                raise InvalidProbeOutput(f"{path}.{key}: missing")
            cleaned[key] = field_check(value[key], f"{path}.{key}")
        return cleaned

    return check


def string_map(max_items: int, key_cap: int, value_cap: int) -> Check:
    """An object of str -> str (errors), values truncated, at most `max_items` entries."""

    def check(value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            raise InvalidProbeOutput(f"{path}: expected an object, got {type(value).__name__}")
        if len(value) > max_items:
            raise InvalidProbeOutput(f"{path}: {len(value)} entries, at most {max_items}")
        return {clean_text(key, key_cap): string(value_cap)(item,
                                                           f"{path}.{clean_text(key, 40)}")
                for key, item in value.items()}

    return check


def bounded_object(max_bytes: int) -> Check:
    """Any JSON object whose compact encoding is at most `max_bytes` (passed through)."""

    def check(value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            raise InvalidProbeOutput(f"{path}: expected an object, got {type(value).__name__}")
        try:
            size = len(json.dumps(value, separators=(",", ":"), allow_nan=False))
        except (ValueError, TypeError, RecursionError) as exc:
            raise InvalidProbeOutput(f"{path}: not plain JSON ({exc})") from None
        if size > max_bytes:
            raise InvalidProbeOutput(f"{path}: {size} bytes, at most {max_bytes}")
        return value

    return check


def pid_ticks(max_items: int = MAX_PROC_COUNTERS) -> Check:
    """{"<pid>": [starttime, ticks]}: digit keys, two u64 ints each, nothing else.

    Strict (a bad entry refuses the answer rather than being skipped): this map is sent back
    to the host next pass, so only what the probe itself writes may go through.
    """

    def check(value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            raise InvalidProbeOutput(f"{path}: expected an object, got {type(value).__name__}")
        if len(value) > max_items:
            raise InvalidProbeOutput(f"{path}: {len(value)} entries, at most {max_items}")
        for key, item in value.items():
            if not (0 < len(key) <= PID_DIGITS and key.isascii() and key.isdigit()):
                raise InvalidProbeOutput(f"{path}: a key is not a pid")
            if (type(item) is not list or len(item) != 2
                    or type(item[0]) is not int or type(item[1]) is not int
                    or not 0 <= item[0] <= MAX_COUNTER or not 0 <= item[1] <= MAX_COUNTER):
                raise InvalidProbeOutput(f"{path}.{key}: expected [starttime, ticks] integers")
        return value

    return check


def one_of(choices: tuple[str, ...]) -> Check:
    def check(value: Any, path: str) -> Any:
        if value not in choices or not isinstance(value, str):
            raise InvalidProbeOutput(f"{path}: expected one of {', '.join(choices)}")
        return value

    return check


def exact_string(cap: int, *, nullable: bool = False) -> Check:
    """A str of at most `cap` characters, refused (not cut) when longer: it is compared."""

    def check(value: Any, path: str) -> Any:
        if value is None and nullable:
            return None
        if not isinstance(value, str) or len(value) > cap:
            raise InvalidProbeOutput(f"{path}: expected a string of at most {cap} characters")
        return value

    return check


# --------------------------------------------------------------------------- sections

CPU_TIMES = record({key: number() for key in (
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")})

PROCESS = record({
    "pid": counter(),
    "user": string(64),
    "name": string(256),
    "cmdline": string(1024),
    # percent of one CPU, as top and psutil report it: above 100 for multi-threaded work
    "cpu_percent": number(0.0, 100.0 * MAX_ITEMS, nullable=True),
    "mem_percent": percent(nullable=True),
    "rss": counter(nullable=True),
})

SECTION_CHECKS: dict[str, Check] = {
    "system": record({
        "hostname": string(255),
        "os": string(64),
        "kernel": string(255, nullable=True),
        "arch": string(64, nullable=True),
        "boot_time": number(integer=True, nullable=True),
        "uptime_s": number(nullable=True),
        "python": string(32, nullable=True),
    }),
    "cpu": record({
        "count": number(1, MAX_ITEMS, integer=True),
        "times": CPU_TIMES,
        "per_core_times": array(CPU_TIMES),
        "load": array(number(), length=3, nullable=True),
        "percent": percent(nullable=True),
        "per_core": array(percent(nullable=True), nullable=True),
    }),
    "memory": record({
        "total": counter(), "available": counter(), "used": counter(), "percent": percent(),
        "buffers": counter(nullable=True), "cached": counter(nullable=True),
    }, optional=("buffers", "cached")),
    "swap": record({"total": counter(), "used": counter(), "percent": percent()}),
    "disks": array(record({
        "mount": string(4096), "device": string(4096), "fstype": string(64),
        "total": counter(), "used": counter(), "free": counter(),
        "percent": percent(nullable=True),
    })),
    "disk_io": array(record({
        "device": string(256), "read_bytes": counter(), "write_bytes": counter(),
        "reads": counter(), "writes": counter(), "busy_ms": counter(),
    })),
    "net": array(record({"iface": string(64)} | {key: counter() for key in (
        "rx_bytes", "tx_bytes", "rx_packets", "tx_packets",
        "rx_errors", "tx_errors", "rx_drops", "tx_drops")})),
    "processes": record({
        "count": counter(),
        "scanned": counter(nullable=True),
        "cpu_basis": one_of(CPU_BASES),
        "top_cpu": array(PROCESS, MAX_TOP),
        "top_mem": array(PROCESS, MAX_TOP),
        "counters": record({
            "uptime": number(), "boot_id": exact_string(64, nullable=True),
            "ticks": pid_ticks(),
        }, optional=("boot_id",)),
    }, optional=("scanned", "cpu_basis", "counters")),
    "users": array(record({
        "name": string(64), "tty": string(64, nullable=True),
        "from": string(256, nullable=True), "since": string(32, nullable=True),
    })),
}

OPTIONAL_CHECKS: dict[str, Check] = {
    "checks": bounded_object(CHECKS_MAX_BYTES),
    "timing": record({"cpu_s": number(), "wall_s": number()}),
}

ERRORS = string_map(MAX_ERRORS, key_cap=512, value_cap=1000)


def _explained(section: str, errors: dict[str, str]) -> bool:
    """A missing section is fine when its family (or the whole platform) failed."""
    return section in errors or "platform" in errors


def validate_probe_output(obj: Any) -> dict[str, Any]:
    """Check untrusted probe output; return a cleaned copy with only known keys.

    Raises InvalidProbeOutput with a reason naming the offending path.
    """
    if not isinstance(obj, dict):
        raise InvalidProbeOutput(f"top level: expected an object, got {type(obj).__name__}")
    version = obj.get("probe")
    if isinstance(version, bool) or version != PROBE_VERSION:
        # Only the type: the value is the host's text, and it would reach the log and the page.
        raise InvalidProbeOutput(f"probe: unsupported version (a {type(version).__name__})")
    errors = ERRORS(obj.get("errors", {}), "errors")
    cleaned: dict[str, Any] = {"probe": PROBE_VERSION}
    for section in SECTIONS:
        value = obj.get(section)
        if value is None:
            if not _explained(section, errors):
                raise InvalidProbeOutput(f"{section}: missing and not explained in errors")
            continue
        cleaned[section] = SECTION_CHECKS[section](value, section)
    for key, check in OPTIONAL_CHECKS.items():
        if obj.get(key) is not None:
            cleaned[key] = check(obj[key], key)
    cleaned["errors"] = errors
    return cleaned
