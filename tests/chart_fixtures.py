"""Helpers of the chart tests: samples in the stored format, and reading a rendered SVG back.

Reading the SVG back (values from pixel positions, via the axis guides) lets the tests assert
what a person sees on the chart, not what the code meant to draw.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from collector.store.samples import Store, encode_line
from collector.times import format_ts

SVG_NS = "{http://www.w3.org/2000/svg}"
T0 = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)


def sample(moment: datetime, *, host: str = "web1", cpu: float = 10.0, memory: float = 40.0,
           swap: float = 0.0, disks: Iterable[tuple[str, float]] = (("/", 50.0),),
           net: Iterable[tuple[str, float | None, float | None]] = (("eth0", 1000.0, 2000.0),),
           load: tuple[float, float, float] = (0.1, 0.2, 0.3), ok: bool = True,
           checks: dict[str, Any] | None = None, pressure: float | None = 2.0
           ) -> dict[str, Any]:
    ts = format_ts(moment)
    if not ok:
        return {"v": 1, "ts": ts, "host": host, "ok": False,
                "error": {"kind": "timeout", "message": "no answer within 10 s (connect)"},
                "collect": {"transport": "ssh", "duration_s": 10.0}}
    out: dict[str, Any] = {
        "v": 1, "ts": ts, "host": host, "ok": True, "error": None,
        "cpu": {"count": 2, "percent": cpu, "per_core": [cpu, cpu], "load": list(load)},
        "memory": {"total": 8 << 30, "available": 4 << 30, "used": 4 << 30, "percent": memory},
        "swap": {"total": 2 << 30, "used": 0, "percent": swap},
        "disks": [{"mount": m, "device": "/dev/vda1", "fstype": "ext4", "total": 100,
                   "used": int(p), "free": 100 - int(p), "percent": p} for m, p in disks],
        "net": [{"iface": i, "rx_bytes": 1, "tx_bytes": 1, "rx_bps": rx, "tx_bps": tx}
                for i, rx, tx in net],
        "errors": {},
    }
    if checks is not None:
        out["checks"] = checks
    if pressure is not None:  # "some" at ``pressure`` percent, "full" at half of it
        def line(value: float) -> dict[str, float]:
            return {"avg10": value, "avg60": value, "avg300": value, "total": 1000}
        out["pressure"] = {"cpu": {"some": line(pressure)},
                           "memory": {"some": line(pressure), "full": line(pressure / 2)},
                           "io": {"some": line(pressure), "full": line(pressure / 2)}}
    return out


def every(start: datetime, count: int, step_s: int = 60) -> list[datetime]:
    return [start + timedelta(seconds=i * step_s) for i in range(count)]


def write_fast(store: Store, host: str, samples: Iterable[dict[str, Any]]) -> None:
    """Many samples at once, in the stored format (Store.append per line is slower)."""
    by_day: dict[str, list[bytes]] = {}
    for s in samples:
        by_day.setdefault(s["ts"][:10], []).append(encode_line(s))
    directory = store.host_dir(host)
    directory.mkdir(parents=True, exist_ok=True)
    for day, lines in by_day.items():
        with open(directory / f"{day}.jsonl", "ab") as fh:
            fh.write(b"".join(lines))


def parse_svg(svg: bytes) -> ET.Element:
    return ET.fromstring(svg)


def _cls(element: ET.Element) -> list[str]:
    return element.get("class", "").split()


def _find_class(root: ET.Element, name: str) -> list[ET.Element]:
    return [e for e in root.iter() if name in _cls(e)]


def y_axis(root: ET.Element) -> list[tuple[float, str]]:
    """(pixel y, label text) of every y-axis guide."""
    out = []
    for axis in _find_class(root, "axis"):
        if "y" not in _cls(axis):
            continue
        for guide in _find_class(axis, "guides"):
            path = guide.find(f"{SVG_NS}path")
            text = guide.find(f"{SVG_NS}text")
            if path is not None and text is not None:
                out.append((float(path.get("d", "").split()[1]), text.text or ""))
    return out


def x_labels(root: ET.Element) -> list[tuple[float, str]]:
    """(pixel x, label text) of every x-axis label."""
    out = []
    for axis in _find_class(root, "axis"):
        if "x" not in _cls(axis):
            continue
        for guide in _find_class(axis, "guides"):
            path = guide.find(f"{SVG_NS}path")
            text = guide.find(f"{SVG_NS}text")
            if path is not None and text is not None:
                out.append((float(path.get("d", "").split()[0][1:]), text.text or ""))
    return out


def legend(root: ET.Element) -> list[str]:
    """Series names in order, full text (pygal may shorten the visible one)."""
    names = []
    for group in _find_class(root, "legend"):
        title = group.find(f"{SVG_NS}title")
        text = group.find(f"{SVG_NS}text")
        chosen = title if title is not None else text
        names.append((chosen.text or "") if chosen is not None else "")
    return names


def runs(root: ET.Element, value_of_y: Any = None) -> list[list[list[tuple[float, float]]]]:
    """Per series: its unbroken pieces, each a list of (pixel x, value) points."""
    plot = next(e for e in root.iter() if _cls(e) == ["plot"])
    out = []
    for group in plot:
        if "series" not in _cls(group):
            continue
        pieces = []
        for path in group.iter(f"{SVG_NS}path"):
            numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", path.get("d", ""))]
            points = list(zip(numbers[0::2], numbers[1::2]))
            pieces.append([(x, value_of_y(y) if value_of_y else y) for x, y in points])
        out.append(pieces)
    return out


def percent_scale(root: ET.Element) -> Any:
    """Pixel y -> percent, from the 0% and 100% guides."""
    guides = {text: y for y, text in y_axis(root)}
    y0, y100 = guides["0%"], guides["100%"]
    return lambda y: (y0 - y) / (y0 - y100) * 100.0


def series_colors(root: ET.Element) -> dict[str, str]:
    """Legend name -> stroke colour, from pygal's CSS (``.color-N { ... stroke: #hex }``)."""
    css = "".join(e.text or "" for e in root.iter(f"{SVG_NS}style"))
    colors: dict[int, str] = {}
    for index, body in re.findall(r"\.color-(\d+)[^{]*\{([^}]*)\}", css):
        m = re.search(r"stroke:\s*(#[0-9A-Fa-f]{6})", body)
        if m and int(index) not in colors:
            colors[int(index)] = m.group(1).upper()
    return {name: colors[i] for i, name in enumerate(legend(root)) if i in colors}


def rollup_files(data_dir: Path, host: str) -> dict[str, bytes]:
    base = data_dir / "rollups" / host
    return {str(p.relative_to(base)): p.read_bytes() for p in sorted(base.rglob("*.jsonl"))}
