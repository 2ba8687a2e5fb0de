"""Is a host fine? One answer, shared by the dashboard, its JSON API and ``osmon status``.

A host is, from worst to best:

* ``down``: its newest sample is a failed collection (unreachable, timeout, auth, ...);
* ``critical`` / ``warning``: an active alert of that level, a check in that state, or a value
  over its threshold right now (alerts wait ``for`` passes before they fire; the dashboard
  shows "now", so a disk at 97 % is critical on the page before the e-mail goes out);
* ``stale``: no sample yet, or the newest one is older than three intervals: we do not know,
  and saying "ok" would hide a stopped collector or a host dropped from the passes;
* ``ok``.

A host under a silence of the whole host keeps its status (a silence says "do not mail", not
"all is well"), carries the silence in ``silenced``, and sorts after the hosts that need
someone: below every unsilenced problem, above the hosts that are ok.

Why stale wins over down/critical: an old failure says nothing about now.  Everything here is
a pure function of (samples, alerts, thresholds, now) so it is tested without a clock or Flask.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from collector.alerts.muting import Muting
from collector.config import Config, Level, Thresholds
from collector.metrics.family import Family
from collector.metrics.registry import CONFIGURABLE, SUMMARIZED
from collector.times import parse_ts

#: Status names in rising order of severity (the overview sorts worst first).
STATUSES = ("ok", "stale", "warning", "critical", "down")
SEVERITY = {name: rank for rank, name in enumerate(STATUSES)}
#: A host (or the collector) is stale after this many missed intervals.
STALE_AFTER_INTERVALS = 3
#: Nagios plugin states, as stored in ``sample["checks"][name]["state"]``.
CHECK_STATES = ("OK", "WARNING", "CRITICAL", "UNKNOWN")
_CHECK_LEVEL = {1: "warning", 2: "critical", 3: "warning"}


@dataclass(frozen=True)
class HostStatus:
    """What the overview shows for one host; ``None`` where the sample does not say.

    ``values`` holds each summarized family's headline number (CPU percent, the fullest disk),
    ``items`` what it is about (the mount), ``levels`` each judged family's worst level now.
    In JSON (:meth:`as_dict`) they are flat keys, one per family (``cpu``, ``disk``,
    ``disk_mount``), as the API has always given them.
    """

    name: str
    status: str
    reasons: tuple[str, ...]
    tags: tuple[str, ...]
    ts: str | None
    age_s: float | None
    values: Mapping[str, float | None]
    items: Mapping[str, str | None]
    alerts: int
    error: str | None
    levels: Mapping[str, str]
    #: The silence of the whole host in force now (``Silence.view()``), if any.
    silenced: Mapping[str, Any] | None = None
    #: Marks of headlines (``Summary.mark``): the fullest disk's "/var full in about 5 h".
    marks: Mapping[str, str] = field(default_factory=dict)
    #: When the host last answered (its newest good sample; None: never) and how long ago.
    #: ``ts`` and ``age_s`` are the newest line, a failed try included.
    seen_ts: str | None = None
    seen_age_s: float | None = None

    @property
    def severity(self) -> int:
        return SEVERITY[self.status]

    @property
    def rank(self) -> float:
        """Where the overview puts it, worst first: a silenced problem waits for nobody."""
        if self.silenced is not None and self.status != "ok":
            return 0.5  # between ok (0) and stale (1)
        return float(self.severity)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name, "status": self.status, "reasons": list(self.reasons),
            "tags": list(self.tags), "ts": self.ts, "age_s": self.age_s}
        for family in SUMMARIZED:
            assert family.summary is not None
            data[family.name] = self.values.get(family.name)
            if family.summary.item_field:
                data[family.summary.item_field] = self.items.get(family.name)
            if family.summary.mark_field:
                data[family.summary.mark_field] = self.marks.get(family.name)
        data.update(alerts=self.alerts, error=self.error, levels=dict(self.levels),
                    silenced=dict(self.silenced) if self.silenced is not None else None,
                    last_seen=self.seen_ts, last_seen_age_s=self.seen_age_s)
        return data


@dataclass(frozen=True)
class CollectorState:
    """When the collector last ran a pass (``ts`` None: never), whether that is too long ago,
    and whether that pass failed as a pass (``problem``: e.g. its samples could not be stored
    on a full disk) or came after one that was killed (``interrupted``: when that one began)."""

    ts: str | None
    age_s: float | None
    stale: bool
    problem: str | None = None
    interrupted: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ShardInfo:
    """Which shard this collector is, and how many hosts it and the other shards hold."""

    shard: str
    hosts: int
    other_hosts: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        return (f"shard {self.shard}: {self.hosts} host(s) here, {self.other_hosts} on the "
                f"other shards")


def shard_info(config: Config) -> ShardInfo | None:
    """None unless the collector is one shard of several (``[settings] shard``)."""
    shard = config.settings.shard
    if shard is None:
        return None
    here = len(config.enabled_hosts)
    return ShardInfo(str(shard), here, len(config.fleet_hosts) - here)


def is_stale(age_s: float | None, interval_s: float) -> bool:
    """The one definition of stale: no sample (or collector pass) at all, or one older than
    :data:`STALE_AFTER_INTERVALS` intervals.  The dashboard, ``osmon status`` and ``/metrics``
    (where a stale host shows only ``osmon_up 0`` and its age) all ask this."""
    return age_s is None or age_s > STALE_AFTER_INTERVALS * interval_s


def sample_age(sample: Mapping[str, Any] | None, now: datetime) -> float | None:
    ts = sample.get("ts") if sample else None
    if not isinstance(ts, str):
        return None
    try:
        return max(0.0, (now - parse_ts(ts)).total_seconds())
    except ValueError:
        return None


def last_seen(sample: Mapping[str, Any] | None) -> str | None:
    """``ts`` of the host's newest good sample: this one, or the ``last_ok`` a failure line
    carries (None: never answered, or a line older than ``last_ok``)."""
    if not sample:
        return None
    seen = sample.get("ts") if sample.get("ok") is True else sample.get("last_ok")
    return seen if isinstance(seen, str) else None


def format_age(seconds: float | None) -> str:
    """"42 s ago", "5 min ago", "3 h ago", "2 d ago"; "never" when there is no sample."""
    if seconds is None:
        return "never"
    s = int(seconds)
    if s < 120:
        return f"{s} s ago"
    if s < 7200:
        return f"{s // 60} min ago"
    if s < 172800:
        return f"{s // 3600} h ago"
    return f"{s // 86400} d ago"


def level_of(value: float | None, level: Level, lower_is_worse: bool = False) -> str:
    """"ok", "warning" or "critical" for one value against one metric's thresholds (under
    them, for a family where lower is worse)."""
    if value is None:
        return "ok"
    sign = -1.0 if lower_is_worse else 1.0
    if level.critical is not None and sign * value >= sign * level.critical:
        return "critical"
    if level.warning is not None and sign * value >= sign * level.warning:
        return "warning"
    return "ok"


def family_level(family: Family, sample: Mapping[str, Any], thresholds: Thresholds
                 ) -> tuple[str, str | None]:
    """A judged family's worst level now over its items (each may have its own levels), and
    why: "disk /var 97 %", "load 4.5 per core", "/var full in about 5 h" (the most urgent
    item of the worst level)."""
    spec = family.thresholds
    worst, finding, urgent = "ok", None, None
    if spec is None or not spec.configurable:
        return worst, finding
    sign = -1.0 if spec.lower_is_worse else 1.0
    for item, value, score, _detail in spec.judge(sample) or []:
        level = level_of(score, thresholds.for_metric(family.name, item), spec.lower_is_worse)
        if level == "ok" or SEVERITY[level] < SEVERITY[worst] or (
                level == worst and urgent is not None and sign * score <= urgent):
            continue
        worst, urgent = level, sign * score
        if spec.short is not None:
            finding = spec.short(item, value)
        else:
            unit = " per core" if spec.unit == "/core" else f" {spec.unit}".rstrip()
            label = family.name if item is None else f"{family.name} {item}"
            finding = f"{label} {value:.3g}{unit}"
    return worst, finding


def host_status(name: str, sample: Mapping[str, Any] | None, alerts: Iterable[Mapping[str, Any]],
                thresholds: Thresholds, now: datetime, interval_s: float,
                tags: Iterable[str] = (), silenced: Mapping[str, Any] | None = None
                ) -> HostStatus:
    """The status of one host from its newest sample, its active alerts (``silenced`` and
    ``ack`` of each, if given, are said in the reasons) and the silence of the whole host."""
    alerts = list(alerts)
    sample = sample or {}
    levels: dict[str, str] = {}
    findings: list[tuple[str, str]] = []
    said: dict[str, str] = {}
    for family in CONFIGURABLE:
        levels[family.name], finding = family_level(family, sample, thresholds)
        if finding:
            findings.append((levels[family.name], finding))
            said[family.name] = finding
    values: dict[str, float | None] = {}
    items: dict[str, str | None] = {}
    marks: dict[str, str] = {}
    for family in SUMMARIZED:
        assert family.summary is not None
        values[family.name], items[family.name] = family.summary.value(sample)
        mark = family.summary.mark
        if mark is not None and mark in said:
            marks[family.name] = said[mark]
    age = sample_age(sample, now) if sample else None
    seen = last_seen(sample)
    status, reasons, error = _decide(sample, age, alerts, findings, interval_s)
    if silenced is not None:
        until = str(silenced.get("until", "?")).replace("T", " ").replace("Z", " UTC")
        reasons.insert(0, f"silenced until {until} by {silenced.get('author')}: "
                          f"{silenced.get('reason')}")
    return HostStatus(
        name=name, status=status, reasons=tuple(reasons), tags=tuple(tags),
        ts=sample.get("ts") if isinstance(sample.get("ts"), str) else None, age_s=age,
        values=values, items=items, alerts=len(alerts), error=error, levels=levels,
        silenced=silenced, marks=marks, seen_ts=seen,
        seen_age_s=sample_age({"ts": seen}, now) if seen else None)


def fleet_status(config: Config, latest: Mapping[str, Mapping[str, Any] | None],
                 active_alerts: Iterable[Mapping[str, Any]], now: datetime,
                 muting: Muting | None = None) -> list[HostStatus]:
    """Every enabled host of the config, worst first (:attr:`HostStatus.rank`), then by name."""
    by_host: dict[str, list[Mapping[str, Any]]] = {}
    for alert in active_alerts:
        by_host.setdefault(str(alert.get("host")), []).append(alert)
    result = []
    for h in config.enabled_hosts:
        silence = muting.host_silence(h.name, h.tags, now) if muting is not None else None
        result.append(host_status(h.name, latest.get(h.name), by_host.get(h.name, ()),
                                  config.thresholds_for(h), now, config.settings.interval_s,
                                  h.tags, silence.view() if silence is not None else None))
    result.sort(key=lambda s: (-s.rank, s.name))
    return result


def collector_state(last_pass: Mapping[str, Any] | None, now: datetime,
                    interval_s: float) -> CollectorState:
    """Is the collector still running?  Stale once its last pass is three intervals old, or
    when no pass was ever recorded (cron not set up yet: the page says so).  Failing when its
    last pass recorded a ``problem`` (see :mod:`collector.store.passlog`)."""
    age = sample_age(last_pass, now)
    entry = last_pass or {}
    ts = entry.get("ts")
    stale = is_stale(age, interval_s)
    problem = entry.get("problem")
    interrupted = entry.get("after_interrupted")
    return CollectorState(ts=ts if isinstance(ts, str) else None, age_s=age, stale=stale,
                          problem=problem if isinstance(problem, str) and problem else None,
                          interrupted=interrupted if isinstance(interrupted, str) else None)


def check_label(state: Any) -> str:
    return CHECK_STATES[state] if isinstance(state, int) and 0 <= state < 4 else "UNKNOWN"


def failing_checks(sample: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """(name, state label) of every check of a sample that is not OK, worst first, then by
    name.  UNKNOWN counts: the check is broken, which an admin must hear about too."""
    rows = []
    for name, check in _dict(sample.get("checks") if sample else None).items():
        state = _dict(check).get("state")
        if state != 0 or isinstance(state, bool):
            rows.append((str(name), check_label(state)))
    rank = {"CRITICAL": 0, "WARNING": 1, "UNKNOWN": 2}
    return sorted(rows, key=lambda r: (rank.get(r[1], 2), r[0]))


def _decide(sample: Mapping[str, Any], age: float | None, alerts: list[Mapping[str, Any]],
            findings: list[tuple[str, str]], interval_s: float
            ) -> tuple[str, list[str], str | None]:
    error = _error_text(sample.get("error"))
    if not sample:
        return "stale", ["no data yet"], None
    if is_stale(age, interval_s):
        return "stale", [f"last sample {format_age(age)}"], error
    if sample.get("ok") is False:
        return "down", [error or "collection failed"], error
    findings = list(findings)
    for alert in alerts:
        level = "critical" if alert.get("level") == "critical" else "warning"
        findings.append((level, f"alert{_muted(alert)}: "
                                f"{alert.get('message') or alert.get('metric')}"))
    for check_name, check in sorted(_dict(sample.get("checks")).items()):
        state = _dict(check).get("state")
        level = _CHECK_LEVEL.get(state) if isinstance(state, int) else None
        if level:
            findings.append((level, f"check {check_name} {check_label(state)}"))
    status = "ok"
    for level, _text in findings:
        status = _worse(status, level)
    findings.sort(key=lambda f: -SEVERITY[f[0]])
    return status, [f"{level}: {text}" for level, text in findings], error


def _muted(alert: Mapping[str, Any]) -> str:
    """" (silenced)", " (acknowledged by bob)" or "": said beside an alert in the reasons."""
    if alert.get("silenced"):
        return " (silenced)"
    ack = alert.get("ack")
    return f" (acknowledged by {ack.get('author')})" if isinstance(ack, Mapping) else ""


def _worse(a: str, b: str) -> str:
    return a if SEVERITY[a] >= SEVERITY[b] else b


def _error_text(error: Any) -> str | None:
    if not isinstance(error, Mapping):
        return None
    kind, message = error.get("kind"), error.get("message")
    parts = [str(p) for p in (kind, message) if p]
    return ": ".join(parts) or None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []
