"""Each mount's recent use, kept between passes, and its forecast in every stored sample.

The fit (:mod:`collector.metrics.forecast`) needs hours of readings; reading hours of history
at every pass, for every reader (alert rules, the API, the pages, ``osmon status``), would
cost too much on a fleet.  So the pass keeps, per host, a small *trend state*: each mount's
points of the window (:data:`WINDOW_S`, thinned to one per :data:`STEP_S`), its size, and its
last fit.  At each pass, for each mount of a good sample, :func:`update`

* restarts the mount's points when its file system was resized or cleaned up (the reading
  starts a new regime, see :func:`forecast.current_regime`);
* adds the reading as a point when it falls in a new :data:`STEP_S` slot, drops points older
  than the window, and refits (the only costly step: once per slot and mount);
* projects the fit to the reading's time and stores the result as ``full_in_s`` in the
  sample's disk (seconds from the sample's reading; ``null``: no trustworthy forecast).

Slots are shifted by a per-host phase, so a fleet started at once does not refit every host
in the same pass.  The state goes back to the pass (:mod:`collector.store.disk_trend` writes
it, by the coordinator only) and only when it changed: about once per slot, not per pass.

Pure: the state, the disks and the reading's epoch come in; nothing reads a clock or a file.
A state file of the wrong shape (hand edit, damage, another version) is ignored: the mount's
forecast starts again, which costs 30 minutes of "no forecast", never a wrong one.  Most
passes fall in the slot of the newest point: they read the newest point, the size, the
cleanup threshold and the fit, and leave the other points as they are, so such a pass costs
the same whatever the window holds.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from typing import Any

from collector.metrics import forecast
from collector.metrics.forecast import Fit, Point
from collector.metrics.values import num

VERSION = 1
#: One point per slot of this length ...
STEP_S = 300.0
#: ... over this window: 72 points at most per mount.
WINDOW_S = 6 * 3600.0
#: A host's mounts followed at most (a hostile host must not make the pass quadratic).
MAX_MOUNTS = 256
#: A reading older than the newest point by more than this means the clock went back.
CLOCK_SLACK_S = 5.0


def used_percent(disk: Mapping[str, Any]) -> float | None:
    """Use in percent from the byte counts (``used / (used + free)``, like ``df``), which a
    slow-filling big disk needs (the stored ``percent`` has one decimal: 10 GB on 10 TB);
    the stored percent when the bytes are missing."""
    used, free = num(disk.get("used")), num(disk.get("free"))
    if used is not None and free is not None and used >= 0 and free >= 0 and used + free > 0:
        return 100.0 * used / (used + free)
    return num(disk.get("percent"))


def phase_of(host: str) -> float:
    """The host's shift of the slot boundaries, in seconds (stable across passes)."""
    return float(zlib.crc32(host.encode("utf-8")) % int(STEP_S))


def _slot(t: float, phase: float) -> int:
    return math.floor((t + phase) / STEP_S)


def update(state: Any, disks: Any, epoch: float, host: str
           ) -> tuple[Any, dict[str, Any] | None]:
    """``(disks, new state)``: the sample's disks with ``full_in_s`` added, and the state to
    keep, or ``None`` when it did not change (nothing to write)."""
    if not isinstance(disks, list):
        return disks, None
    old, changed = _mounts(state)
    phase = phase_of(host)
    mounts: dict[str, dict[str, Any]] = {}
    out = []
    for disk in disks:
        if not isinstance(disk, dict):
            out.append(disk)
            continue
        mount, percent, total = disk.get("mount"), used_percent(disk), num(disk.get("total"))
        if (not isinstance(mount, str) or percent is None or total is None or mount in mounts
                or len(mounts) >= MAX_MOUNTS):
            out.append(dict(disk, full_in_s=None))
            continue
        entry, moved = _step(old.get(mount), Point(epoch, percent, total), phase)
        mounts[mount] = entry
        changed = changed or moved
        full_in = forecast.project(entry["fit"], epoch).full_in_s
        out.append(dict(disk, full_in_s=None if full_in is None else round(full_in)))
    for mount, entry in old.items():  # not in this sample: kept while its points are recent
        if mount in mounts:
            continue
        if entry["last"][0] >= epoch - WINDOW_S and len(mounts) < MAX_MOUNTS:
            mounts[mount] = entry
        else:
            changed = True
    if not changed:
        return out, None
    return out, {"version": VERSION, "mounts": {m: _dump(e) for m, e in mounts.items()}}


def _step(entry: dict[str, Any] | None, reading: Point, phase: float
          ) -> tuple[dict[str, Any], bool]:
    """One mount's entry after ``reading``, and whether it changed.

    In the slot of the newest point (most passes) this is constant time: the reading is
    compared with that point (a resize, a cleanup beyond the mount's ``drop``, the clock going
    back) and the kept fit serves.  A new slot refits over the points of the window."""
    if entry is None:
        return _entry([reading], None), True
    last_t, last_percent = entry["last"]
    if (forecast.resized(entry["total"], reading.total) or reading.t < last_t - CLOCK_SLACK_S
            or last_percent - reading.percent > entry["drop"]):
        return _entry([reading], None), True  # a new regime
    if reading.t <= last_t or _slot(reading.t, phase) == _slot(last_t, phase):
        return entry, False
    points = _points(entry)
    if points is None:  # damaged points: start again from this reading
        return _entry([reading], None), True
    start = reading.t - WINDOW_S
    window = [p for p in points if p.t >= start] + [reading]
    drop = forecast.cleanup_drop(window)
    regime = forecast.current_regime(window, drop)
    return _entry(regime, entry["fit"], drop if len(regime) == len(window) else None), True


def _entry(points: list[Point], previous: Fit | None,
           drop: float | None = None) -> dict[str, Any]:
    """An entry of ``points`` (in time order, one regime) and its fit; ``drop``: their
    cleanup threshold, if known."""
    trusted = previous is not None and previous.trusted
    stopped = previous is not None and previous.reason == forecast.STOPPED
    last = points[-1]
    return {"total": last.total, "raw": [[round(p.t, 1), round(p.percent, 5)] for p in points],
            "last": (last.t, last.percent),
            "drop": forecast.cleanup_drop(points) if drop is None else drop,
            "fit": forecast.fit_regime(points, trusted_before=trusted, stopped_before=stopped)}


def _points(entry: dict[str, Any]) -> list[Point] | None:
    """The entry's stored points, checked only now that they are needed (None: damaged)."""
    total, points = entry["total"], []
    for pair in entry["raw"]:
        if not isinstance(pair, list) or len(pair) != 2:
            return None
        t, percent = num(pair[0]), num(pair[1])
        if t is None or percent is None or (points and t < points[-1].t):
            return None
        points.append(Point(t, percent, total))
    return points


# -- the state as stored ---------------------------------------------------------------------------
def _dump(entry: dict[str, Any]) -> dict[str, Any]:
    fit: Fit = entry["fit"]
    return {"total": entry["total"], "points": entry["raw"], "drop": entry["drop"],
            "fit": {"slope": fit.slope, "level": fit.level, "at": fit.at, "recent": fit.recent,
                    "points": fit.points, "span_s": fit.span_s, "trusted": fit.trusted,
                    "reason": fit.reason}}


def _mounts(state: Any) -> tuple[dict[str, dict[str, Any]], bool]:
    """The stored mounts as entries, and whether anything had to be left out (the state is
    then written again)."""
    if not isinstance(state, Mapping) or state.get("version") != VERSION:
        return {}, True
    raw = state.get("mounts")
    if not isinstance(raw, Mapping):
        return {}, True
    mounts = {}
    for mount, value in list(raw.items())[:MAX_MOUNTS]:
        entry = _load(value)
        if isinstance(mount, str) and entry is not None:
            mounts[mount] = entry
    return mounts, len(mounts) != len(raw)


def _load(value: Any) -> dict[str, Any] | None:
    """An entry as stored; only what every pass reads is checked here (the newest point, the
    size, the fit), the other points when a refit needs them (:func:`_points`)."""
    if not isinstance(value, Mapping):
        return None
    raw, total, drop = value.get("points"), num(value.get("total")), num(value.get("drop"))
    fit = _load_fit(value.get("fit"))
    if not isinstance(raw, list) or not raw or total is None or drop is None or fit is None:
        return None
    last = raw[-1]
    if not isinstance(last, list) or len(last) != 2:
        return None
    t, percent = num(last[0]), num(last[1])
    if t is None or percent is None:
        return None
    return {"total": total, "raw": raw, "last": (t, percent), "drop": drop, "fit": fit}


def _load_fit(raw: Any) -> Fit | None:
    if not isinstance(raw, Mapping):
        return None
    slope, level, recent = (num(raw.get(k)) for k in ("slope", "level", "recent"))
    at, span, count = num(raw.get("at")), num(raw.get("span_s")), raw.get("points")
    trusted, reason = raw.get("trusted"), raw.get("reason")
    if (at is None or span is None or not isinstance(count, int) or isinstance(count, bool)
            or not isinstance(trusted, bool) or not isinstance(reason, str)
            or (trusted and (slope is None or level is None))):
        return None
    return Fit(slope, level, at, recent, count, span, trusted, reason)
