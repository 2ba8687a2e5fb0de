"""Silences and acknowledgements as the rule engine sees them: plain values, no file, no clock.

A *silence* (a maintenance window) matches hosts by name or tag, optionally one metric and one
item (a mount, a check, a pressure resource), from ``start`` to ``end``.  While one matches an
alert, the alert is still evaluated, kept in the state and shown, but nothing is sent about it:
the engine records what it would have said in the history, marked with the silence's id.

An *acknowledgement* is an admin saying "I know" about one active alert: it holds for that
alert only (the one that started at ``since``) and stops its reminders until the alert
recovers or gets worse.

The post-pass hook reads both from the state directory (:mod:`collector.alerts.muting_store`)
and hands them to :func:`collector.alerts.rules.evaluate` as a :class:`Muting`, so the engine
stays a pure function of its inputs (docs/architecture.md, "Dependency rules").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from collector.times import format_ts, parse_ts

#: Alert levels a user may have been told about; an acknowledgement names the one it saw.
LEVELS = ("warning", "critical")


def alert_key(metric: str, item: str | None) -> str:
    """The key of an alert in a host's state: ``disk:/var``, ``cpu``, ``down``."""
    return metric if item is None else f"{metric}:{item}"


@dataclass(frozen=True)
class Silence:
    """One maintenance window.  Exactly one of ``host`` and ``tag`` is set; ``metric`` and
    ``item`` narrow it (``None``: every metric, every item)."""

    id: str
    host: str | None
    tag: str | None
    metric: str | None
    item: str | None
    start: datetime
    end: datetime
    author: str
    reason: str
    created: datetime

    def active(self, now: datetime) -> bool:
        return self.start <= now < self.end

    def covers_host(self, host: str, tags: Iterable[str]) -> bool:
        return host == self.host if self.host is not None else self.tag in tuple(tags)

    def covers(self, metric: str, item: str | None) -> bool:
        """For a host it covers: does it cover this alert?"""
        return (self.metric is None or self.metric == metric) and (
            self.item is None or self.item == item)

    @property
    def scope(self) -> str:
        """What it silences, in words: "db1", "hosts tagged web, disk /var"."""
        who = self.host if self.host is not None else f"hosts tagged {self.tag}"
        what = "" if self.metric is None else f", {self.metric}"
        return who + what + ("" if self.item is None else f" {self.item}")

    def view(self) -> dict[str, Any]:
        """What pages, ``osmon status`` and the API show of a silence covering something."""
        return {"id": self.id, "until": format_ts(self.end), "author": self.author,
                "reason": self.reason, "scope": self.scope}

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "host": self.host, "tag": self.tag, "metric": self.metric,
                "item": self.item, "start": format_ts(self.start), "end": format_ts(self.end),
                "author": self.author, "reason": self.reason,
                "created": format_ts(self.created)}

    @classmethod
    def from_dict(cls, raw: Any) -> Silence | None:
        """A stored silence, or ``None`` if it is malformed (a hand-edited file)."""
        if not isinstance(raw, Mapping):
            return None
        try:
            silence = cls(id=_text(raw["id"]), host=_text_or_none(raw.get("host")),
                          tag=_text_or_none(raw.get("tag")),
                          metric=_text_or_none(raw.get("metric")),
                          item=_text_or_none(raw.get("item")), start=parse_ts(raw["start"]),
                          end=parse_ts(raw["end"]), author=_text(raw["author"]),
                          reason=_text(raw["reason"]), created=parse_ts(raw["created"]))
        except (KeyError, TypeError, ValueError):
            return None
        if (silence.host is None) == (silence.tag is None) or not silence.id:
            return None
        if silence.item is not None and silence.metric is None:
            return None
        return silence


@dataclass(frozen=True)
class Ack:
    """An acknowledgement of the alert ``metric``/``item`` of ``host`` that began at ``since``
    and was at ``level`` when acknowledged."""

    id: str
    host: str
    metric: str
    item: str | None
    since: str
    level: str
    author: str
    reason: str
    ts: datetime

    @property
    def key(self) -> str:
        return alert_key(self.metric, self.item)

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "author": self.author, "ts": format_ts(self.ts),
                "reason": self.reason, "level": self.level}

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "host": self.host, "metric": self.metric, "item": self.item,
                "since": self.since, "level": self.level, "author": self.author,
                "reason": self.reason, "ts": format_ts(self.ts)}

    @classmethod
    def from_dict(cls, raw: Any) -> Ack | None:
        if not isinstance(raw, Mapping):
            return None
        try:
            ack = cls(id=_text(raw["id"]), host=_text(raw["host"]), metric=_text(raw["metric"]),
                      item=_text_or_none(raw.get("item")), since=_text(raw["since"]),
                      level=_text(raw["level"]), author=_text(raw["author"]),
                      reason=_text(raw["reason"]), ts=parse_ts(raw["ts"]))
            parse_ts(ack.since)
        except (KeyError, TypeError, ValueError):
            return None
        return ack if ack.id and ack.level in LEVELS else None


@dataclass(frozen=True)
class HostMuting:
    """The silences active now for one host, and its acknowledgements by alert key."""

    silences: tuple[Silence, ...] = ()
    acks: Mapping[str, Ack] = field(default_factory=dict)

    def silence(self, metric: str, item: str | None) -> Silence | None:
        """The silence that covers this alert (the one that lasts longest), if any."""
        found = [s for s in self.silences if s.covers(metric, item)]
        return max(found, key=lambda s: (s.end, s.id)) if found else None

    def ack(self, alert: Mapping[str, Any]) -> Ack | None:
        """The acknowledgement that holds for this alert: made for this very occurrence of it
        (same ``since``) and not ended by an escalation since (``ack_spent``)."""
        ack = self.acks.get(alert_key(alert["metric"], alert.get("item")))
        if ack is None or ack.since != alert.get("since") or ack.id == alert.get("ack_spent"):
            return None
        return ack


@dataclass(frozen=True)
class _Index:
    """Silences by host and by tag (with their place in the file), acknowledgements by host."""

    by_host: Mapping[str, list[tuple[int, Silence]]]
    by_tag: Mapping[str, list[tuple[int, Silence]]]
    acks: Mapping[str, Mapping[str, Ack]]


@dataclass(frozen=True)
class Muting:
    """Every silence and acknowledgement; what :func:`collector.alerts.rules.evaluate` is given.

    Read once per pass or page and asked about every host (and every alert row): the silences
    are indexed by host and tag on first use, so that costs the silences of that host, not
    hosts x silences (1,000 of each on the overview: bench/README.md)."""

    silences: tuple[Silence, ...] = ()
    acks: tuple[Ack, ...] = ()

    @cached_property
    def _index(self) -> _Index:
        by_host: dict[str, list[tuple[int, Silence]]] = {}
        by_tag: dict[str, list[tuple[int, Silence]]] = {}
        for place, silence in enumerate(self.silences):
            if silence.host is not None:
                by_host.setdefault(silence.host, []).append((place, silence))
            elif silence.tag is not None:
                by_tag.setdefault(silence.tag, []).append((place, silence))
        acks: dict[str, dict[str, Ack]] = {}
        for ack in self.acks:
            acks.setdefault(ack.host, {})[ack.key] = ack
        return _Index(by_host, by_tag, acks)

    def for_host(self, host: str, tags: Iterable[str], now: datetime) -> HostMuting:
        index = self._index
        found = list(index.by_host.get(host, ()))
        for tag in set(tags):
            found += index.by_tag.get(tag, ())
        silences = tuple(s for _place, s in sorted(found, key=lambda pair: pair[0])
                         if s.active(now))
        acks = index.acks.get(host, {})
        if not silences and not acks:
            return _NOTHING
        return HostMuting(silences, acks)

    def host_silence(self, host: str, tags: Iterable[str], now: datetime) -> Silence | None:
        """The silence of the whole host (every metric) active now, if any."""
        whole = [s for s in self.for_host(host, tags, now).silences if s.metric is None]
        return max(whole, key=lambda s: (s.end, s.id)) if whole else None

    def annotate(self, rows: Iterable[Mapping[str, Any]], tags: Mapping[str, Iterable[str]],
                 now: datetime) -> list[dict[str, Any]]:
        """Active alert rows (``host``, ``metric``, ``item``, ``since``...) with ``silenced``
        (the silence covering it now) and ``ack`` (its acknowledgement): ``None`` or a view."""
        out = []
        for row in rows:
            host = str(row.get("host"))
            mine = self.for_host(host, tags.get(host, ()), now)
            silence = mine.silence(row["metric"], row.get("item"))
            ack = mine.ack(row)
            out.append(dict(row, silenced=silence.view() if silence is not None else None,
                            ack=ack.view() if ack is not None else None))
        return out

    def active(self, now: datetime) -> tuple[Silence, ...]:
        """Silences in force or still to come (not yet over), by start."""
        return tuple(sorted((s for s in self.silences if s.end > now),
                            key=lambda s: (s.start, s.end, s.id)))


_NOTHING = HostMuting()


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("not a string")
    return value


def _text_or_none(value: Any) -> str | None:
    return None if value is None else _text(value)
