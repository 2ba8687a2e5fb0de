"""disk_full: when each mount will be full at its growth of the last hours, judged in hours.

The values are the disk family's ``disks[].full_in_s``, added by the pass from each mount's
trend (:mod:`collector.metrics.disk_trend`, :mod:`collector.metrics.forecast`); this family
owns no section of its own.  Lower is worse: a disk full in 3 hours is critical (under
``critical_h``, 4 by default), one full in 20 hours a warning (under ``warning_h``, 24).  A
mount with no forecast (not filling, or no trusted trend) is judged as a year away, so its
alert clears.  The hysteresis suits a time: a confirmed problem clears once the forecast is
half again beyond its threshold (36 h for a warning at 24 h) or the disk stops filling, so a
forecast wavering around 24 h does not mail every other pass.
"""

from __future__ import annotations

from datetime import timedelta

from collector.metrics.family import (
    HOURS,
    Family,
    Judged,
    Level,
    Sample,
    Summary,
    ThresholdSpec,
)
from collector.metrics.values import NEVER_H, hours_text, items, num
from collector.times import parse_ts

#: A problem clears once the forecast is this many percent beyond its threshold.
MARGIN_PERCENT = 50.0
#: "Around 14:20 UTC": the time a disk will be full is said to ten minutes, no finer.
ROUND_S = 600


def full_at_text(ts: object, full_in_s: float) -> str:
    """When a sample taken at ``ts`` says the disk will be full: "around 14:20 UTC",
    "around 03:10 UTC tomorrow", or with its date further ahead; "" if ``ts`` is no time."""
    try:
        taken = parse_ts(ts) if isinstance(ts, str) else None
    except ValueError:
        taken = None
    if taken is None:
        return ""
    seconds = round((taken.timestamp() + full_in_s) / ROUND_S) * ROUND_S
    full = taken + timedelta(seconds=seconds - taken.timestamp())
    days = (full.date() - taken.date()).days
    if days == 0:
        return f"around {full:%H:%M} UTC"
    if days == 1:
        return f"around {full:%H:%M} UTC tomorrow"
    return f"around {full:%Y-%m-%d %H:%M} UTC"


def hours_to_full(sample: Sample) -> list[Judged] | None:
    """Each mount's hours until full (a year, :data:`NEVER_H`, when it has no forecast); the
    detail says when, and the use now, for the messages."""
    if not isinstance(sample.get("disks"), list):
        return None
    judged = []
    for disk in items(sample, "disks"):
        mount, percent = disk.get("mount"), num(disk.get("percent"))
        if not isinstance(mount, str) or percent is None:
            continue
        seconds = num(disk.get("full_in_s"))
        hours = NEVER_H if seconds is None or seconds < 0 else min(NEVER_H, seconds / 3600.0)
        around = full_at_text(sample.get("ts"), seconds) if hours < NEVER_H and seconds else ""
        judged.append(Judged(mount, hours, hours, f"{around}; {percent:.1f} % used now"))
    return judged


def _parts(detail: str) -> tuple[str, str]:
    around, _, used = detail.partition("; ")
    return around, used


def says(hours: float, detail: str) -> str:
    """"will be full in about 5 h, around 14:20 UTC; 82.0 % used now"."""
    around, used = _parts(detail)
    if hours < 1 / 60:
        return f"is full or about to be; {used}".rstrip("; ")
    when = f", {around}" if around else ""
    return f"will be full in about {hours_text(hours)}{when}; {used}".rstrip("; ")


def clears(hours: float, detail: str) -> str:
    _around, used = _parts(detail)
    if hours >= NEVER_H:
        return f"is no longer filling up; {used}".rstrip("; ")
    return f"fills more slowly: full in about {hours_text(hours)}; {used}".rstrip("; ")


def short(item: str | None, hours: float) -> str:
    """"/var full in about 5 h": a reason of the host's status, the mark of its fullest disk."""
    return f"{item or 'a disk'} full in about {hours_text(hours)}"


def soonest(sample: Sample) -> tuple[float | None, str | None]:
    """The mount that will be full first, as (seconds until then, mount)."""
    best: tuple[float | None, str | None] = (None, None)
    for disk in items(sample, "disks"):
        seconds, mount = num(disk.get("full_in_s")), disk.get("mount")
        if seconds is not None and isinstance(mount, str) and (best[0] is None
                                                                or seconds < best[0]):
            best = (seconds, mount)
    return best


FAMILY = Family(
    name="disk_full",
    within="disks",
    doc="hours until each mount is full at the growth of its last hours (`disks[].full_in_s`); "
        "lower is worse",
    thresholds=ThresholdSpec(
        hours_to_full, Level(24, 4, 2), item_key="mounts", unit=HOURS, relative_margin=True,
        lower_is_worse=True, level_keys=("warning_h", "critical_h"), margin=MARGIN_PERCENT,
        item_label="mount", chart="disk", says=says, clears=clears, short=short,
        note="in hours; clears at 1.5 x its threshold or when the disk stops filling"),
    summary=Summary("Disk full in", soonest, format="duration", item_field="disk_full_mount"),
)
