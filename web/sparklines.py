"""The overview's sparklines: each host's CPU and memory over the last hour, as inline SVG.

An administrator scanning 200 hosts reads a shape faster than a number.  The overview of
1,000 hosts must still render in 300 ms, so nothing here reads raw samples: the points are the
5-minute rollups' peaks (``collector.store.rollup``, the fleet number of the ``cpu`` and
``memory`` charts, as the fleet charts draw them), plus the host's newest sample, which the
overview has read anyway.  Each host's rollup file is read incrementally: between two closing
buckets a request costs two ``stat`` calls per host; when a bucket closes, only the new line is
read.  The drawing is cached per host until its data or the minute changes.

``static/app.js`` redraws the same SVG from ``last_hour`` of ``/api/overview`` (keep the
geometry of :func:`path` and its ``sparkPath`` in step).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape

from collector.metrics import series
from collector.store import rollup, rollup_line
from collector.store.samples import Store, tail_lines

WINDOW_S = 3600
RES = "5m"
BUCKET_S = rollup.RESOLUTIONS[RES]
#: Two points further apart than this are a gap (a host down, no rollup), not a line.
GAP_S = 2.5 * BUCKET_S
METRICS = ("cpu", "memory")
LABELS = {"cpu": "CPU", "memory": "memory"}
WIDTH, HEIGHT = 100, 24
#: The end of a rollup file holding an hour of 5-minute records (about 1 KiB each).
_TAIL_BYTES = 32 * 1024

Points = list[tuple[float, float | None]]
#: How each metric's one number is read from a sample (the fleet charts' number).
_SPECS = {metric: series.metric_spec(metric) for metric in METRICS}


@dataclass(frozen=True)
class Spark:
    """A host's last hour: ``points`` per metric (time, percent or None for a gap)."""

    points: Mapping[str, Points]
    label: str

    def as_dict(self) -> dict[str, Any]:
        return {**{m: [list(p) for p in self.points.get(m, [])] for m in METRICS},
                "label": self.label}


class _Entry:
    """What is known of one host's 5-minute rollups: the file read up to ``offset``."""

    def __init__(self) -> None:
        self.directory: Path | None = None
        self.dir_key: tuple[int, int, int] | None = None
        self.path: str | None = None
        self.file_key: tuple[int, int] | None = None
        self.offset = 0
        #: bucket start -> {metric: peak or None (a bucket of failed passes)}
        self.buckets: dict[float, dict[str, float | None]] = {}


class SparkCache:
    """Last-hour points and drawings of every host, kept between requests (thread-safe)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._entries: dict[str, _Entry] = {}
        self._drawn: dict[str, tuple[tuple[Any, ...], Spark, Markup]] = {}
        self._lock = threading.Lock()

    def get(self, host: str, newest: Mapping[str, Any] | None, now: float
            ) -> tuple[Spark, Markup]:
        """The host's last hour up to ``now`` (epoch seconds), and its SVG."""
        with self._lock:
            entry = self._entries.setdefault(host, _Entry())
            self._refresh(host, entry, now)
            key = (entry.path, entry.offset, newest.get("ts") if newest else None,
                   int(now // 60))
            drawn = self._drawn.get(host)
            if drawn is not None and drawn[0] == key:
                return drawn[1], drawn[2]
            spark = build(entry.buckets, newest, now)
            markup = svg(spark, now)
            self._drawn[host] = (key, spark, markup)
            return spark, markup

    # -- reading the rollups, incrementally ----------------------------------------------------
    def _refresh(self, host: str, entry: _Entry, now: float) -> None:
        try:
            if entry.directory is None:
                entry.directory = rollup.rollup_dir(self._store, host) / RES
            directory = entry.directory
            st = os.stat(directory)
        except (OSError, ValueError):  # no rollups yet (or an unsafe name): no points
            entry.buckets.clear()
            entry.path, entry.dir_key = None, None
            return
        dir_key = (st.st_mtime_ns, st.st_ino, st.st_dev)
        if dir_key != entry.dir_key:
            entry.dir_key = dir_key
            names = sorted(n for n in os.listdir(directory) if n.endswith(".jsonl"))
            newest = str(directory / names[-1]) if names else None
            if newest != entry.path:
                entry.path, entry.file_key, entry.offset = newest, None, 0
                entry.buckets.clear()
                if len(names) > 1:  # the hour may begin in yesterday's file
                    self._read_tail(entry, directory / names[-2], now)
        if entry.path is None:
            return
        try:
            st = os.stat(entry.path)
        except FileNotFoundError:
            entry.dir_key = None
            return
        file_key = (st.st_ino, st.st_dev)
        if file_key != entry.file_key or st.st_size < entry.offset:  # rewritten (rebuild)
            entry.file_key, entry.offset = file_key, 0
            self._read_tail(entry, Path(entry.path), now, keep=False)
            entry.offset = st.st_size
        elif st.st_size > entry.offset:
            with open(entry.path, "rb") as fh:
                fh.seek(entry.offset)
                data = fh.read(st.st_size - entry.offset)
            whole = data[:data.rfind(b"\n") + 1]  # a line being written waits for next time
            self._take(entry, whole.split(b"\n"))
            entry.offset += len(whole)
        cutoff = now - WINDOW_S - BUCKET_S
        for t in [t for t in entry.buckets if t < cutoff]:
            del entry.buckets[t]

    def _read_tail(self, entry: _Entry, path: Path, now: float, keep: bool = True) -> None:
        if not keep:
            entry.buckets.clear()
        try:
            lines, _cut = tail_lines(path, _TAIL_BYTES)
        except FileNotFoundError:
            return
        if lines and not lines[-1].endswith(b"}"):
            lines = lines[:-1]  # a torn or unfinished last line
        self._take(entry, lines, since=now - WINDOW_S - BUCKET_S)

    @staticmethod
    def _take(entry: _Entry, lines: list[bytes], since: float | None = None) -> None:
        for line in lines:
            parsed = _peaks(line)
            if parsed is not None and (since is None or parsed[0] >= since):
                entry.buckets[parsed[0]] = parsed[1]


def _peaks(line: bytes) -> tuple[float, dict[str, float | None]] | None:
    """(bucket start, {metric: peak}) of one rollup line.  Only its head and its small ``"c"``
    part (the fleet numbers) are decoded (:func:`rollup_line.fleet_numbers`): the whole
    record is about 1 KiB of every mount and interface, and 1,000 hosts' worth of those would
    cost the overview its budget."""
    read = rollup_line.fleet_numbers(line)
    t = series.ts_seconds(read[0]) if read is not None else None
    if read is None or t is None or not isinstance(read[2], dict):
        return None
    good, combined = read[1] > 0, read[2]  # n: good samples in the bucket; none is a gap
    peaks: dict[str, float | None] = {}
    for metric in METRICS:
        slot = combined.get(metric)
        ok = good and isinstance(slot, list) and len(slot) == 4
        peaks[metric] = float(slot[2]) if ok and isinstance(slot[2], (int, float)) else None
    return t, peaks


def build(buckets: Mapping[float, Mapping[str, float | None]], newest: Mapping[str, Any] | None,
          now: float) -> Spark:
    """Points of the last hour: each bucket's peak at its middle, then the newest sample."""
    start = now - WINDOW_S
    points: dict[str, Points] = {m: [] for m in METRICS}
    last_end = None
    for t in sorted(buckets):
        middle = t + BUCKET_S / 2
        if middle < start or middle > now:
            continue
        for metric in METRICS:
            points[metric].append((middle, buckets[t].get(metric)))
        last_end = t + BUCKET_S
    t_new = series.sample_time(newest) if newest else None
    if newest and t_new is not None and start <= t_new <= now and (
            last_end is None or t_new >= last_end):
        for metric in METRICS:
            values = _SPECS[metric].extract(newest) if newest.get("ok") is True else {}
            points[metric].append((t_new, _SPECS[metric].combine(values) if values else None))
    return Spark(points, _label(points))


def _label(points: Mapping[str, Points]) -> str:
    parts = []
    for metric in METRICS:
        values = [v for _t, v in points.get(metric, []) if v is not None]
        if values:
            low, high = min(values), max(values)
            span = f"{low:.0f} %" if round(low) == round(high) else f"{low:.0f}-{high:.0f} %"
            parts.append(f"{LABELS[metric]} {span}")
    return ("last hour: " + ", ".join(parts)) if parts else "no data in the last hour"


def path(points: Points, now: float) -> str:
    """The SVG path of one metric: 0-100 % over the hour ending at ``now``; gaps break it,
    a lone point is a short dash."""
    start = now - WINDOW_S
    x_scale, y_scale, bottom = WIDTH / WINDOW_S, (HEIGHT - 2) / 100, HEIGHT - 1
    pieces: list[list[str]] = []
    previous_t = None
    for t, value in points:
        if value is None:
            previous_t = None
            continue
        xy = f"{(t - start) * x_scale:.1f} {bottom - min(100.0, max(0.0, value)) * y_scale:.1f}"
        if previous_t is None or t - previous_t > GAP_S:
            pieces.append([])
        pieces[-1].append(xy)
        previous_t = t
    return " ".join(f"M{p[0]} " + (" ".join(f"L{xy}" for xy in p[1:]) if len(p) > 1 else "h2")
                    for p in pieces)


def svg(spark: Spark, now: float) -> Markup:
    """The inline SVG (no style attribute: the page's policy forbids them; app.css colours
    the lines)."""
    paths = "".join(
        f'<path class="spark-{metric}" d="{path(spark.points.get(metric, []), now)}"/>'
        for metric in METRICS)
    label = escape(spark.label)
    return Markup(f'<svg class="spark" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
                  f'height="{HEIGHT}" role="img" aria-label="{label}"><title>{label}</title>'
                  f"{paths}</svg>")
