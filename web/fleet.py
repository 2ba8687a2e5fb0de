"""The dashboard's read side: what every page and API answer is built from.

Pages and the JSON API both go through one :class:`Fleet`, so the HTML and the JSON a script
reads can never disagree.  It holds the config, the store and the clock (injected, so tests
pin "now"), and it passes every collector-written message through the :class:`Redactor`.
Only hosts of the config are known: a name in a URL is looked up there, never used as a path.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import current_app
from markupsafe import Markup

from collector.alerts import certfr, muting_store
from collector.alerts import state as alert_store
from collector.alerts.muting import Muting, Silence
from collector.config import Config, Host, shard_of
from collector.metrics import series
from collector.redact import Redactor
from collector.store import passlog
from collector.store.samples import Store
from collector.times import format_ts, parse_ts
from collector.views import charts
from collector.views.exposition import Snapshot
from collector.views.exposition_render import ExpositionRenderer
from collector.views.health import (
    STATUSES,
    CollectorState,
    HostStatus,
    ShardInfo,
    check_label,
    collector_state,
    fleet_status,
    host_status,
    shard_info,
)
from web.sparklines import Spark, SparkCache


@dataclass(frozen=True)
class Overview:
    now: datetime
    collector: CollectorState
    hosts: list[HostStatus]
    tags: list[str]
    #: None unless this collector is one shard of several.
    shard: ShardInfo | None = None

    def as_dict(self, summary: Callable[[HostStatus], dict[str, Any]]) -> dict[str, Any]:
        counts = dict.fromkeys(STATUSES, 0)
        for host in self.hosts:
            counts[host.status] += 1
        # The newest sample of all: the fleet charts page reloads its charts when it moves.
        newest = max((h.ts for h in self.hosts if h.ts), default=None)
        return {"generated": format_ts(self.now), "collector": self.collector.as_dict(),
                "shard": self.shard.as_dict() if self.shard else None, "counts": counts,
                "silenced": sum(1 for h in self.hosts if h.silenced),
                "tags": self.tags, "newest": newest,
                "hosts": [summary(h) for h in self.hosts]}


#: The range a host page opens on once the host has that much data (see ``opening_range``).
OPENING_RANGE = "24h"


class Fleet:
    """Read-only access to config, samples, alerts and the collector's health."""

    def __init__(self, config: Config, clock: Callable[[], datetime]) -> None:
        self.config = config
        self.store = Store(config.settings.data_dir)
        self.clock = clock
        self.redact = Redactor(config)
        self._latest = LatestCache(self.store)
        self._sparks = SparkCache(self.store)
        #: Every host's chart colour, distinct within the config (disabled hosts keep theirs).
        self.colors = charts.assign_colors([h.name for h in config.hosts])
        self.shard = shard_info(config)
        self._exposition = ExpositionRenderer()

    @property
    def interval_s(self) -> int:
        return self.config.settings.interval_s

    def host(self, name: str) -> Host | None:
        """A host of the config that this collector watches (of its shard, if it is one)."""
        host = self.config.host(name)
        shard = self.config.settings.shard
        return None if host is None or (shard is not None and not shard.owns(name)) else host

    def unknown_host(self, name: str) -> str:
        """Why :meth:`host` found nothing, for the 404."""
        shard = self.config.settings.shard
        if shard is not None and self.config.host(name) is not None:
            return (f"host {name!r} belongs to shard {shard_of(name, shard.count)}/{shard.count}"
                    f"; this is shard {shard}")
        return f"no host named {name!r} in the config"

    def overview(self, tag: str | None = None) -> Overview:
        now = self.clock()
        hosts = self.config.enabled_hosts
        latest = {h.name: self._latest.get(h.name) for h in hosts}
        muting = self.muting()
        statuses = [self._clean(s) for s in fleet_status(
            self.config, latest, self.active_alerts(muting=muting), now, muting)]
        if tag:
            statuses = [s for s in statuses if tag in s.tags]
        tags = sorted({t for h in hosts for t in h.tags})
        return Overview(now, self.collector(now), statuses, tags, self.shard)

    def host_status(self, host: Host, sample: dict[str, Any] | None,
                    now: datetime) -> HostStatus:
        muting = self.muting()
        alerts = self.active_alerts(host.name, muting)
        silence = muting.host_silence(host.name, host.tags, now)
        return self._clean(host_status(host.name, sample, alerts, self.config.thresholds_for(host),
                                       now, self.interval_s, host.tags,
                                       silence.view() if silence is not None else None))

    def latest(self, name: str) -> dict[str, Any] | None:
        sample = self._latest.get(name)
        return self.clean_sample(sample) if sample else None

    def latest_good(self, name: str) -> dict[str, Any] | None:
        """The host's newest good sample (its newest, when that one is good)."""
        sample = self._latest.get(name)
        if not (sample and sample.get("ok") is True):
            sample = self._latest.good(name)
        return self.clean_sample(sample) if sample else None

    def sparklines(self, names: list[str], now: datetime) -> dict[str, tuple[Spark, Markup]]:
        """Each host's CPU and memory over the last hour, and its inline SVG (see
        :mod:`web.sparklines`: rollups and the newest sample, never the raw hour)."""
        t = now.timestamp()
        return {name: self._sparks.get(name, self._latest.get(name), t) for name in names}

    def opening_range(self, name: str, now: datetime) -> str:
        """The range a host page opens on: the smallest that holds all the host's data, up to
        the 24 h it opens on once there is more (a new install's charts would otherwise be a
        few dots at the right edge of a day).  The chart URLs keep 24 h as their default."""
        oldest = self.store.oldest_ts(name) if self.host(name) is not None else None
        if oldest is None:
            return OPENING_RANGE
        try:
            span = now - parse_ts(oldest)
        except ValueError:
            return OPENING_RANGE
        for range_name, length in charts.RANGES.items():
            if length >= span or range_name == OPENING_RANGE:
                return range_name
        return OPENING_RANGE

    def chart_checks(self, hosts: list[Host]) -> list[str]:
        """Checks of these hosts that get a chart (``check.<name>``): those whose newest result
        carries numbers (perfdata).  A check that prints only text would be an empty chart."""
        names: set[str] = set()
        for host in hosts:
            names.update(checks_with_numbers(self._latest.get(host.name)))
        return sorted(names)

    def newest(self, hosts: list[Host]) -> str | None:
        """``ts`` of the newest sample of these hosts (what the fleet charts are up to)."""
        stamps = [(self._latest.get(h.name) or {}).get("ts") for h in hosts]
        return max((t for t in stamps if isinstance(t, str)), default=None)

    def knows_check(self, hosts: list[Host], name: str) -> bool:
        """A ``check.<name>`` chart exists for a check configured for one of these hosts, or
        one that still appears in a host's newest sample (dropped from the config lately)."""
        if any(c.name == name for h in hosts for c in self.config.checks_for(h)):
            return True
        for host in hosts:
            checks = (self._latest.get(host.name) or {}).get("checks")
            if isinstance(checks, dict) and name in checks:
                return True
        return False

    def samples(self, name: str, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        return (self.clean_sample(s) for s in self.store.samples(name, start, end))

    def clean_sample(self, sample: dict[str, Any]) -> dict[str, Any]:
        """A stored sample with the collector's error message redacted (see Redactor)."""
        error = sample.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            sample = dict(sample, error=dict(error, message=self.redact(error["message"])))
        return sample

    def active_alerts(self, host: str | None = None,
                      muting: Muting | None = None) -> list[dict[str, Any]]:
        """Confirmed problems, worst first, each with ``silenced`` and ``ack`` (or None)."""
        alerts = [a for a in alert_store.active_alerts(self.config.state_dir)
                  if host is None or a.get("host") == host]
        muting = muting if muting is not None else self.muting()
        tags = {h.name: h.tags for h in self.config.hosts}
        return [self._clean_alert(a) for a in muting.annotate(alerts, tags, self.clock())]

    def muting(self) -> Muting:
        """The silences and acknowledgements as stored now (read per request: a change made
        by ``osmon silence`` shows at once)."""
        return muting_store.read(self.config.state_dir)[0]

    def silences(self, host: Host | None = None) -> list[Silence]:
        """Silences in force or to come, by start (those that cover ``host``, if given)."""
        current = self.muting().active(self.clock())
        return [s for s in current if host is None or s.covers_host(host.name, host.tags)]

    def alert_history(self, limit: int = 200, host: str | None = None) -> list[dict[str, Any]]:
        return [self._clean_alert(a)
                for a in alert_store.history(self.config.state_dir, limit=limit, host=host)]

    def certfr(self, limit: int = 50) -> list[dict[str, Any]]:
        return certfr.recent_alerts(self.config.state_dir, limit=limit)

    def exposition(self, openmetrics: bool = False) -> bytes:
        """``/metrics``: this collector's hosts from the cached newest samples (no scan of the
        store), its alerts and its last pass."""
        hosts = self.config.enabled_hosts
        shard = self.config.settings.shard
        snapshot = Snapshot(
            now=self.clock(), interval_s=self.interval_s, hosts=hosts,
            latest={h.name: self._latest.get(h.name) for h in hosts},
            alerts=alert_store.active_alerts(self.config.state_dir),
            last_pass=passlog.last_pass(self.config.state_dir),
            shard=str(shard) if shard is not None else "",
            fleet_hosts=len(self.config.fleet_hosts))
        return self._exposition.render(snapshot, openmetrics)

    def certfr_feed(self) -> dict[str, Any]:
        """Whether the feed is read, and how its last fetches went (see ``feed_status``)."""
        settings = self.config.certfr
        return {"enabled": settings.enabled, "interval_s": settings.interval_s,
                **certfr.feed_status(self.config.state_dir)}

    def collector(self, now: datetime) -> CollectorState:
        """When the collector last finished (or skipped) a pass: stale if long ago, or never;
        failing if that pass could not store its samples (the message redacted)."""
        state = collector_state(passlog.last_pass(self.config.state_dir), now, self.interval_s)
        return replace(state, problem=self.redact(state.problem))

    def _clean(self, status: HostStatus) -> HostStatus:
        return replace(status, error=self.redact(status.error),
                       reasons=tuple(self.redact(r) or "" for r in status.reasons))

    def _clean_alert(self, alert: dict[str, Any]) -> dict[str, Any]:
        if isinstance(alert.get("message"), str):
            alert = dict(alert, message=self.redact(alert["message"]))
        return alert


class LatestCache:
    """Each host's newest sample, read again only when its newest day file has changed (and
    its newest good one, for a host that is down: see :meth:`good`).

    The overview of 1,000 hosts must render in 300 ms; between two passes nothing changes, so
    two ``stat`` calls per host (its directory, then its newest day file) replace reading and
    decoding every file's end.  The directory is listed again only when its own mtime moves
    (a day file created, compressed or pruned).  Keys hold inode and device too, so a
    restored data directory is never mistaken for the old one.  Cached samples are shared:
    callers must not modify them.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        #: host -> (directory key, its two newest day files, newest last)
        self._listings: dict[str, tuple[tuple[int, int, int], tuple[str, ...]]] = {}
        self._entries: dict[str, tuple[tuple[Any, ...], dict[str, Any] | None]] = {}
        self._good: dict[str, tuple[tuple[Any, ...], dict[str, Any] | None]] = {}

    def _newest_files(self, host: str) -> tuple[str, ...]:
        try:
            st = os.stat(self._store.host_dir(host))
        except FileNotFoundError:
            self._listings.pop(host, None)
            return ()
        dir_key = (st.st_mtime_ns, st.st_ino, st.st_dev)
        listing = self._listings.get(host)
        if listing is not None and listing[0] == dir_key:
            return listing[1]
        newest = tuple(str(f.path) for f in self._store.day_files(host)[-2:])
        self._listings[host] = (dir_key, newest)
        return newest

    def good(self, host: str) -> dict[str, Any] | None:
        """The host's newest good sample (:meth:`Store.latest_good`, checked on read), searched
        for again only when one of the two day files it searches has changed.  A down host's
        page polls every few seconds, in every open tab; the search reads up to 8 MB or
        decompresses a whole day, and between two passes its answer cannot change."""
        try:
            key = tuple(_file_key(path) for path in self._newest_files(host))
        except FileNotFoundError:  # pruned or compressed just now: search without caching
            self._listings.pop(host, None)
            return self._store.latest_good(host)
        entry = self._good.get(host)
        if entry is not None and entry[0] == key:
            return entry[1]
        sample = self._store.latest_good(host) if key else None
        self._good[host] = (key, sample)
        return sample

    def get(self, host: str) -> dict[str, Any] | None:
        files = self._newest_files(host)
        path = files[-1] if files else None
        if path is None:
            self._entries.pop(host, None)
            return None
        try:
            key = _file_key(path)
        except FileNotFoundError:  # pruned just now: read without caching
            self._listings.pop(host, None)
            return self._store.latest(host)
        entry = self._entries.get(host)
        if entry is not None and entry[0] == key:
            return entry[1]
        sample = self._store.latest_in(host, Path(path))
        self._entries[host] = (key, sample)
        return sample


def _file_key(path: str) -> tuple[Any, ...]:
    """What changes when a file is appended to, replaced, compressed or restored."""
    st = os.stat(path)
    return (path, st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev)


def checks_list(sample: dict[str, Any] | None) -> list[dict[str, Any]]:
    """A sample's check results (a dict by name) as table rows: name, state label, output."""
    checks = sample.get("checks") if sample else None
    if not isinstance(checks, dict):
        return []
    rows = []
    for name, result in sorted(checks.items()):
        result = result if isinstance(result, dict) else {}
        output = result.get("output") if isinstance(result.get("output"), str) else ""
        rows.append({"name": str(name), "state": check_label(result.get("state")),
                     "output": output, "duration_s": result.get("duration_s")})
    return rows


def checks_with_numbers(sample: dict[str, Any] | None) -> list[str]:
    """Names of a sample's checks with at least one numeric perfdata value, sorted."""
    checks = sample.get("checks") if sample else None
    if not isinstance(checks, dict):
        return []
    names = []
    for name in sorted(n for n in checks if isinstance(n, str)):
        try:
            spec = series.metric_spec(series.CHECK_PREFIX + name)
        except ValueError:  # a name unsafe in a URL: no chart
            continue
        if spec.extract(sample):
            names.append(name)
    return names


def current_fleet() -> Fleet:
    """The :class:`Fleet` of the app serving this request (set up by ``create_app``)."""
    return current_app.extensions["osmon.fleet"]
