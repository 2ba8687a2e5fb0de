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
  absolute deviation), else there is no forecast (``None``) rather than a confident guess.  A
  trend once trusted stays trusted down to :data:`KEEP_SIGNAL` (a Schmitt trigger), so a disk
  near the bar does not flip between a forecast and none at every refit;
* **filling only**: no forecast when use is flat or shrinking, or the disk would take more
  than :data:`HORIZON_S` (a year) to fill;
* **filling now**: the projection starts from the last readings (the median of three) when
  they are off the line, above (a step up the line has not caught yet) or below it (a disk
  that slowed down or stopped, which the line would carry on up at the old pace, fuller at
  every pass for hours); and a disk has *stopped* (:func:`stopped`, "not filling") once its
  readings of the last :data:`RECENT_S` (an hour) did not rise (Theil-Sen slope <= 0) where
  the line expected a rise of more than :data:`MIN_SIGNAL` times their own noise, and sit
  below the line by more than :data:`KEEP_SIGNAL` times the disk's noise, in that hour and
  before it (so the noise of a disk still filling is not taken for a stop; the window's
  residuals would not do, as the knee of a stop inflates them).  It stays stopped, although
  the window's line holds the old growth for hours, until that hour rises beyond
  :data:`MIN_SIGNAL` times the larger of both noises.

Use is a percentage of what users can write (``used / (used + free)``, like ``df``), so
"full" is 100 %.  The fit (:func:`fit`, quadratic in the points) and the projection to a time
(:func:`project`, constant) are apart: a pass refits only when a point is added to the window,
and projects at every pass (:mod:`collector.metrics.disk_trend`).  Pure: points and ``now``
come in, nothing reads a clock or a file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

MIN_SPAN_S = 1800.0
MIN_POINTS = 5
#: Growth over the window, in robust standard deviations of the residuals, to be trusted ...
MIN_SIGNAL = 3.0
#: ... and to stay trusted once it was.
KEEP_SIGNAL = 1.5
#: Longer than this is "not filling" for every practical purpose.
HORIZON_S = 365 * 86400.0
#: A fall of use by more than this many points between two readings (and more than the
#: disk's jitter) is a cleanup.
CLEANUP_DROP = 2.0
#: A size change by more than this share is a resize.
RESIZE_SHARE = 0.005
#: At most this many points enter the fit (Theil-Sen is quadratic in them).
MAX_POINTS = 120
#: The readings of this last stretch say whether the disk is filling *now* ...
RECENT_S = 3600.0
#: ... once there are this many over at least half of it (one a 5-minute slot in a pass).
RECENT_POINTS = 4

FILLING = "filling"
STOPPED = "not filling any more"


def median(values: Iterable[float]) -> float:
    """The median (the mean of the two middle values of an even count), as
    ``statistics.median`` computes it; here because that module costs every ``osmon collect``
    several milliseconds to import."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    if not ordered:
        raise ValueError("no median of nothing")
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


class Point(NamedTuple):
    """One reading of a mount: epoch seconds, percent used, total size in bytes."""

    t: float
    percent: float
    total: float


@dataclass(frozen=True)
class Forecast:
    """``full_in_s`` from ``now`` (None: not filling, or no trustworthy fit); ``rate`` in
    percentage points per hour; ``points`` and ``span_s`` what the fit was made of."""

    full_in_s: float | None
    rate_per_h: float | None
    points: int
    span_s: float
    reason: str


@dataclass(frozen=True)
class Fit:
    """The trend of the current regime: the line (``slope`` in points per second, ``level``
    its value at ``at``), whether it is ``trusted``, and ``recent``, the median of the last
    three readings (where use stands, if the line has not caught up with a step yet)."""

    slope: float | None
    level: float | None
    at: float
    recent: float | None
    points: int
    span_s: float
    trusted: bool
    reason: str

    @property
    def rate_per_h(self) -> float | None:
        return None if self.slope is None else self.slope * 3600.0


def cleanup_drop(points: Sequence[Point]) -> float:
    """The fall of use between two readings that is a cleanup for this disk: more than
    :data:`CLEANUP_DROP` points and than what its own jitter explains (five times the median
    step), so noise is not a cleanup."""
    steps = [abs(b.percent - a.percent) for a, b in zip(points, points[1:])]
    return max(CLEANUP_DROP, 5.0 * median(steps)) if steps else CLEANUP_DROP


def current_regime(points: Sequence[Point], drop: float | None = None) -> list[Point]:
    """The points since the last resize or cleanup (a fall beyond ``drop``, by default
    :func:`cleanup_drop` of the points), oldest first."""
    drop = cleanup_drop(points) if drop is None else drop
    start = 0
    for i in range(1, len(points)):
        before, after = points[i - 1], points[i]
        if resized(before.total, after.total) or before.percent - after.percent > drop:
            start = i
    return list(points[start:])


def resized(before: float, after: float) -> bool:
    """Whether a file system's size moved by more than :data:`RESIZE_SHARE`."""
    return before > 0 and abs(after - before) > RESIZE_SHARE * before


def _thin(points: list[Point]) -> list[Point]:
    if len(points) <= MAX_POINTS:
        return points
    step = len(points) / MAX_POINTS
    kept = [points[int(i * step)] for i in range(MAX_POINTS)]
    return kept if kept[-1] is points[-1] else kept[:-1] + [points[-1]]


def theil_sen(points: Sequence[Point]) -> tuple[float, float]:
    """(slope per second, intercept) of percent over time, by Theil-Sen.

    Times are taken from the first point's, so the intercept is a percentage near the data
    (an epoch of 1.7e9 s would cost the line its precision)."""
    t0 = points[0].t
    ts = [p.t - t0 for p in points]
    ys = [p.percent for p in points]
    slopes = [(yb - ya) / (tb - ta)
              for i, (ta, ya) in enumerate(zip(ts, ys))
              for tb, yb in zip(ts[i + 1:], ys[i + 1:]) if tb > ta]
    slope = median(slopes)
    intercept = median(y - slope * t for t, y in zip(ts, ys))
    return slope, intercept - slope * t0


def fit(points: Sequence[Point], *, trusted_before: bool = False) -> Fit:
    """The trend of a mount from its readings of the window (any order).

    ``trusted_before``: the previous fit of this mount was trusted, so the lower bar
    :data:`KEEP_SIGNAL` applies."""
    return fit_regime(current_regime(sorted(points, key=lambda p: p.t)),
                      trusted_before=trusted_before)


def fit_regime(regime: list[Point], *, trusted_before: bool = False,
               stopped_before: bool = False) -> Fit:
    """:func:`fit` of points already in time order and of one regime (the pass's own
    window, :mod:`collector.metrics.disk_trend`, which cuts the regime as it goes);
    ``stopped_before``: the previous fit found the disk had stopped filling (:func:`stopped`)."""
    regime = _thin(regime)
    span = regime[-1].t - regime[0].t if regime else 0.0
    at = regime[-1].t if regime else 0.0
    recent = median(p.percent for p in regime[-3:]) if regime else None
    if len(regime) < MIN_POINTS or span < MIN_SPAN_S:
        return Fit(None, None, at, recent, len(regime), span, False, "not enough data yet")
    slope, intercept = theil_sen(regime)
    level = intercept + slope * at
    if slope <= 0:
        return Fit(slope, level, at, recent, len(regime), span, False, "not filling")
    spread = _spread(regime, slope, intercept)
    if stopped_before and stopped(regime, level, slope, spread, before=True):
        return Fit(slope, level, at, recent, len(regime), span, False, STOPPED)
    bar = KEEP_SIGNAL if trusted_before else MIN_SIGNAL
    if slope * span < bar * spread:
        return Fit(slope, level, at, recent, len(regime), span, False,
                   "growth within the noise")
    if not stopped_before and stopped(regime, level, slope, spread):
        return Fit(slope, level, at, recent, len(regime), span, False, STOPPED)
    return Fit(slope, level, at, recent, len(regime), span, True, FILLING)


def stopped(regime: Sequence[Point], level: float, slope: float, spread: float, *,
            before: bool = False) -> bool:
    """Whether a disk whose line still climbs (``level`` at the newest reading, ``slope``,
    its residuals' robust spread ``spread``) has stopped filling, from its readings of the
    last :data:`RECENT_S` (at least half of it) and their own noise (robust spread around
    their Theil-Sen line): they did not rise (their slope <= 0) where the line says they
    should have risen by more than :data:`MIN_SIGNAL` times that noise (so that the rise
    could not hide in it), and the last three are below the line by more than
    :data:`KEEP_SIGNAL` times the disk's noise, in that hour and before it (``spread`` when
    there is too little before it).  Once stopped (``before``), a disk stays so until
    its recent readings rise by more than :data:`MIN_SIGNAL` times the larger of both
    noises: neither the noise of a flat disk nor the line bent by the old growth restarts
    it."""
    newest = regime[-1].t
    recent = [p for p in regime if p.t >= newest - RECENT_S]
    if len(recent) < RECENT_POINTS or newest - recent[0].t < RECENT_S / 2:
        return False
    recent_slope, noise = _line_noise(recent)
    stretch = newest - recent[0].t
    if before:
        return recent_slope * stretch <= MIN_SIGNAL * max(noise, spread)
    if recent_slope > 0 or slope * stretch <= MIN_SIGNAL * noise:
        return False
    # Below the line by more than the disk's noise: its noise before this hour as well as in
    # it (not the window's spread, which a rise that stopped inflates: a line through a
    # knee leaves large residuals however clear the stop).
    earlier = [p for p in regime if p.t < recent[0].t]
    below = level - median(p.percent for p in recent[-3:])
    earlier_noise = _line_noise(earlier)[1] if len(earlier) >= RECENT_POINTS else spread
    return below > KEEP_SIGNAL * max(noise, earlier_noise)


def _line_noise(points: Sequence[Point]) -> tuple[float, float]:
    """The Theil-Sen slope of ``points`` and their :func:`_spread` around that line."""
    slope, intercept = theil_sen(points)
    return slope, _spread(points, slope, intercept)


def _spread(points: Sequence[Point], slope: float, intercept: float) -> float:
    """The robust spread of ``points`` around a line: 1.4826 x the median absolute deviation
    of the residuals (the standard deviation, for normal noise)."""
    residuals = [p.percent - (intercept + slope * p.t) for p in points]
    center = median(residuals)
    return 1.4826 * median(abs(r - center) for r in residuals)


def project(trend: Fit, now: float) -> Forecast:
    """When the mount will be full, seen from ``now``, by the trend ``trend``."""
    rate = trend.rate_per_h
    if not trend.trusted or trend.slope is None or trend.level is None or trend.slope <= 0:
        return Forecast(None, rate, trend.points, trend.span_s, trend.reason)
    # Where use stands now: from the last readings (the median of three keeps one spike from
    # counting), whether above the line (a step up it has not caught yet) or below it (a
    # disk that slowed down or stopped: the line would carry it on up at the old pace).
    line = trend.level + trend.slope * (now - trend.at)
    if trend.recent is None:
        now_percent = line
    elif trend.recent >= trend.level:
        now_percent = max(line, trend.recent)
    else:
        now_percent = trend.recent + trend.slope * (now - trend.at)
    now_percent = min(100.0, now_percent)
    full_in = (100.0 - now_percent) / trend.slope
    if full_in > HORIZON_S:
        return Forecast(None, rate, trend.points, trend.span_s, "more than a year away")
    return Forecast(max(0.0, full_in), rate, trend.points, trend.span_s, FILLING)


def forecast(points: Sequence[Point], now: float, *, trusted_before: bool = False) -> Forecast:
    """When the mount will be full, from its readings of the window."""
    return project(fit(points, trusted_before=trusted_before), now)
