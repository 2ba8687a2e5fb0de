"""What an admin types to silence or acknowledge, checked against the config before it counts.

Shared by ``osmon silence``, ``osmon ack`` and the dashboard, so both refuse the same things
with the same words.  Every problem is found at once and raised as one
:class:`~collector.errors.MutingError`; nothing is written unless all is well.  Pure: ``now``
and the time zone of times typed without one come in as arguments.

Metric names are the judged families of the registry plus the host rules (``down``,
``silent``, ``hostkey``); items are checked where the family knows them (pressure resources,
configured checks) and taken as typed where it cannot (a mount that may not exist yet).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

from collector.alerts.muting import LEVELS, Ack, Silence, alert_key
from collector.alerts.rules import HOST_RULES
from collector.alerts.wording import clean, label
from collector.config import Config, Host, shard_of
from collector.errors import MutingError
from collector.metrics.registry import BY_NAME, JUDGED

#: Every metric a silence or an acknowledgement may name.
METRICS: tuple[str, ...] = tuple(f.name for f in JUDGED) + HOST_RULES
#: A silence longer than this is a forgotten threshold change, not maintenance.
MAX_SILENCE = timedelta(days=366)
MAX_REASON = 500
MAX_AUTHOR = 64
_DURATION = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")


@dataclass(frozen=True)
class SilenceRequest:
    """A silence as typed: ``duration`` or ``until`` (not both), ``start`` optional (now)."""

    host: str | None = None
    tag: str | None = None
    metric: str | None = None
    item: str | None = None
    start: str | None = None
    duration: str | None = None
    until: str | None = None
    reason: str = ""


def parse_duration(text: str) -> timedelta:
    """``90m``, ``2h``, ``1h30m``, ``1d``, ``2w`` (and ``s``): positive, a unit on every number."""
    compact = text.strip().lower()
    if compact.startswith("-"):
        raise ValueError(f"a duration must be positive, like 2h or 30m: got {text!r}")
    parts = _DURATION.findall(compact)
    if not parts or _DURATION.sub("", compact).strip():
        raise ValueError(f"not a duration: {text!r} (write it like 2h, 30m, 1h30m or 1d)")
    total = timedelta(seconds=sum(int(n) * _UNITS[unit] for n, unit in parts))
    if total <= timedelta(0):
        raise ValueError(f"a duration must be positive, like 2h or 30m: got {text!r}")
    return total


def parse_time(text: str, now: datetime, zone: tzinfo | None) -> datetime:
    """``2026-11-30T06:00Z``, ``2026-11-30 06:00`` (in ``zone``), with an offset, or ``06:00``
    (the next such time in ``zone``).  ``zone`` ``None`` is the system's local time, daylight
    saving included (what ``date`` shows the admin).  Returned in UTC."""
    raw = text.strip()
    clock = _CLOCK.fullmatch(raw)
    if clock:
        hour, minute = int(clock.group(1)), int(clock.group(2))
        if hour > 23 or minute > 59:
            raise ValueError(f"not a time of day: {text!r}")
        local_now = now.astimezone(zone)
        if zone is None:
            local_now = local_now.replace(tzinfo=None)  # naive: local, resolved by _utc
        moment = local_now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if moment <= local_now:
            moment = (local_now + timedelta(days=1)).replace(hour=hour, minute=minute,
                                                             second=0, microsecond=0)
        return _utc(moment)
    if raw.endswith(("z", "Z")):
        raw = raw[:-1] + "+00:00"  # fromisoformat of Python 3.9 does not read "Z"
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"not a date and time: {text!r} (write it like 2026-11-30T06:00Z, "
                         "2026-11-30 06:00 or 06:00)") from None
    if moment.tzinfo is None and zone is not None:
        moment = moment.replace(tzinfo=zone)
    return _utc(moment)


def _utc(moment: datetime) -> datetime:
    """UTC, to the second; a naive ``moment`` is the system's local time."""
    return moment.astimezone(timezone.utc).replace(microsecond=0)


def check_reason(text: str | None) -> str:
    reason = " ".join("".join(ch if ch.isprintable() else " " for ch in text or "").split())
    if not reason:
        raise ValueError("a reason is required: say why, for whoever looks at it later")
    if len(reason) > MAX_REASON:
        raise ValueError(f"the reason is {len(reason)} characters long; at most {MAX_REASON}")
    return reason


def clean_author(text: str) -> str:
    return clean(text)[:MAX_AUTHOR] or "unknown"


def new_silence(config: Config, request: SilenceRequest, *, silence_id: str, author: str,
                now: datetime, zone: tzinfo | None) -> Silence:
    """A valid :class:`Silence` from ``request``, or :class:`MutingError` naming every problem."""
    problems: list[str] = []
    hosts = _target_hosts(config, request, problems)
    metric, item = _metric_and_item(config, hosts, request.metric, request.item, problems)
    start = end = now
    try:
        start = parse_time(request.start, now, zone) if request.start else now.replace(
            microsecond=0)
    except ValueError as exc:
        problems.append(f"start: {exc}")
    if (request.duration is None) == (request.until is None):
        problems.append("give either a duration (--for 2h) or an end (--until TIME)")
    else:
        try:
            end = (start + parse_duration(request.duration) if request.duration is not None
                   else parse_time(request.until or "", now, zone))
        except ValueError as exc:
            problems.append(f"{'duration' if request.duration is not None else 'end'}: {exc}")
        else:
            if end <= start:
                problems.append(f"the silence would end ({_show(end)}) before it starts "
                                f"({_show(start)})")
            elif end <= now:
                problems.append(f"the silence would be over already ({_show(end)})")
            elif end - start > MAX_SILENCE:
                problems.append(f"a silence lasts at most {MAX_SILENCE.days} days; change the "
                                "thresholds in hosts.toml for longer")
    reason = _reason(request.reason, problems)
    if problems:
        raise MutingError("the silence was not added: " + "; ".join(problems))
    return Silence(id=silence_id, host=request.host, tag=request.tag, metric=metric, item=item,
                   start=start, end=end, author=clean_author(author), reason=reason,
                   created=now.replace(microsecond=0))


def new_ack(config: Config, alert_state: Mapping[str, Any], host: str, metric: str,
            item: str | None, reason: str, *, ack_id: str, author: str,
            now: datetime) -> Ack:
    """An acknowledgement of the active alert ``metric``/``item`` of ``host``, or
    :class:`MutingError` (unknown host or metric, no such active alert, no reason)."""
    problems: list[str] = []
    known = config.host(host)
    if known is None:
        problems.append(_unknown_host(config, host))
    elif _elsewhere(config, known, problems):
        known = None
    metric_ok, item = _metric_and_item(config, [known] if known else [], metric, item, problems)
    reason = _reason(reason, problems)
    alert = None
    if not problems and metric_ok is not None:
        alerts = _host_alerts(alert_state, host)
        alert = alerts.get(alert_key(metric_ok, item))
        if alert is None or alert.get("level") not in LEVELS:
            active = sorted(label(a["metric"], a.get("item")) for a in alerts.values()
                            if a.get("level") in LEVELS)
            problems.append(f"{host} has no active {label(metric_ok, item)} alert to "
                            f"acknowledge (active now: {', '.join(active) or 'none'})")
    if problems or alert is None or metric_ok is None:
        raise MutingError("nothing was acknowledged: " + "; ".join(problems))
    return Ack(id=ack_id, host=host, metric=metric_ok, item=item, since=alert["since"],
               level=alert["level"], author=clean_author(author), reason=reason,
               ts=now.replace(microsecond=0))


def _host_alerts(alert_state: Mapping[str, Any], host: str) -> Mapping[str, Any]:
    hosts = alert_state.get("hosts") if isinstance(alert_state, Mapping) else None
    hs = hosts.get(host) if isinstance(hosts, Mapping) else None
    alerts = hs.get("alerts") if isinstance(hs, Mapping) else None
    return alerts if isinstance(alerts, Mapping) else {}


def _target_hosts(config: Config, request: SilenceRequest, problems: list[str]) -> list[Host]:
    if (request.host is None) == (request.tag is None):
        problems.append("give either a host (--host NAME) or a tag (--tag TAG)")
        return []
    if request.host is not None:
        host = config.host(request.host)
        if host is None:
            problems.append(_unknown_host(config, request.host))
            return []
        return [] if _elsewhere(config, host, problems) else [host]
    tagged = [h for h in config.hosts if request.tag in h.tags]
    if not tagged:
        tags = sorted({t for h in config.hosts for t in h.tags})
        problems.append(f"no host has the tag {request.tag!r} in {config.path}"
                        + _suggest(request.tag or "", tags, "tags"))
    return tagged


def _elsewhere(config: Config, host: Host, problems: list[str]) -> bool:
    """On one shard of several, a host another shard watches: a silence or an ack here would
    be accepted and do nothing while that shard keeps mailing (a tag silence is fine: it
    covers this shard's hosts of the tag)."""
    shard = config.settings.shard
    if shard is None or shard.owns(host.name):
        return False
    owner = f"{shard_of(host.name, shard.count)}/{shard.count}"
    problems.append(f"{host.name} belongs to shard {owner}, not to this one ({shard}): run this "
                    f"on the box of shard {owner} (or with --shard {owner})")
    return True


def _metric_and_item(config: Config, hosts: list[Host], metric: str | None, item: str | None,
                     problems: list[str]) -> tuple[str | None, str | None]:
    """The metric (checked) and the item as the engine stores it (cleaned like host text)."""
    if item is not None and not item.strip():
        item = None
    if metric is None:
        if item is not None:
            problems.append("an item needs its metric (--metric disk --item /var)")
        return None, None
    if metric not in METRICS:
        problems.append(f"unknown metric {metric!r}" + _suggest(metric, METRICS, "metrics"))
        return None, None
    if item is None:
        return metric, None
    item = clean(item)
    family = BY_NAME.get(metric)
    spec = family.thresholds if family is not None else None
    if spec is None or not (spec.item_key or spec.fixed_items or spec.states):
        problems.append(f"{metric} has no items: leave out the item")
    elif spec.fixed_items and item not in spec.fixed_items:
        problems.append(f"{metric} has no item {item!r}" + _suggest(item, spec.fixed_items,
                                                                    "items"))
    elif spec.states:
        names = sorted({c.name for h in hosts for c in config.checks_for(h)})
        if item not in names:
            problems.append(f"no check named {item!r} runs on the host(s) silenced"
                            + _suggest(item, names, "checks"))
    return metric, item


def _reason(text: str | None, problems: list[str]) -> str:
    try:
        return check_reason(text)
    except ValueError as exc:
        problems.append(str(exc))
        return ""


def _unknown_host(config: Config, name: str) -> str:
    return f"no host named {name!r} in {config.path}" + _suggest(
        name, [h.name for h in config.hosts], "hosts")


def _suggest(word: str, choices: Any, what: str) -> str:
    choices = sorted(choices)
    close = difflib.get_close_matches(word, choices, n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    shown = ", ".join(choices[:12]) + (", ..." if len(choices) > 12 else "")
    return f" (known {what}: {shown})" if choices else ""


def _show(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
