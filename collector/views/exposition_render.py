"""The text of ``GET /metrics``, fast enough for 1,000 hosts on every scrape.

``prometheus_client.generate_latest`` over :class:`collector.views.exposition.OsmonCollector`
is the reference, but it builds an object per value and formats each line through several
layers: about 10 microseconds a value, close to a second for the ~90,000 values of 1,000
hosts, where the goal is 300 ms.  This writer writes the same lines (the tests compare them
line for line, in both formats) with two shortcuts:

* each host's family series are written once per sample: the text of a host whose newest
  sample has not changed since the last scrape is reused (the dashboard's ``LatestCache``
  returns the very same sample object until the host's day file changes);
* each series of a host is kept as a template of its lines
  (``node_cpu_seconds_total{cpu="0",instance="web1",mode="user"} %r``...), so a new sample
  with the same label sets (the same cores, mounts, interfaces) only fills in numbers.

The headers (``# HELP``/``# TYPE``) come from prometheus_client itself.  Numbers are written
in Python's shortest round-trip form, where prometheus_client writes Go's exponent form for
large ones: Prometheus reads the same float from both.  Host-provided text (mount points,
interface names, check labels) is escaped as prometheus_client escapes label values; text
that UTF-8 cannot carry becomes ``?``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from prometheus_client.exposition import generate_latest as text_exposition
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_exposition

from collector.metrics.family import COUNTER, INFO, Exported, Family, Point
from collector.metrics.registry import FAMILIES
from collector.views.exposition import (
    COLLECTOR_SERIES,
    HOST_SERIES,
    HostView,
    Snapshot,
    family_series,
    host_views,
    new_family,
    unique,
)

_EOF = "# EOF\n"
#: Line starts remembered per series of osmon's own (a few per host).
_MAX_REMEMBERED = 100_000


def number(value: float) -> str:
    """A sample value: Python's shortest round-trip form ("8334774272.0", "1.5e-06"), which
    Prometheus parses to the same float.  (prometheus_client writes large numbers in Go's
    exponent form instead; only finite values reach here, as floats: see ``Exported``.)"""
    return repr(value)


def escape(value: str) -> str:
    """A label value as the exposition formats write it (backslash, newline, quote)."""
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


class _Layout:
    """How one series' lines are spelled: its sample name and label order."""

    def __init__(self, series: Exported, per_host: bool) -> None:
        names = (("instance",) if per_host else ()) + series.labels
        self.names = names
        #: prometheus_client writes labels sorted by name.
        self.order = tuple(sorted(range(len(names)), key=names.__getitem__))
        self.sample_name = series.name  # counters end in _total, infos in _info already
        self.info = series.kind == INFO
        self._prefixes: dict[tuple[str, ...], str] = {}
        if series.kind == COUNTER and not series.name.endswith("_total"):
            self.sample_name += "_total"

    def cached_prefix(self, values: tuple[str, ...]) -> str:
        """:meth:`prefix`, remembered: osmon's own series write the same lines every scrape."""
        prefix = self._prefixes.get(values)
        if prefix is None:
            prefix = self.prefix(values)
            if len(self._prefixes) >= _MAX_REMEMBERED:
                self._prefixes.clear()  # alerts come and go: never grow without bound
            self._prefixes[values] = prefix
        return prefix

    def prefix(self, values: Sequence[str]) -> str:
        if not self.names:
            return self.sample_name + " "
        pairs = ",".join(f'{self.names[i]}="{escape(values[i])}"' for i in self.order)
        return f"{self.sample_name}{{{pairs}}} "


def _headers(series: Exported, per_host: bool) -> tuple[str, str]:
    """The series' ``# HELP``/``# TYPE`` lines in the text and the OpenMetrics format, as
    prometheus_client writes them for an empty family."""
    labels = (("instance",) if per_host else ()) + series.labels
    family = new_family(series, labels)

    class One:
        @staticmethod
        def collect() -> Iterator[Any]:
            yield family

    text = text_exposition(One()).decode("utf-8")  # type: ignore[arg-type]
    openmetrics = openmetrics_exposition(One()).decode("utf-8")  # type: ignore[arg-type]
    return text, openmetrics.removesuffix(_EOF)


class _Spec:
    def __init__(self, series: Exported, per_host: bool) -> None:
        self.series = series
        self.layout = _Layout(series, per_host)
        self.text_header, self.openmetrics_header = _headers(series, per_host)


#: A host's series as it was last written: its label sets, and its lines as a template.
_Written = tuple[list[tuple[str, ...]], str]


class _HostCache:
    """One host's rendered family series, valid while its sample is the same object."""

    __slots__ = ("sample", "blocks", "series")

    def __init__(self) -> None:
        self.sample: Any = None
        #: The text of each family series.
        self.blocks: list[str] = []
        #: The layout of each family series, for the next sample to reuse.
        self.series: list[_Written] | None = None


class ExpositionRenderer:
    """Renders :class:`Snapshot` objects; keeps each host's text between scrapes."""

    def __init__(self, families: Iterable[Family] = FAMILIES) -> None:
        self._host_specs = [_Spec(s, True) for s in HOST_SERIES]
        self._family_specs = [_Spec(s, True) for s in family_series(families)]
        self._collector_specs = [_Spec(s, False) for s in COLLECTOR_SERIES]
        self._hosts: dict[str, _HostCache] = {}
        self._lock = threading.Lock()

    def render(self, snapshot: Snapshot, openmetrics: bool = False) -> bytes:
        views = host_views(snapshot)
        with self._lock:  # scrapes may overlap; the cache is shared
            blocks = [self._family_blocks(view) for view in views]
            known = {view.host.name for view in views}
            for name in [n for n in self._hosts if n not in known]:
                del self._hosts[name]  # a host dropped from the config (or the shard)
        out: list[str] = []
        for spec in self._host_specs:
            points = spec.series.points  # osmon's own series read a HostView
            lines = [self._line(spec, (view.host.name, *labels), value) for view in views
                     for labels, value in unique(points(view))]  # type: ignore[arg-type]
            self._emit(out, spec, lines, openmetrics)
        for index, spec in enumerate(self._family_specs):
            self._emit(out, spec, [host[index] for host in blocks if host[index]], openmetrics)
        for spec in self._collector_specs:
            points = spec.series.points  # the collector's series read the Snapshot
            lines = [self._line(spec, labels, value)
                     for labels, value in points(snapshot)]  # type: ignore[arg-type]
            self._emit(out, spec, lines, openmetrics)
        if openmetrics:
            out.append(_EOF)
        return "".join(out).encode("utf-8", "replace")

    @staticmethod
    def _emit(out: list[str], spec: _Spec, lines: list[str], openmetrics: bool) -> None:
        if lines:
            out.append(spec.openmetrics_header if openmetrics else spec.text_header)
            out.extend(lines)

    @staticmethod
    def _line(spec: _Spec, labels: Sequence[str], value: float) -> str:
        prefix = spec.layout.cached_prefix(tuple(labels))
        return f"{prefix}{number(1.0 if spec.layout.info else value)}\n"

    def _family_blocks(self, view: HostView) -> list[str]:
        """The host's text of each family series ("" where it has none)."""
        if not view.good:
            return [""] * len(self._family_specs)
        cache = self._hosts.get(view.host.name)
        if cache is None:
            cache = self._hosts[view.host.name] = _HostCache()
        if cache.sample is view.sample:
            return cache.blocks
        previous = cache.series or [None] * len(self._family_specs)
        blocks, series = [], []
        for spec, old in zip(self._family_specs, previous):
            points = [*spec.series.points(view.sample)]
            labels = [point[0] for point in points]
            if old is not None and old[0] == labels:
                # The usual case: the same cores, mounts and interfaces as the last sample
                # (so no label set repeats): only the numbers are new.
                template = old[1]
                values = [point[1] for point in points]
            else:
                labels, template, values = _layout_lines(spec.layout, view.host.name, points)
            if spec.layout.info:  # an info series says 1, whatever its points give
                values = [1.0] * len(values)
            blocks.append(template % tuple(values))  # %r: number() of each, in C
            series.append((labels, template))
        cache.sample, cache.series, cache.blocks = view.sample, series, blocks
        return blocks


def _layout_lines(layout: _Layout, instance: str, points: list[Point]
                  ) -> tuple[list[tuple[str, ...]], str, list[float]]:
    """A series' label sets, its lines as a %-template waiting for the values, and the values:
    the first of label sets a host repeats (a hostile or broken one) counts."""
    seen: set[tuple[str, ...]] = set()
    labels, lines, values = [], [], []
    for label_values, value in points:
        if label_values in seen:
            continue
        seen.add(label_values)
        labels.append(label_values)
        lines.append(layout.prefix((instance, *label_values)).replace("%", "%%") + "%r\n")
        values.append(value)
    return labels, "".join(lines), values
