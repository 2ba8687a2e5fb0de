"""What ``GET /metrics`` exposes: the fleet's newest samples as Prometheus series.

osmon is a multi-target exporter (like snmp_exporter): one process answers for many machines.
Every host's series carry ``instance="<host name>"`` (scrape with ``honor_labels: true``), the
collector's own series carry none, so Prometheus gives them the scraped target's ``instance``.

Three groups, in this order:

* **osmon's own, per host** (:data:`HOST_SERIES`): ``osmon_up``, the sample's age, the
  collection's duration, the error kind of a failed host, the host's tags, its active alerts;
* **the families'** (:attr:`collector.metrics.family.Family.exported`, in registry order):
  node_exporter's names where osmon has the same thing, read from a host's newest *good*
  sample.  A new family gets its series by declaring them; nothing here names a family;
* **the collector's** (:data:`COLLECTOR_SERIES`): its shard, hosts, and the last pass.

A host the dashboard calls stale (:func:`collector.views.health.is_stale`: no sample, or one
older than three intervals) shows only ``osmon_up 0`` and its sample age (plus its tags, which
come from the config, not the sample): its old values vanish, so Prometheus marks them stale
instead of repeating them.  Counters are the host's own cumulative counters, so ``rate()``
works and handles reboots as for node_exporter; no series carries a timestamp.

Everything here is pure (no file, no clock): :class:`Snapshot` holds what the dashboard read.
:class:`OsmonCollector` is the ``prometheus_client`` custom collector over it; the endpoint
renders the same series faster with :mod:`collector.views.exposition_render`, and the tests
hold the two to the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)

from collector import __version__
from collector.config import Host
from collector.metrics.family import COUNTER, GAUGE, INFO, Exported, Family, Point
from collector.metrics.registry import FAMILIES
from collector.metrics.values import num, section
from collector.times import parse_ts
from collector.views.health import is_stale, sample_age


@dataclass(frozen=True)
class Snapshot:
    """Everything the exposition is made of, read once per scrape by the caller."""

    now: datetime
    interval_s: float
    #: The hosts this collector watches (``Config.enabled_hosts``: its shard's).
    hosts: Sequence[Host]
    #: host name -> its newest stored sample (None: none yet).
    latest: Mapping[str, Mapping[str, Any] | None]
    #: Confirmed problems (``collector.alerts.state.active_alerts``).
    alerts: Sequence[Mapping[str, Any]] = ()
    #: The pass log's newest entry.
    last_pass: Mapping[str, Any] | None = None
    #: "K/N" when the collector is one shard of several, else "".
    shard: str = ""
    #: Enabled hosts of the whole inventory, every shard's.
    fleet_hosts: int = 0


class HostView(NamedTuple):
    """One host as the exposition sees it."""

    host: Host
    sample: Mapping[str, Any]
    age_s: float | None
    stale: bool
    alerts: tuple[Mapping[str, Any], ...]

    @property
    def good(self) -> bool:
        """Its family series are shown: a fresh, successful sample."""
        return not self.stale and self.sample.get("ok") is True


def host_views(snapshot: Snapshot) -> list[HostView]:
    by_host: dict[str, list[Mapping[str, Any]]] = {}
    for alert in snapshot.alerts:
        by_host.setdefault(str(alert.get("host")), []).append(alert)
    views = []
    for host in snapshot.hosts:
        sample = snapshot.latest.get(host.name) or {}
        age = sample_age(sample, snapshot.now) if sample else None
        views.append(HostView(host, sample, age, is_stale(age, snapshot.interval_s),
                              tuple(by_host.get(host.name, ()))))
    return views


# -- osmon's own series ---------------------------------------------------------------------------
def _up(view: HostView) -> Iterator[Point]:
    yield (), 1.0 if view.good else 0.0


def _age(view: HostView) -> Iterator[Point]:
    if view.age_s is not None:
        yield (), round(view.age_s, 3)


def _live(points: Callable[[HostView], Iterator[Point]]) -> Callable[[HostView], Iterator[Point]]:
    """Series a stale host does not show."""
    def live(view: HostView) -> Iterator[Point]:
        return iter(()) if view.stale else points(view)
    return live


def _duration(view: HostView) -> Iterator[Point]:
    seconds = num(section(view.sample, "collect").get("duration_s"))
    if seconds is not None:
        yield (), seconds


def _error_kind(view: HostView) -> Iterator[Point]:
    kind = section(view.sample, "error").get("kind")
    if view.sample.get("ok") is False:
        yield (kind if isinstance(kind, str) else "unknown",), 1.0


def _tags(view: HostView) -> Iterator[Point]:
    yield (",".join(sorted(view.host.tags)),), 1.0


def _alerts(view: HostView) -> Iterator[Point]:
    for alert in view.alerts:
        item = alert.get("item")
        yield (str(alert.get("metric") or ""), item if isinstance(item, str) else "",
               str(alert.get("level") or "")), 1.0


#: Per host, before the families' series.  ``points`` take a :class:`HostView`.
HOST_SERIES: tuple[Exported, ...] = (
    Exported("osmon_up", GAUGE, "1 when osmon's last pass reached the host and its sample is "
             "fresh, else 0.", _up),
    Exported("osmon_sample_age_seconds", GAUGE, "Seconds since the host's newest sample was "
             "taken.", _age),
    Exported("osmon_collect_duration_seconds", GAUGE, "How long the host's last collection "
             "took, connection included.", _live(_duration)),
    Exported("osmon_scrape_error_info", INFO, "Why the host's last collection failed "
             "(unreachable, timeout, auth, hostkey, probe, invalid-output).",
             _live(_error_kind), ("kind",)),
    Exported("osmon_host_info", INFO, "The host's tags in hosts.toml, sorted and joined by "
             "commas.", _tags, ("tags",)),
    Exported("osmon_alert_active", GAUGE, "1 for each confirmed osmon alert (metric, item, "
             "level) of the host.", _live(_alerts), ("metric", "item", "level")),
)


def _collector_info(snapshot: Snapshot) -> Iterator[Point]:
    yield (snapshot.shard, __version__), 1.0


def _count(get: Callable[[Snapshot], int]) -> Callable[[Snapshot], Iterator[Point]]:
    return lambda snapshot: iter((((), float(get(snapshot))),))


def _pass_field(key: str) -> Callable[[Snapshot], Iterator[Point]]:
    def points(snapshot: Snapshot) -> Iterator[Point]:
        entry = snapshot.last_pass or {}
        value = num(entry.get(key))
        if value is not None and not entry.get("skipped"):
            yield (), value
    return points


def _pass_time(snapshot: Snapshot) -> Iterator[Point]:
    ts = (snapshot.last_pass or {}).get("ts")
    try:
        yield (), parse_ts(ts).timestamp()
    except (TypeError, ValueError):
        return


def _pass_hosts(snapshot: Snapshot) -> Iterator[Point]:
    for result in ("ok", "failed"):
        yield from (((result,), value) for _, value in _pass_field(result)(snapshot))


def _pass_skipped(snapshot: Snapshot) -> Iterator[Point]:
    if snapshot.last_pass:
        yield (), 1.0 if snapshot.last_pass.get("skipped") else 0.0


#: The collector's own, without ``instance``.  ``points`` take the :class:`Snapshot`.
COLLECTOR_SERIES: tuple[Exported, ...] = (
    Exported("osmon_collector_info", INFO, "This osmon: its shard (\"K/N\", empty when it "
             "collects every host) and version.", _collector_info, ("shard", "version")),
    Exported("osmon_hosts", GAUGE, "Hosts this collector watches (its shard's).",
             _count(lambda s: len(s.hosts))),
    Exported("osmon_fleet_hosts", GAUGE, "Enabled hosts in hosts.toml, every shard's.",
             _count(lambda s: s.fleet_hosts)),
    Exported("osmon_last_pass_timestamp_seconds", GAUGE, "When the newest collection pass "
             "(or skipped pass) started, in unixtime.", _pass_time),
    Exported("osmon_last_pass_duration_seconds", GAUGE, "How long the newest collection pass "
             "took.", _pass_field("duration_s")),
    Exported("osmon_last_pass_hosts", GAUGE, "Hosts of the newest collection pass, by result.",
             _pass_hosts, ("result",)),
    Exported("osmon_last_pass_skipped", GAUGE, "1 when the newest pass was skipped (another "
             "pass, a backup or a restore held the data directory).", _pass_skipped),
)


def family_series(families: Iterable[Family] = FAMILIES) -> tuple[Exported, ...]:
    """Every family's exported series, in registry order."""
    return tuple(series for family in families for series in family.exported)


def unique(points: Iterable[Point]) -> Iterator[Point]:
    """The first value of each label set: a host that reports an interface twice must not make
    the exposition invalid for the whole fleet."""
    seen: set[tuple[str, ...]] = set()
    for labels, value in points:
        if labels not in seen:
            seen.add(labels)
            yield labels, value


def sample_points(series: Exported, view: HostView) -> Iterator[Point]:
    """A family series of one host: nothing unless its sample is fresh and good."""
    return unique(series.points(view.sample)) if view.good else iter(())


def new_family(series: Exported, label_names: Sequence[str]) -> Metric:
    """The ``prometheus_client`` metric family of a series (``_total`` and ``_info`` are the
    suffixes prometheus_client adds back to counter and info samples)."""
    if series.kind == COUNTER:
        return CounterMetricFamily(series.name, series.help, labels=label_names)
    if series.kind == INFO:
        return InfoMetricFamily(series.name.removesuffix("_info"), series.help,
                                labels=label_names)
    return GaugeMetricFamily(series.name, series.help, labels=label_names)


def add_point(family: Metric, series: Exported, labels: Sequence[str], value: float) -> None:
    if series.kind == INFO:
        family.add_metric(labels, {})  # type: ignore[attr-defined]
    else:
        family.add_metric(labels, value)  # type: ignore[attr-defined]


class OsmonCollector:
    """A ``prometheus_client`` custom collector over one :class:`Snapshot`.

    ``generate_latest(OsmonCollector(snapshot))`` is the reference exposition; families without
    a sample are left out."""

    def __init__(self, snapshot: Snapshot, families: Iterable[Family] = FAMILIES) -> None:
        self.snapshot = snapshot
        self.series = family_series(families)

    def collect(self) -> Iterator[Metric]:
        views = host_views(self.snapshot)
        for series in HOST_SERIES:
            yield from self._per_host(series, views, lambda s, v: unique(s.points(v)))
        for series in self.series:
            yield from self._per_host(series, views, sample_points)
        for series in COLLECTOR_SERIES:
            family = new_family(series, series.labels)
            for labels, value in series.points(self.snapshot):
                add_point(family, series, labels, value)
            if family.samples:
                yield family

    @staticmethod
    def _per_host(series: Exported, views: list[HostView],
                  points: Callable[[Exported, HostView], Iterator[Point]]) -> Iterator[Metric]:
        family = new_family(series, ("instance", *series.labels))
        for view in views:
            for labels, value in points(series, view):
                add_point(family, series, (view.host.name, *labels), value)
        if family.samples:
            yield family
