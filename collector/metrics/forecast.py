"""When will a disk be full?  A robust straight-line fit of a mount's use over the last hours.

A disk at 80 % that grows 2 % an hour matters more than one at 90 % that is flat; threshold
alerts see the first only when it is too late.  This is ``predict_linear()`` without anyone
writing a rule, with the care such a fit needs on real disks:

* **robust**: the slope is Theil-Sen's (the median of the slopes between every pair of
  points), so a single outlier (a temporary file of 10 GB that came and went) cannot tilt it;
* **the current regime only**: the fit restarts after the file system's size changed (a
  resize) and after a sudden drop of use (a cleanup), since what came before says nothing
  about the growth now;
* **enough data**: at least :data:`MIN_SPAN_S` (30 minutes) and :data:`MIN_POINTS` points;
* **trusted only when the trend stands out of the noise**: the growth over the window must be
  at least :data:`MIN_SIGNAL` times the residuals' robust spread (1.4826 x their median
  absolute deviation), else there is no forecast (``None``) rather than a confident guess;
* **filling only**: no forecast when use is flat or shrinking, or the disk would take more
  than :data:`HORIZON_S` (a year) to fill.

Use is a percentage of what users can write (``used / (used + free)``, like ``df``), so
"full" is 100 %.  Pure: points and ``now`` come in, nothing reads a clock or a file.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

MIN_SPAN_S = 1800.0
MIN_POINTS = 5
#: Growth over the window, in robust standard deviations of the residuals, to be trusted.
MIN_SIGNAL = 3.0
#: Longer than this is "not filling" for every practical purpose.
HORIZON_S = 365 * 86400.0
#: A fall of use by more than this many points between two readings (and more than the
#: disk's jitter) is a cleanup.
CLEANUP_DROP = 2.0
#: A size change by more than this share is a resize.
RESIZE_SHARE = 0.005
#: At most this many points enter the fit (Theil-Sen is quadratic in them).
MAX_POINTS = 120


class Point(NamedTuple):
    """One reading of a mount: epoch seconds, percent used, total size in bytes."""

    t: float
    percent: float
    total: float


@dataclass(frozen=True)
class Forecast:
    """``full_in_s`` from ``at`` (None: not filling, or no trustworthy fit); ``rate`` in
    percentage points per hour; ``points`` and ``span_s`` what the fit was made of."""

    full_in_s: float | None
    rate_per_h: float | None
    points: int
    span_s: float
    reason: str


def current_regime(points: Sequence[Point]) -> list[Point]:
    """The points since the last resize or cleanup, oldest first.

    A cleanup is a fall of use larger than :data:`CLEANUP_DROP` points and than what the
    disk's own jitter explains (five times the median step), so noise is not a cleanup."""
    steps = [abs(b.percent - a.percent) for a, b in zip(points, points[1:])]
    drop = max(CLEANUP_DROP, 5.0 * statistics.median(steps)) if steps else CLEANUP_DROP
    start = 0
    for i in range(1, len(points)):
        before, after = points[i - 1], points[i]
        resized = before.total > 0 and \
            abs(after.total - before.total) > RESIZE_SHARE * before.total
        if resized or before.percent - after.percent > drop:
            start = i
    return list(points[start:])


def _thin(points: list[Point]) -> list[Point]:
    if len(points) <= MAX_POINTS:
        return points
    step = len(points) / MAX_POINTS
    kept = [points[int(i * step)] for i in range(MAX_POINTS)]
    return kept if kept[-1] is points[-1] else kept[:-1] + [points[-1]]


def theil_sen(points: Sequence[Point]) -> tuple[float, float]:
    """(slope per second, intercept) of percent over time, by Theil-Sen."""
    slopes = [(b.percent - a.percent) / (b.t - a.t)
              for i, a in enumerate(points) for b in points[i + 1:] if b.t > a.t]
    slope = statistics.median(slopes)
    intercept = statistics.median(p.percent - slope * p.t for p in points)
    return slope, intercept


def forecast(points: Sequence[Point], now: float) -> Forecast:
    """When the mount will be full, from its readings of the window (oldest first)."""
    regime = _thin(current_regime(sorted(points, key=lambda p: p.t)))
    span = regime[-1].t - regime[0].t if regime else 0.0
    if len(regime) < MIN_POINTS or span < MIN_SPAN_S:
        return Forecast(None, None, len(regime), span, "not enough data yet")
    slope, intercept = theil_sen(regime)
    rate_per_h = slope * 3600.0
    if slope <= 0:
        return Forecast(None, rate_per_h, len(regime), span, "not filling")
    residuals = [p.percent - (intercept + slope * p.t) for p in regime]
    center = statistics.median(residuals)
    spread = 1.4826 * statistics.median(abs(r - center) for r in residuals)
    if slope * span < MIN_SIGNAL * spread:
        return Forecast(None, rate_per_h, len(regime), span, "growth within the noise")
    # Where use stands now: the line, unless the last readings are all above it (a step up
    # the line has not caught yet); the median of three keeps one spike from counting.
    recent = statistics.median(p.percent for p in regime[-3:])
    now_percent = min(100.0, max(intercept + slope * now, recent))
    full_in = (100.0 - now_percent) / slope
    if full_in > HORIZON_S:
        return Forecast(None, rate_per_h, len(regime), span, "more than a year away")
    return Forecast(max(0.0, full_in), rate_per_h, len(regime), span, "filling")
