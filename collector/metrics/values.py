"""Reading numbers out of samples that may hold anything, and deriving rates from counters.

Stored samples were validated when they arrived, but a line read back may come from an older
version, a hand edit or damage; these helpers return ``None`` or an empty result for what is
not the expected type, never raise.  Shared by the family descriptors
(:mod:`collector.metrics.families`) for their chart lines, thresholds and derived values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from collector.metrics.family import Judged, Sample, Values

#: ``isinstance`` against these: a plain dict (what JSON gives) is recognised without the ABC
#: machinery of ``Mapping``, which costs most of the time of reading a value out of a sample.
OBJECT = (dict, Mapping)


def num(value: Any) -> float | None:
    """``value`` as a float when it is a finite real number (never a bool), else None."""
    kind = type(value)  # the common cases first: /metrics reads ~90 values a host
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is int:
        return float(value)  # finite, or OverflowError as below
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def section(sample: Any, key: str) -> Mapping[str, Any]:
    """``sample[key]`` when it is an object, else an empty one."""
    value = sample.get(key) if isinstance(sample, OBJECT) else None
    return value if isinstance(value, OBJECT) else {}


def items(sample: Any, key: str) -> list[Mapping[str, Any]]:
    """The objects of the list ``sample[key]`` (anything else skipped)."""
    value = sample.get(key) if isinstance(sample, OBJECT) else None
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, OBJECT)]


def at_path(sample: Any, path: str) -> Any:
    """The value at a dotted path ("processes.top"), None where the path breaks."""
    value = sample
    for key in path.split("."):
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


# -- families whose headline is one percentage of their section -----------------------------------
def percent_lines(key: str) -> Callable[[Sample], Values]:
    """Chart lines of a family with one ``percent`` field: one line named after it."""
    def lines(sample: Sample) -> Values:
        value = num(section(sample, key).get("percent"))
        return {key: value} if value is not None else {}
    return lines


def percent_judge(key: str) -> Callable[[Sample], list[Judged] | None]:
    def judge(sample: Sample) -> list[Judged] | None:
        value = num(section(sample, key).get("percent"))
        return None if value is None else [Judged(None, value, value)]
    return judge


def percent_value(key: str) -> Callable[[Sample], tuple[float | None, str | None]]:
    return lambda sample: (num(section(sample, key).get("percent")), None)


def highest(pairs: Iterable[tuple[str | None, float]]) -> tuple[float | None, str | None]:
    """The largest value of (item, value) pairs, as (value, item): a family's headline (the
    fullest mount); the first one wins a tie."""
    best: tuple[float | None, str | None] = (None, None)
    for item, value in pairs:
        if best[0] is None or value > best[0]:
            best = (value, item)
    return best


#: Hours until full at or beyond which a disk is "not filling" (the forecast's horizon).
NEVER_H = 365 * 24.0


def hours_text(hours: float) -> str:
    """A time in hours as people say it: "40 min", "1 h 20 min", "5 h", "3 d"; a year or
    more is "not filling"."""
    if hours >= NEVER_H:
        return "not filling"
    minutes = round(max(0.0, hours) * 60)
    if minutes < 1:
        return "under a minute"
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 120:
        return f"1 h {minutes - 60} min" if minutes > 60 else "1 h"
    if hours < 48:
        return f"{round(hours)} h"
    return f"{round(hours / 24)} d"


def only(label: str) -> Callable[[Values], float | None]:
    return lambda values: values.get(label)


def largest(values: Values) -> float | None:
    return max(values.values()) if values else None


# -- counters -------------------------------------------------------------------------------------
#: Beyond this the previous sample is too old to make a meaningful "current" rate (and a
#: counter could have wrapped unseen); the pass then asks for the in-probe interval.
MAX_INTERVAL_S = 900.0


def usable_interval(now_ts: float, prev_ts: float | None) -> float | None:
    """Seconds between two readings when a rate over them is meaningful, else None."""
    if prev_ts is None:
        return None
    seconds = now_ts - prev_ts
    return seconds if 0 < seconds <= MAX_INTERVAL_S else None


def rate(new: Any, old: Any, seconds: float | None) -> float | None:
    """Per-second rate of a counter; None when it went backwards or anything is missing."""
    new_value, old_value = num(new), num(old)
    if seconds is None or new_value is None or old_value is None or new_value < old_value:
        return None
    return round((new_value - old_value) / seconds, 1)


def counter_rates(key: str, rates: Mapping[str, str]
                  ) -> Callable[[Any, Any, float | None], list[dict[str, Any]]]:
    """A ``derive`` for lists of counters: each entry (matched to the previous one by ``key``)
    copied with rates added; ``rates`` maps output name -> counter, e.g.
    ``{"rx_bps": "rx_bytes"}``.  A counter that went backwards (reboot, wrap, driver reload)
    is a gap (``None``), never a negative rate or a spike."""
    def derive(entries: Any, prev_entries: Any, seconds: float | None) -> list[dict[str, Any]]:
        previous = {}
        if isinstance(prev_entries, list):
            previous = {item.get(key): item for item in prev_entries if isinstance(item, dict)}
        out = []
        for entry in entries:
            old = previous.get(entry.get(key)) if seconds is not None else None
            derived = dict(entry)
            for name, counter in rates.items():
                before = old.get(counter) if isinstance(old, Mapping) else None
                derived[name] = rate(entry.get(counter), before, seconds)
            out.append(derived)
        return out
    return derive
