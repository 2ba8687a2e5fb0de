"""A pass's notifications as Prometheus Alertmanager webhook messages (format version "4").

What chat and paging bridges accept.  Each of osmon's notifications is one alert, and each
alert is its own group, as Alertmanager sends them for a route with ``group_by: [alertname,
instance, <the item>]``: the bridges that follow incidents key them on the ``groupKey``
(Alertmanager's PagerDuty notifier uses its hash as ``dedup_key``, its Opsgenie notifier as
``alias``) and close one when a message of its group is ``resolved``; one group for all of
osmon would make every alert one incident, closed by any pass with only recoveries.  So a
pass sends one message per group, the worst first, at most :data:`MAX_GROUPS` of them; in a
larger pass (a mass outage) the rest go together in Alertmanager's catch-all group (``{}:{}``,
a route without ``group_by``), cut in messages of :data:`MAX_ALERTS` alerts
(``truncatedAlerts`` stays 0: nothing is dropped).

* ``status``: ``resolved`` for a recovery, ``firing`` for the rest (problem, escalation,
  reminder); the message is ``firing`` if any of its alerts is.  A CERT-FR alert is news, not
  a condition that ends: it is sent already resolved (``startsAt`` = ``endsAt`` = its
  publication), so it tells the chat without opening an incident that nothing would close;
* ``labels`` say which alert it is, and are the same every time it is sent: ``alertname``
  (the metric: ``disk``, ``disk_full``, ``down``, ``certfr``), ``instance`` (the host),
  ``severity`` (``warning``, ``critical``, for a recovery the level it had; ``info`` for
  CERT-FR) and the item under its
  family's name (``mount``, ``resource``, ``check``; ``id`` for CERT-FR);
* ``annotations``: ``summary`` (the e-mail's headline), ``description`` (its message) and
  ``event``, ``value``, ``threshold`` as the e-mail words them;
* ``fingerprint``: 16 hex digits of a hash of the labels that say *which* alert it is
  (alertname, instance, the item), not of its severity: an escalation and the recovery keep
  the fingerprint of the problem, so a bridge that follows alerts by it closes what it opened;
* ``startsAt``: when the problem began; ``endsAt``: the pass's time for a recovery, Go's
  zero time (``0001-01-01T00:00:00Z``) while it fires, as Alertmanager sends it;
* ``generatorURL``: the host's page (the CERT-FR alert's own page).

``groupLabels`` are the labels that say which alert it is (all but ``severity``), and
``groupKey`` is Alertmanager's for them: ``{}:{alertname="disk", instance="db1",
mount="/var"}``; ``commonLabels`` and ``commonAnnotations`` hold what all alerts of the
message share.  Pure: notifications and ``now`` in, dictionaries out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from collector.alerts.notification import Notification, severity_key
from collector.alerts.wording import format_value
from collector.metrics.registry import BY_NAME
from collector.times import format_ts, parse_ts

VERSION = "4"
RECEIVER = "osmon"
#: Alertmanager's group key of a route without ``group_by``: the overflow of a large pass.
CATCH_ALL = "{}:{}"
#: Go's zero time: what Alertmanager sends as ``endsAt`` of an alert still firing.
NOT_ENDED = "0001-01-01T00:00:00Z"
#: Groups (alerts) sent as messages of their own in one pass; the rest share the catch-all.
MAX_GROUPS = 100
#: Alerts per catch-all message at most; more make several messages.
MAX_ALERTS = 200


def messages(notes: Sequence[Notification], now: datetime, public_url: str
             ) -> list[dict[str, Any]]:
    """The webhook messages of one pass (none without notifications), one per group, worst
    first; the groups beyond :data:`MAX_GROUPS` in catch-all messages."""
    base = public_url.rstrip("/")
    groups: dict[str, tuple[dict[str, str], list[dict[str, Any]]]] = {}
    for note in sorted(notes, key=severity_key):
        one = alert(note, now, base)
        labels = group_labels(one["labels"])
        groups.setdefault(group_key(labels), (labels, []))[1].append(one)
    out = [message(alerts, base, labels, key)
           for key, (labels, alerts) in list(groups.items())[:MAX_GROUPS]]
    rest = [a for _labels, alerts in list(groups.values())[MAX_GROUPS:] for a in alerts]
    out += [message(rest[i:i + MAX_ALERTS], base, {}, CATCH_ALL)
            for i in range(0, len(rest), MAX_ALERTS)]
    return out


def message(alerts: list[dict[str, Any]], public_url: str, labels: dict[str, str],
            key: str) -> dict[str, Any]:
    firing = any(a["status"] == "firing" for a in alerts)
    return {"receiver": RECEIVER, "status": "firing" if firing else "resolved",
            "alerts": alerts, "groupLabels": labels,
            "commonLabels": _common([a["labels"] for a in alerts]),
            "commonAnnotations": _common([a["annotations"] for a in alerts]),
            "externalURL": public_url, "version": VERSION, "groupKey": key,
            "truncatedAlerts": 0}


def group_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """The labels that say which alert it is: all but its severity, which an escalation
    and the recovery change."""
    return {k: v for k, v in labels.items() if k != "severity"}


def group_key(labels: Mapping[str, str]) -> str:
    """Alertmanager's group key of the root route grouped by ``labels``: ``{}:`` then the
    label set as Go prints it (sorted, values quoted)."""
    pairs = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}"
                      for k, v in sorted(labels.items()))
    return f"{{}}:{{{pairs}}}"


def alert(note: Notification, now: datetime, public_url: str) -> dict[str, Any]:
    labels = _labels(note)
    resolved = note.event == "recovery"
    annotations = {"summary": headline(note), "description": note.message, "event": note.event}
    if note.unit:  # measured values read as in the e-mail: "97%", "5 h"
        if note.value is not None:
            annotations["value"] = format_value(note.value, note.unit)
        if note.threshold is not None:
            annotations["threshold"] = format_value(note.threshold, note.unit)
    if note.details:
        annotations["details"] = note.details
    if note.host is not None:
        url = f"{public_url}/hosts/{quote(note.host, safe='')}"
    else:
        url = note.link or f"{public_url}/certfr"
    starts, ends = _rfc3339(note.since), format_ts(now) if resolved else NOT_ENDED
    if note.event == "certfr":  # news: over as soon as said (an unknown date: the pass's)
        resolved = True
        starts = ends = format_ts(now) if starts == NOT_ENDED else starts
    return {"status": "resolved" if resolved else "firing", "labels": labels,
            "annotations": annotations, "startsAt": starts, "endsAt": ends,
            "generatorURL": url, "fingerprint": fingerprint(labels)}


def headline(note: Notification) -> str:
    """The e-mail's headline words: "db1 disk / 97%", "db1 down", a CERT-FR title."""
    if note.host is None:
        return note.message
    item = f" {note.item}" if note.item else ""
    if note.metric in ("down", "silent", "hostkey"):
        return note.message
    value = format_value(note.value, note.unit) if note.unit else ""
    return f"{note.host} {note.metric}{item} {value}".rstrip()


def _labels(note: Notification) -> dict[str, str]:
    level = note.was if note.event == "recovery" else note.level
    labels = {"alertname": note.metric,
              "severity": level if level in ("warning", "critical") else "info"}
    if note.host is not None:
        labels["instance"] = note.host
    if note.item is not None:
        labels[_item_label(note)] = note.item
    return labels


def _item_label(note: Notification) -> str:
    if note.host is None:
        return "id"  # a CERT-FR alert's reference
    family = BY_NAME.get(note.metric)
    spec = family.thresholds if family is not None else None
    return spec.item_label if spec is not None else "item"


def fingerprint(labels: Mapping[str, str]) -> str:
    """16 hex digits that identify an alert by its labels but its severity, the same at
    every pass and level."""
    text = "\0".join(f"{k}\0{v}" for k, v in sorted(labels.items()) if k != "severity")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _common(dicts: list[dict[str, str]]) -> dict[str, str]:
    if not dicts:
        return {}
    first = dicts[0]
    return {k: v for k, v in first.items() if all(d.get(k) == v for d in dicts[1:])}


def _rfc3339(ts: str) -> str:
    """osmon's UTC times are RFC 3339 already; anything else (a feed's date) is passed on
    only if it parses, else the pass's own time would be a lie: the zero time says unknown."""
    try:
        parse_ts(ts)
    except (TypeError, ValueError):
        return NOT_ENDED
    return ts
