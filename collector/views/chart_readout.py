"""What a chart's hover readout needs, written into the chart's own SVG.

Charts are ``<img>`` under a strict Content-Security-Policy, so no script runs inside them;
the dashboard's ``static/readout.js`` reads the SVG it already shows (from the browser's
cache) and finds in it one ``<metadata id="osmon-readout">`` element holding JSON:

``{"v": 1, "start", "end"}``
    the time window, epoch seconds;
``"x0", "x1"``
    where ``start`` and ``end`` fall on the image, in SVG units (pygal pads its plot, so
    this is measured on the time axis it drew: two of its guides and their known times);
``"top", "bottom", "width", "height"``
    the plot's vertical extent and the image's size;
``"unit", "bucket"``
    how values read (:data:`collector.metrics.series` units) and the seconds one point covers;
``"lines": [{"label", "color", "points": [[t, value or null], ...]}]``
    exactly the points drawn, so the readout and the line never disagree (the API's raw
    samples would not match a 30-day chart's 1-hour peaks, and would weigh megabytes).

Everything here is data: labels come from hosts, so the script shows them only as text, and
the JSON is XML-escaped text of the element (``json.dumps`` escapes every control character).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

ELEMENT_ID = "osmon-readout"
_TRANSLATE = re.compile(r"translate\(\s*([-\d.]+)[ ,]+([-\d.]+)\s*\)")
_GUIDE = re.compile(r"M\s*([-\d.]+)")


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _classes(element: Any) -> list[str]:
    return str(element.get("class") or "").split()


def _short(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.5g}")


def readout_filter(start: float, end: float, ticks: Sequence[float], unit: str, bucket: float,
                   lines: Sequence[tuple[str, str, Sequence[tuple[float, float | None]]]]
                   ) -> Callable[[Any], Any]:
    """A pygal XML filter adding the readout's metadata to the rendered chart.

    ``lines`` are (label, colour, points) as drawn.  Without a time axis to measure (a chart
    saying "no data") it adds nothing, and the page shows no readout."""

    def add(root: Any) -> Any:
        plot = next((e for e in root.iter() if "plot" in _classes(e)
                     and _local(e.tag) == "g"), None)
        if plot is None or len(ticks) < 2:
            return root
        offset = _TRANSLATE.search(str(plot.get("transform") or ""))
        axis = next((e for e in plot.iter() if {"axis", "x"} <= set(_classes(e))), None)
        box = next((e for e in plot if _local(e.tag) == "rect"), None)
        if offset is None or axis is None or box is None:
            return root
        guides = []
        for guide in (g for g in axis if "guides" in _classes(g)):
            path = next((p for p in guide if _local(p.tag) == "path"), None)
            found = _GUIDE.match(str(path.get("d") or "")) if path is not None else None
            if found:
                guides.append(float(found.group(1)))
        if len(guides) != len(ticks) or ticks[-1] == ticks[0]:
            return root
        dx, dy = float(offset.group(1)), float(offset.group(2))
        per_second = (guides[-1] - guides[0]) / (ticks[-1] - ticks[0])

        def x_of(t: float) -> float:
            return round(dx + guides[0] + (t - ticks[0]) * per_second, 2)

        data = {"v": 1, "start": start, "end": end, "x0": x_of(start), "x1": x_of(end),
                "top": dy, "bottom": round(dy + float(box.get("height") or 0), 2),
                "width": float(root.get("width") or 800),
                "height": float(root.get("height") or 320), "unit": unit, "bucket": bucket,
                "lines": [{"label": label, "color": color,
                           "points": [[t, _short(v)] for t, v in points]}
                          for label, color, points in lines]}
        try:
            text = json.dumps(data, separators=(",", ":"), allow_nan=False)
        except ValueError:  # a value JSON cannot hold: a chart without a readout
            return root
        namespace = _namespace(root)
        element = root.makeelement(f"{{{namespace}}}metadata" if namespace else "metadata",
                                   {"id": ELEMENT_ID})
        element.text = text
        root.insert(0, element)
        return root

    return add


def _namespace(root: Any) -> str:
    tag = root.tag if isinstance(root.tag, str) else ""
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""
