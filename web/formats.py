"""How numbers read on the dashboard; ``static/app.js`` formats live updates the same way.

Keep the two in step: a value must not change its look when the page refreshes it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from collector.views.health import format_age

DASH = "–"


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def percent(value: Any) -> str:
    v = _num(value)
    return DASH if v is None else f"{v:.1f} %"


def size(value: Any) -> str:
    """Bytes in base 1024 (memory, disks): "7.8 GiB"."""
    return _scaled(value, 1024, ("B", "KiB", "MiB", "GiB", "TiB", "PiB"))


def rate(value: Any) -> str:
    """Bytes per second in base 1000 (network): "1.2 MB/s"."""
    return _scaled(value, 1000, ("B/s", "kB/s", "MB/s", "GB/s", "TB/s"))


def number(value: Any) -> str:
    v = _num(value)
    return DASH if v is None else f"{v:.2f}"


def seconds(value: Any) -> str:
    """A short duration with its unit: "0.41 s" (how long a collection took)."""
    v = _num(value)
    return DASH if v is None else f"{v:.2f} s"


def integer(value: Any) -> str:
    v = _num(value)
    return DASH if v is None else str(int(v))


def ago(value: Any) -> str:
    return format_age(_num(value))


def when(value: Any) -> str:
    """"2026-11-21T22:41:00Z" -> "2026-11-21 22:41:00 UTC"."""
    if not isinstance(value, str) or not value:
        return DASH
    return value.replace("T", " ").replace("Z", " UTC")


def duration(value: Any) -> str:
    """Seconds as "3 d 4 h", "4 h 12 min" or "12 min" (uptime)."""
    v = _num(value)
    if v is None:
        return DASH
    minutes = int(v) // 60
    days, hours, mins = minutes // 1440, minutes // 60 % 24, minutes % 60
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {mins} min" if hours else f"{mins} min"


def items(value: Any) -> str:
    """A list (reasons, tags) as one line."""
    if not isinstance(value, list) or not value:
        return DASH
    return "; ".join(str(v) for v in value)


def reasons(value: Any) -> str:
    """Why a host has its status; an empty list means all is well."""
    return items(value) if value else "Nothing wrong right now."


def text(value: Any) -> str:
    if value is None or value == "":
        return DASH
    if isinstance(value, list):  # a command line as an argument list
        return " ".join(str(v) for v in value)
    return str(value)


def silence(value: Any) -> str:
    """The silence covering an alert: "until 2026-11-21 23:41:00 UTC by alice: kernel"."""
    if not isinstance(value, dict):
        return DASH
    return f"until {when(value.get('until'))} by {value.get('author')}: {value.get('reason')}"


def ack(value: Any) -> str:
    """An alert's acknowledgement: "bob, 2026-11-21 22:45:00 UTC: replacing the disk"."""
    if not isinstance(value, dict):
        return DASH
    return f"{value.get('author')}, {when(value.get('ts'))}: {value.get('reason')}"


def _scaled(value: Any, base: int, units: tuple[str, ...]) -> str:
    v = _num(value)
    if v is None:
        return DASH
    index = 0
    while abs(v) >= base and index < len(units) - 1:
        v /= base
        index += 1
    return f"{int(v)} {units[0]}" if index == 0 else f"{v:.1f} {units[index]}"


FILTERS: dict[str, Callable[[Any], str]] = {
    "percent": percent, "size": size, "rate": rate, "number": number, "integer": integer,
    "ago": ago, "when": when, "text": text, "duration": duration, "items": items,
    "reasons": reasons, "seconds": seconds, "silence": silence, "ack": ack,
}
