"""Chart rendering (pygal SVG), shared by the dashboard and ``osmon charts``.

Public API (the web layer relies on these exact names)::

    METRICS = ("cpu", "memory", "swap", "disk", "load", "net", ...)  # the registry's charts
    RANGES = {"1h": timedelta(hours=1), "6h": ..., "24h": ..., "7d": ..., "30d": ...}

    render_host_chart(store, host, metric, range_name, now, *, cache=None, color=None,
                      built=None) -> Chart
    render_combined_chart(store, hosts, metric, range_name, now, *, cache=None, built=None,
                          colors=None) -> Chart
    color_for(host) -> str
    assign_colors(hosts) -> dict[str, str]

``Chart`` is frozen: ``svg`` (bytes), ``etag`` (derived from the host(s), metric, range, the
newest sample of each host and the chart's time slot: equal etags mean equal bytes, so the
web layer can answer 304), ``newest`` (``ts`` of the newest sample, or None) and
``modified`` (epoch seconds when the drawing last changed: the newest sample, or the start
of the time slot when the window last moved; never after ``now``: the ``Last-Modified``).
An unknown metric or range raises ``ValueError``; an unknown or empty host renders a chart
saying "no data".  ``metric`` may also be ``check.<name>`` (one line per perfdata label).

How a chart is made:

* The window ends at the end of the display bucket holding ``now`` and spans the range.
  The source is the coarsest rollup that still gives about 300 buckets (1h, 6h: raw samples;
  24h, 7d: 5-minute rollups; 30d: 1-hour rollups), and it is bucketed to at most 400 points.
* Each point is the maximum of its bucket, so peaks survive; single-line metrics also show
  the bucket average (dashed) once a point covers several samples.
* Gaps are breaks in the line (``None``), never interpolated (see :mod:`collector.metrics.series`).
* Times are UTC: HH:MM labels up to 24 h, dd/mm beyond, six or seven of them.
* A host's colour comes from a stable hash of its name into an accessible palette, so the
  host has the same colour in every chart; the lines of one host's chart start with it.
  Twelve colours and a hash collide soon (two hosts of five share one a third of the time),
  so callers that know every host (the dashboard, ``osmon charts``) pass the colours of
  :func:`assign_colors`: each host its hash colour unless a host before it in the config took
  it, then the next free one; distinct for up to twelve hosts, stable while the config is.
* The drawn points and the time axis's place on the image are in the SVG as JSON metadata
  (:mod:`collector.views.chart_readout`), for the dashboard's hover readout.
* Everything from a host (mount points, interface names, check labels) reaches the SVG only
  as XML-escaped text; the SVG holds no script (pygal's JS tooltips would load from the
  internet, which monitoring servers rarely have) and no external URL.
"""

from __future__ import annotations

import hashlib
import math
import sys
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

import pygal
from pygal.style import Style

from collector.config import SAFE_NAME
from collector.metrics import series
from collector.store import rollup
from collector.store.built_rollups import BuiltRollups
from collector.store.samples import Store
from collector.views.chart_cache import ChartCache
from collector.views.chart_readout import readout_filter

# pygal appends to sys.meta_path a finder for its optional map plugins (unused here) that has
# no find_spec(): every later import in the process then raises an ImportWarning, an error
# under our tests and noise in the dashboard's log.  Take it out again.
sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "PluginImportFixer"]

METRICS: tuple[str, ...] = series.METRIC_NAMES
RANGES: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}

#: Okabe-Ito (minus its yellow, unreadable on white) and Paul Tol's darker muted colours:
#: distinguishable with the common colour-vision deficiencies.  Orange and teal are darkened
#: and sky blue (too close to blue once darkened) became brown, so that every line has at
#: least 3:1 contrast on white (WCAG 1.4.11).
PALETTE: tuple[str, ...] = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#B37800", "#8C564B",
                            "#332288", "#882255", "#117733", "#999933", "#338A7C", "#AA4499")

#: The average line beside a single line's maximum: a neutral grey (6:1 on white) that no
#: host has, so the legend's two squares differ and not only the dash on the plot.
AVERAGE_COLOR = "#57606A"

#: Prefer a rollup when it still gives this many buckets over the range (about 300).
MIN_POINTS = 280
#: At most this many points per line: pygal's cost grows with points (13 ms for 300).
MAX_POINTS = 400
#: A window fitted to a new host's data is at least this many points wide.
MIN_FIT_POINTS = 10
#: Above this many lines the legend would swallow the plot: it is left out.
MAX_LEGEND = 24
_RAW_STEP = 60
#: Part of every etag: a change of the drawing invalidates what browsers cached.
_RENDER_VERSION = "4"
_TICKS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 14400, 21600, 43200, 86400,
          172800, 432000, 604800)
_AXIS_TITLES = {series.PERCENT: "percent", series.LOAD: "load", series.RATE: "bytes/s",
                series.BYTES: "bytes", series.SECONDS: "seconds", series.NUMBER: "value"}


@dataclass(frozen=True)
class Chart:
    svg: bytes
    etag: str
    newest: str | None
    modified: float = 0.0


class _Drawn(NamedTuple):
    """One line as handed to pygal."""

    label: str
    points: list[tuple[float, float | None]]
    color: str
    dashed: bool = False


@dataclass(frozen=True)
class Window:
    """The time slot a chart covers, and how its data are read and bucketed."""

    range_name: str
    start: float
    end: float
    #: A rollup resolution ("5m", "1h"), or None for raw samples.
    res: str | None
    #: Seconds per drawn point.
    width: int
    #: The window starts at the host's first sample rather than a range ago (see fit_window).
    fitted: bool = False


def plan_window(range_name: str, now: datetime) -> Window:
    span = RANGES.get(range_name)
    if span is None:
        raise ValueError(f"unknown range {range_name!r}; use one of {', '.join(RANGES)}")
    seconds = int(span.total_seconds())
    res = next((name for name, secs in sorted(rollup.RESOLUTIONS.items(), key=lambda i: -i[1])
                if seconds / secs >= MIN_POINTS), None)
    source = rollup.RESOLUTIONS[res] if res else _RAW_STEP
    width = source * math.ceil(seconds / source / MAX_POINTS)
    end = (math.floor(now.timestamp() / width) + 1) * width
    return Window(range_name, float(end - seconds), float(end), res, width)


def fit_window(window: Window, oldest: str | None) -> Window:
    """The window cut to start at the host's first sample, when that is later than the
    range's start: a host collected for five minutes fills its chart instead of being a few
    dots at the right edge.  At least :data:`MIN_FIT_POINTS` points wide."""
    t = series.ts_seconds(oldest)
    if t is None or t <= window.start:
        return window
    first = math.floor(t / window.width) * window.width
    start = max(window.start, min(first, window.end - MIN_FIT_POINTS * window.width))
    return replace(window, start=float(start), fitted=True)


def color_for(host: str) -> str:
    """The host's colour: crc32 is stable across processes and Python versions (hash() is not)."""
    return PALETTE[_hash_index(host)]


def _hash_index(host: str) -> int:
    return zlib.crc32(host.encode("utf-8")) % len(PALETTE)


def assign_colors(hosts: Sequence[str]) -> dict[str, str]:
    """A colour per host, in order: its hash colour if still unused, else the nearest colour
    after it that is used least (so colours repeat only past twelve hosts)."""
    used = [0] * len(PALETTE)
    colors: dict[str, str] = {}
    for host in hosts:
        if host in colors:
            continue
        start = _hash_index(host)
        step = min(range(len(PALETTE)), key=lambda k: (used[(start + k) % len(PALETTE)], k))
        index = (start + step) % len(PALETTE)
        used[index] += 1
        colors[host] = PALETTE[index]
    return colors


# -- public rendering ----------------------------------------------------------------------------
def render_host_chart(store: Store, host: str, metric: str, range_name: str, now: datetime,
                      *, cache: ChartCache[Chart] | None = None, color: str | None = None,
                      built: BuiltRollups | None = None, fit: bool = False) -> Chart:
    """One host's chart of one metric: a line per series (mount, load average, direction).

    ``color`` is the host's colour (see :func:`assign_colors`), :func:`color_for` if None;
    ``built`` keeps the rollups the files lack, built from raw once for every chart; ``fit``
    starts the time axis at the host's first sample when the range reaches further back
    (:func:`fit_window`).
    """
    spec = series.metric_spec(metric)
    window = plan_window(range_name, now)
    latest = store.latest(host) if SAFE_NAME.match(host) else None
    newest = latest.get("ts") if latest is not None else None
    if fit and latest is not None:
        window = fit_window(window, store.oldest_ts(host))
    color = color if color in PALETTE else color_for(host)
    key = ("host", host, metric, range_name, newest, window.end, window.start, color)
    etag = _etag(key)
    cached = cache.get(key) if cache is not None else None
    if cached is not None:
        return cached
    lines: list[series.Line] = []
    step = float(window.width)
    if newest is not None:
        rows, step = rollup.chart_rows(store, host, spec, window.res, window.start, window.end,
                                       built=built)
        lines = series.downsample(rows, window.start, window.end, window.width, step)
    unit = (spec.unit_of(latest) if spec.unit_of and latest else None) or spec.unit
    first = PALETTE.index(color)
    colors = [PALETTE[(first + i) % len(PALETTE)] for i in range(max(1, len(lines)))]
    names = spec.legend
    # A point covers several samples: say so, and show the average beside the peak when
    # there is room (a single line).
    averaged = window.width > step or window.res is not None
    if len(lines) == 1 and averaged:
        label = names.get(lines[0].label, lines[0].label)
        drawn = [_Drawn(f"{label} max", lines[0].peak, colors[0]),
                 _Drawn("average", lines[0].mean, AVERAGE_COLOR, dashed=True)]
        how = "max and average"
    else:
        drawn = [_Drawn(names.get(line.label, line.label), line.peak, color)
                 for line, color in zip(lines, colors)]
        how = "max"
    svg = _draw(f"{host} · {spec.title}", unit, window, drawn, _how(window, how, averaged),
                etag)
    chart = Chart(svg, etag, newest, _modified(window, newest, now))
    if cache is not None:
        cache.put(key, chart)
    return chart


def render_combined_chart(store: Store, hosts: list[str], metric: str, range_name: str,
                          now: datetime, *, cache: ChartCache[Chart] | None = None,
                          colors: Mapping[str, str] | None = None,
                          built: BuiltRollups | None = None) -> Chart:
    """Every host of ``hosts`` as one line of its one number (worst disk, load1, rx + tx).

    ``colors`` maps hosts to colours (see :func:`assign_colors`); :func:`color_for` otherwise.
    """
    spec = series.metric_spec(metric)
    window = plan_window(range_name, now)
    latest = {h: (store.latest(h) if SAFE_NAME.match(h) else None) for h in hosts}
    markers = tuple((h, s.get("ts") if s else None) for h, s in latest.items())
    palette = {h: (colors or {}).get(h) or color_for(h) for h in latest}
    key = ("combined", markers, metric, range_name, window.end, tuple(palette.values()))
    etag = _etag(key)
    cached = cache.get(key) if cache is not None else None
    if cached is not None:
        return cached
    drawn: list[_Drawn] = []
    averaged = False
    for host, sample in latest.items():
        points: list[tuple[float, float | None]] = []
        if sample is not None:
            rows, step = rollup.chart_rows(store, host, spec, window.res, window.start,
                                           window.end, combined_label=host, built=built)
            lines = series.downsample(rows, window.start, window.end, window.width, step)
            points = lines[0].peak if lines else []
            averaged = averaged or window.width > step or window.res is not None
        label = host if any(v is not None for _, v in points) else f"{host} (no data)"
        drawn.append(_Drawn(label, points, palette[host]))
    unit = next((spec.unit_of(s) for s in latest.values() if spec.unit_of and s
                 and spec.unit_of(s)), None) or spec.unit
    newest = max((ts for _, ts in markers if ts), default=None)
    svg = _draw(f"All hosts · {spec.title}", unit, window, drawn, _how(window, "max", averaged),
                etag)
    chart = Chart(svg, etag, newest, _modified(window, newest, now))
    if cache is not None:
        cache.put(key, chart)
    return chart


# -- drawing -------------------------------------------------------------------------------------
def _etag(key: tuple[Any, ...]) -> str:
    return hashlib.sha256(repr((_RENDER_VERSION,) + key).encode("utf-8")).hexdigest()[:32]


def _modified(window: Window, newest: str | None, now: datetime) -> float:
    """When the drawing last changed: the newest sample, or the move of the window into the
    time slot holding ``now`` (a dead host's chart still moves); never in the future."""
    slot_start = window.end - window.width
    newest_t = series.ts_seconds(newest) or 0.0
    return min(max(newest_t, slot_start), now.timestamp())


def _how(window: Window, how: str, averaged: bool) -> str:
    since = (f"since {datetime.fromtimestamp(window.start, timezone.utc):%H:%M}"
             if window.fitted else f"last {window.range_name}")
    if not averaged:
        return f"{since}, UTC, one point per sample"
    return f"{since}, UTC, {how} per {_duration(window.width)}"


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} s"


def _ticks(window: Window) -> list[float]:
    span = window.end - window.start
    step = next((t for t in _TICKS if span / t <= 7), _TICKS[-1])
    first = math.ceil(window.start / step) * step
    return [float(t) for t in range(int(first), int(window.end) + 1, step)]


def _time_formatter(window: Window) -> Callable[[float], str]:
    fmt = "%H:%M" if window.end - window.start <= 86400 else "%d/%m"
    return lambda t: datetime.fromtimestamp(t, timezone.utc).strftime(fmt)


def _scaled(value: float, base: float, prefixes: Sequence[str], suffix: str) -> str:
    size, index = abs(value), 0
    while size >= base and index < len(prefixes) - 1:
        size /= base
        index += 1
    sign = "-" if value < 0 else ""
    return f"{sign}{size:.3g} {prefixes[index]}{suffix}"


def value_formatter(unit: str) -> Callable[[float], str]:
    """Axis and value text of a unit: bytes/s in base 1000, bytes in base 1024."""
    if unit == series.PERCENT:
        return lambda v: f"{v:.0f}%" if v == int(v) else f"{v:.1f}%"
    if unit == series.RATE:
        return lambda v: _scaled(v, 1000.0, ("", "k", "M", "G", "T"), "B/s")
    if unit == series.BYTES:
        return lambda v: _scaled(v, 1024.0, ("", "Ki", "Mi", "Gi", "Ti"), "B")
    if unit == series.SECONDS:
        return lambda v: f"{v:.3g} s"
    return lambda v: f"{v:.3g}"


def y_ticks(unit: str, values: Sequence[float]) -> list[float]:
    """About five round ticks from 0 (or below, for negative values) to above the largest.

    Round in the unit's own base: 256 MiB steps for bytes, 200 kB/s steps for rates, so the
    formatted labels read "512 MiB", not "488 MiB".
    """
    if unit == series.PERCENT and max(values, default=0.0) <= 100 and min(values,
                                                                         default=0.0) >= 0:
        return [0.0, 25.0, 50.0, 75.0, 100.0]
    low, high = min(0.0, min(values, default=0.0)), max(values, default=0.0)
    if high <= low:
        high = low + 1.0
    scale = 1.0
    if unit == series.BYTES:
        while (high - low) / scale >= 1024.0:
            scale *= 1024.0
    raw_step = (high - low) / 5 / scale
    magnitude = 10.0 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1.0, 2.0, 2.5, 5.0, 10.0)
                if m * magnitude >= raw_step) * scale
    first = math.floor(low / step)
    last = math.ceil(high / step)
    return [i * step for i in range(first, last + 1)]


def _lone_points_as_dashes(points: list[tuple[float, float | None]], width: float
                           ) -> list[tuple[float, float | None]]:
    """Give a point with no neighbour a short flat segment: pygal draws no line of one point
    (and we draw no dots), so a new host's first point on a 30-day chart would be invisible."""
    out: list[tuple[float, float | None]] = []
    for i, (t, value) in enumerate(points):
        out.append((t, value))
        alone = (value is not None and (i == 0 or points[i - 1][1] is None)
                 and (i == len(points) - 1 or points[i + 1][1] is None))
        if alone:
            out.append((t + width * 0.4, value))
    return out


def _strip_active_content(root: Any) -> Any:
    """Drop every <script> (pygal always writes its config script) and pygal's comments."""
    for parent in list(root.iter()):
        for child in list(parent):
            tag = child.tag if isinstance(child.tag, str) else ""
            if tag.rsplit("}", 1)[-1] == "script" or not isinstance(child.tag, str):
                parent.remove(child)
    return root


def _draw(title: str, unit: str, window: Window, drawn: list[_Drawn], subtitle: str,
          etag: str) -> bytes:
    style = Style(background="#ffffff", plot_background="#ffffff", foreground="#222222",
                  foreground_strong="#111111", foreground_subtle="#d0d0d0",
                  colors=tuple(d.color for d in drawn) or PALETTE[:1],
                  # Drawn 800 px wide, shown at 500 to 600: 13 px reads as 9 or 10.
                  font_family="sans-serif", title_font_size=16, label_font_size=13,
                  major_label_font_size=13, legend_font_size=13, tooltip_font_size=13,
                  guide_stroke_color="#e2e2e2", major_guide_stroke_color="#c8c8c8",
                  no_data_font_size=24, opacity="1", opacity_hover="1", transition="0s",
                  # pygal's ".reactive" rule sets every line's width and beats the per-series
                  # stroke_style: the width lives here.  800 px wide, shown at about half.
                  stroke_width="2.5", stroke_opacity="1", stroke_width_hover="2.5",
                  stroke_opacity_hover="1")
    values = [v for d in drawn for _, v in d.points if v is not None]
    x_ticks = _ticks(window) if values else []
    if values:
        ticks = y_ticks(unit, values)
        axes: dict[str, Any] = {
            "x_labels": x_ticks, "range": (ticks[0], ticks[-1]), "y_labels": ticks,
            "x_title": subtitle, "y_title": _AXIS_TITLES.get(unit, "value")}
    else:  # pygal would draw meaningless axes (and fails on labels it cannot place)
        axes = {"show_x_labels": False, "show_y_labels": False, "show_x_guides": False,
                "show_y_guides": False}
    chart = pygal.XY(
        style=style, width=800, height=320, js=[], title=title, show_dots=False,
        allow_interruptions=True,
        xrange=(window.start, window.end), x_value_formatter=_time_formatter(window),
        value_formatter=value_formatter(unit), show_legend=0 < len(drawn) <= MAX_LEGEND,
        legend_at_bottom=True, legend_at_bottom_columns=min(max(len(drawn), 1), 6),
        no_data_text=f"no data in the last {window.range_name}", show_minor_x_labels=True,
        margin=8, spacing=6, **axes)
    chart.add_xml_filter(_strip_active_content)
    chart.add_xml_filter(readout_filter(window.start, window.end, x_ticks, unit, window.width,
                                        [(d.label, d.color, d.points) for d in drawn]))
    for d in drawn:
        stroke = {"dasharray": "6,4"} if d.dashed else {}
        chart.add(d.label, _lone_points_as_dashes(d.points, window.width), stroke_style=stroke)
    svg = chart.render()
    # pygal names the chart with a random uuid (its CSS refers to it): use the etag instead,
    # so a chart is the same bytes however often it is rendered.
    return svg.replace(chart.uuid.encode("ascii"), etag.encode("ascii"))
