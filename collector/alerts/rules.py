"""Alert rules: (config, previous state, this pass's samples, now) -> (new state, notifications).

Pure on purpose: no file, no socket, no clock.  Everything that decides *whether* to mail lives
here, so every rule (``for`` passes, hysteresis, escalation, recovery, reminders, host down)
is tested with literal samples and an injected ``now``, without sleeping.

The model is Nagios' soft/hard states with Prometheus' ``for:`` and Netdata's hysteresis:

* a metric value over a threshold starts a *pending* alert; it becomes a *confirmed* problem
  after ``for`` consecutive passes, and only then is it notified;
* a confirmed problem clears only once the value is ``hysteresis`` points below the threshold,
  so a value hovering at the threshold does not flap (load, not a percentage, uses
  ``hysteresis`` percent of its threshold);
* notifications happen on a new confirmed problem, an escalation (warning -> critical), the
  recovery of a notified problem, and a reminder every ``repeat_interval_s`` while it lasts.
  Nothing else: a de-escalation (critical -> warning) is recorded silently, and going back up
  to a level the admin was already told about (``notified_level``) is not news either, so a
  value swinging between the two levels cannot mail an "escalation" every other pass;
* ``for`` means *consecutive* passes: a pass without a good sample (host failed or missing)
  starts the count again, and a pending alert is forgotten;
* host-level problems (host key changed, down, silent) win over metric alerts: while a host
  has no good sample, its metric alerts are neither evaluated nor reminded, so a dead host is
  one mail, not one per metric.

What is judged comes from the metric registry: every family with thresholds
(:data:`collector.metrics.registry.JUDGED`) turns a sample into judged values, each compared
with the host's level for that family and item; this module names no family.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from collector.alerts.muting import HostMuting, Muting, alert_key
from collector.alerts.notification import LEVEL_RANK, Notification
from collector.alerts.wording import (
    clean,
    error_of,
    label,
    metric_message,
    recovery_message,
)
from collector.config import AlertSettings, Config, Level, Thresholds
from collector.metrics.family import Family
from collector.metrics.gate import explained
from collector.metrics.registry import JUDGED
from collector.times import format_ts, parse_ts

STATE_VERSION = 1

#: Host-level rules, strongest first; at most one is active per host.  Every failure kind
#: but ``hostkey`` (unreachable, timeout, auth, probe, invalid-output) counts towards "down".
HOST_RULES = ("hostkey", "down", "silent")
#: A hostile or broken host must not grow the state without bound.
MAX_ITEMS_PER_FAMILY = 256



@dataclass(frozen=True)
class Reading:
    """One value a rule judges: ``score`` is compared with ``level``; ``value`` is shown."""

    metric: str
    item: str | None
    value: float
    score: float
    level: Level
    unit: str
    #: Points below a threshold a problem must fall to clear; ``relative``: percent of it.
    margin: float
    relative: bool = False
    detail: str = ""
    #: The lower the worse (hours until a disk is full): ``score`` is compared the other way.
    lower: bool = False

    def margin_at(self, threshold: float) -> float:
        return threshold * self.margin / 100.0 if self.relative else self.margin


# -- readings: what the registry's families judge in a sample ------------------------------------
def readings(family: Family, sample: Mapping[str, Any], thresholds: Thresholds,
             hysteresis: float) -> list[Reading] | None:
    """The family's judged values as readings against this host's levels (``None``: the
    section is missing, leave that family's alerts alone).  Items and details are host text:
    cleaned, and at most :data:`MAX_ITEMS_PER_FAMILY` of them.

    An optional family's section missing without a word in the sample's ``errors`` is not
    "unknown": the host no longer has it (a kernel booted with ``psi=0``, every check
    removed), so there is nothing to judge and its alerts are no longer reported."""
    spec = family.thresholds
    judged = spec.judge(sample) if spec is not None else None
    if spec is None:
        return None
    if judged is None:
        gone = (family.optional and family.section is not None
                and sample.get(family.section) is None
                and not explained(family.section, sample.get("errors")))
        return [] if gone else None
    margin = 0.0 if spec.states else spec.margin if spec.margin is not None else hysteresis
    out = []
    for item, value, score, detail in judged[:MAX_ITEMS_PER_FAMILY]:
        name = clean(item) if item is not None else None
        out.append(Reading(family.name, name, value, score,
                           thresholds.for_metric(family.name, name) if spec.configurable
                           else spec.default, spec.unit, margin,
                           relative=spec.relative_margin, detail=clean(detail),
                           lower=spec.lower_is_worse))
    return out


# -- state ----------------------------------------------------------------------------------------
def empty_state() -> dict[str, Any]:
    return {"version": STATE_VERSION, "hosts": {}}


def normalize_state(state: Any) -> dict[str, Any]:
    """A deep copy of ``state`` with anything malformed dropped (a hand-edited file must not
    crash a pass; losing one alert's memory only means it is re-confirmed)."""
    if not isinstance(state, Mapping) or state.get("version") != STATE_VERSION:
        return empty_state()
    hosts = state.get("hosts")
    result = empty_state()
    if not isinstance(hosts, Mapping):
        return result
    for name, hs in hosts.items():
        if not isinstance(name, str) or not isinstance(hs, Mapping):
            continue
        alerts = hs.get("alerts") if isinstance(hs.get("alerts"), Mapping) else {}
        result["hosts"][name] = {
            "first_seen": _ts_or_none(hs.get("first_seen")),
            "last_ok": _ts_or_none(hs.get("last_ok")),
            "fail_count": hs["fail_count"] if _is_count(hs.get("fail_count")) else 0,
            "last_error": (copy.deepcopy(dict(hs["last_error"]))
                           if isinstance(hs.get("last_error"), Mapping) else None),
            "alerts": {k: copy.deepcopy(dict(a)) for k, a in alerts.items()
                       if isinstance(k, str) and _valid_alert(a)},
        }
    return result


def _valid_alert(a: Any) -> bool:
    return (isinstance(a, Mapping) and isinstance(a.get("metric"), str)
            and a.get("level") in (None, "warning", "critical")
            and _ts_or_none(a.get("since")) is not None
            and _is_count(a.get("warn_run", 0)) and _is_count(a.get("crit_run", 0))
            and a.get("notified_level") in (None, "warning", "critical")
            and a.get("muted") in (None, "warning", "critical")
            and all(a.get(k) is None or isinstance(a[k], str) for k in ("muted_by", "ack_spent"))
            and (a.get("last_notified") is None or _ts_or_none(a["last_notified"]) is not None))


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _ts_or_none(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        parse_ts(value)
    except ValueError:
        return None
    return value


# -- evaluation -----------------------------------------------------------------------------------
def evaluate(config: Config, state: Any, samples: Mapping[str, Mapping[str, Any]],
             now: datetime, muting: Muting | None = None
             ) -> tuple[dict[str, Any], list[Notification]]:
    """Judge one pass.  ``state`` is not modified; the new state is returned.

    ``muting`` holds the silences and acknowledgements: what they keep from being sent is
    still returned, as notifications with ``silenced`` set, for the history."""
    muting = muting or Muting()
    new_state = normalize_state(state)
    hosts_state = new_state["hosts"]
    configured = {h.name: h for h in config.enabled_hosts}
    for name in list(hosts_state):
        if name not in configured and name not in samples:
            del hosts_state[name]  # removed or disabled: forget it, without mail
    notes: list[Notification] = []
    now_s = format_ts(now)
    for name in sorted(set(configured) | set(samples)):
        host = configured.get(name)
        hs = hosts_state.get(name)
        if hs is None:
            hs = hosts_state[name] = {"first_seen": now_s, "last_ok": None, "fail_count": 0,
                                      "last_error": None, "alerts": {}}
        thresholds = config.thresholds_for(host) if host is not None else config.thresholds
        sample = samples.get(name)
        if not isinstance(sample, Mapping):
            sample = None
        tags = host.tags if host is not None else ()
        notes.extend(_HostPass(name, hs, sample, thresholds, config.alerts, now,
                               muting.for_host(name, tags, now)).run())
    return new_state, notes


class _HostPass:
    """The evaluation of one host in one pass (a class only to avoid long argument lists)."""

    def __init__(self, host: str, hs: dict[str, Any], sample: Mapping[str, Any] | None,
                 thresholds: Thresholds, settings: AlertSettings, now: datetime,
                 muting: HostMuting) -> None:
        self.host, self.hs, self.sample = host, hs, sample
        self.thresholds, self.settings, self.now = thresholds, settings, now
        self.muting = muting
        self.now_s = format_ts(now)
        self.ok = isinstance(sample, Mapping) and sample.get("ok") is True
        self.notes: list[Notification] = []

    def run(self) -> list[Notification]:
        if self.sample is not None:
            if self.ok:
                self.hs.update(last_ok=self.now_s, fail_count=0, last_error=None)
            else:
                self.hs["fail_count"] += 1
                self.hs["last_error"] = error_of(self.sample)
        if not self.ok:
            self.break_runs()
        self.host_rules()
        if self.ok:
            for family in JUDGED:
                found = readings(family, self.sample, self.thresholds, self.settings.hysteresis)
                if found is not None:
                    self.metric_family(family.name, found)
        return self.notes

    # -- host-level: hostkey > down > silent ------------------------------------------------------
    def host_rules(self) -> None:
        alerts = self.hs["alerts"]
        current = next((r for r in HOST_RULES if r in alerts), None)
        wanted = self.wanted_host_rule(current)
        if current is not None and current != wanted:
            old = alerts.pop(current)
            if wanted is None and _told(old):
                self.notify("recovery", old, "ok", self.recovery_message(current, old))
        if wanted is None:
            return
        level, value, threshold, message = self.host_problem(wanted)
        alert = alerts.get(wanted)
        if alert is None:
            alert = alerts[wanted] = _new_alert(wanted, None, self.now_s)
            alert.update(level=level, value=value, threshold=threshold, message=message)
            self.notify("problem", alert, level, message)
            return
        alert.update(level=level, value=value, threshold=threshold, message=message)
        self.still_there(alert)

    def wanted_host_rule(self, current: str | None) -> str | None:
        if self.ok:
            return None
        kind = (self.hs.get("last_error") or {}).get("kind")
        if self.sample is None:  # no news from this host this pass: keep what we know
            return current or ("silent" if self.silent_for() is not None else None)
        if kind == "hostkey" or current == "hostkey":
            return "hostkey"  # stays until a good sample proves the key was sorted out
        if self.hs["fail_count"] >= self.settings.down_after:
            return "down"
        if current == "silent" or self.silent_for() is not None:
            return "silent"
        return None

    def silent_for(self) -> float | None:
        """Seconds without a good sample, if that is over ``silent_after_s``."""
        reference = self.hs.get("last_ok") or self.hs.get("first_seen")
        if reference is None:
            return None
        elapsed = (self.now - parse_ts(reference)).total_seconds()
        return elapsed if elapsed >= self.settings.silent_after_s else None

    def host_problem(self, rule: str) -> tuple[str, float | None, float | None, str]:
        error = self.hs.get("last_error") or {}
        detail = f"{error.get('kind', 'error')}: {error.get('message', '')}".rstrip(": ")
        if rule == "hostkey":
            return ("critical", None, None,
                    f"{self.host}: the host key does not match the known one (possible attack); "
                    f"not collected until the key is checked ({detail})")
        if rule == "down":
            count = self.hs["fail_count"]
            return ("critical", float(count), float(self.settings.down_after),
                    f"{self.host} is down: {detail} ({count} failed "
                    f"{'pass' if count == 1 else 'passes'} in a row)")
        seconds = self.silent_for() or float(self.settings.silent_after_s)
        last_ok = self.hs.get("last_ok")
        since = f"since {last_ok}" if last_ok else "ever"
        return ("critical", round(seconds), float(self.settings.silent_after_s),
                f"{self.host} is silent: no successful sample {since} "
                f"({int(seconds // 60)} min)")

    def recovery_message(self, rule: str, old: Mapping[str, Any]) -> str:
        what = {"hostkey": "its host key is accepted again", "down": "it answers again",
                "silent": "a successful sample arrived"}[rule]
        return f"{self.host} is back: {what} (problem since {old['since']})"

    # -- metric families --------------------------------------------------------------------------
    def break_runs(self) -> None:
        """No good sample this pass: ``for`` counts consecutive passes, so the counts start
        again; pending alerts are dropped, confirmed ones keep their level (and stay held back
        while the host is down)."""
        alerts = self.hs["alerts"]
        for key, alert in list(alerts.items()):
            if alert["metric"] in HOST_RULES:
                continue
            if alert.get("level") is None:
                del alerts[key]
            else:
                alert["warn_run"] = alert["crit_run"] = 0

    def metric_family(self, family: str, readings: list[Reading]) -> None:
        alerts = self.hs["alerts"]
        seen = set()
        for reading in readings:
            key = alert_key(reading.metric, reading.item)
            seen.add(key)
            self.metric(key, reading)
        for key in [k for k, a in alerts.items() if a["metric"] == family and k not in seen]:
            gone = alerts.pop(key)
            if gone.get("level") and _told(gone):
                self.notify("recovery", gone, "ok",
                            f"{label(gone['metric'], gone['item'])} on {self.host} is no "
                            f"longer reported")

    def metric(self, key: str, reading: Reading) -> None:
        alerts = self.hs["alerts"]
        alert = alerts.get(key)
        confirmed = alert["level"] if alert is not None else None
        effective = classify(reading, confirmed)
        if alert is None:
            if effective is None:
                return
            alert = alerts[key] = _new_alert(reading.metric, reading.item, self.now_s)
        if effective is None:
            alert["warn_run"] = alert["crit_run"] = 0
        else:
            alert["warn_run"] = alert.get("warn_run", 0) + 1
            alert["crit_run"] = alert.get("crit_run", 0) + 1 if effective == "critical" else 0
        new = _confirmed_level(alert, effective, confirmed, max(1, reading.level.for_passes))
        shown = new or effective or confirmed
        alert["value"] = reading.value
        alert["unit"] = reading.unit
        alert["threshold"] = _threshold(reading.level, shown)
        alert["message"] = metric_message(self.host, reading, shown, alert["threshold"])
        if new is None:
            if confirmed is None and effective is not None:
                return  # pending: not confirmed yet
            del alerts[key]
            if confirmed is not None and _told(alert):
                self.notify("recovery", alert, "ok", recovery_message(self.host, reading))
            return
        alert["level"] = new
        told = alert.get("notified_level") or confirmed
        if confirmed is None:
            self.notify("problem", alert, new, alert["message"])
        elif not alert.get("notified"):  # kept back by a silence so far
            self.still_there(alert)
        elif new == "critical" and told != "critical":
            ack = self.muting.ack(alert)
            if ack is not None:  # worse than what was acknowledged: the ack is over
                alert["ack_spent"] = ack.id
            self.notify("escalation", alert, new, alert["message"])
        else:  # same level, a silent de-escalation, or back to a level already mailed
            self.maybe_remind(alert)

    # -- notifications ----------------------------------------------------------------------------
    def still_there(self, alert: dict[str, Any]) -> None:
        """A confirmed problem that goes on: a reminder when due, or, if a silence kept it back
        until now, one notification as if it had just started (none if acknowledged, unless
        it is now worse than what was acknowledged: that is news, and spends the ack)."""
        if alert.get("notified"):
            self.maybe_remind(alert)
            return
        ack = self.muting.ack(alert)
        if ack is None:
            self.notify("problem", alert, alert["level"], alert["message"])
        elif LEVEL_RANK[alert["level"]] < LEVEL_RANK[ack.level]:
            alert["ack_spent"] = ack.id
            self.notify("escalation", alert, alert["level"], alert["message"])

    def maybe_remind(self, alert: dict[str, Any]) -> None:
        repeat = self.settings.repeat_interval_s
        last = alert.get("last_notified")
        if repeat <= 0 or not alert.get("notified") or last is None:
            return
        if self.muting.ack(alert) is not None:
            return  # acknowledged: no reminders until it recovers or gets worse
        if (self.now - parse_ts(last)).total_seconds() >= repeat:
            self.notify("reminder", alert, alert["level"], alert["message"])

    def notify(self, event: str, alert: dict[str, Any], level: str, message: str) -> None:
        """Send (return) a notification, or, under a silence, only record it (once a level).

        A recovery of a problem nobody was told about (silenced all along) is recorded too;
        one the admin acknowledged was told, and is sent."""
        silence = self.muting.silence(alert["metric"], alert.get("item"))
        silenced = silence.id if silence is not None else None
        if silenced is None and event == "recovery" and not alert.get("notified") \
                and self.muting.ack(alert) is None:
            silenced = alert.get("muted_by") or "?"
        if silenced is not None:
            if event == "problem" and alert.get("muted"):
                event = "escalation"  # recorded at a lower level earlier in the silence
            if not self.record_muted(event, alert, level, silenced):
                return
        elif event != "recovery":
            alert.update(notified=True, last_notified=self.now_s, notified_level=level,
                         muted=None, muted_by=None)
        self.notes.append(Notification(
            event=event, level=level, host=self.host, metric=alert["metric"],
            item=alert.get("item"), value=alert.get("value"), threshold=alert.get("threshold"),
            since=alert["since"], message=message, unit=alert.get("unit", ""),
            silenced=silenced, was=alert.get("level") if event == "recovery" else None))

    @staticmethod
    def record_muted(event: str, alert: dict[str, Any], level: str, silence_id: str) -> bool:
        """Whether a kept-back notification is news for the history: a problem or escalation
        once per level (not every pass of the silence), a recovery; never a reminder."""
        if event == "reminder":
            return False
        if event == "recovery":
            return True
        recorded = alert.get("muted")
        if recorded is not None and LEVEL_RANK[level] >= LEVEL_RANK[recorded]:
            return False
        alert.update(muted=level, muted_by=silence_id)
        return True


def _told(alert: Mapping[str, Any]) -> bool:
    """Was anything said about this alert (a mail, or a line of the history under a silence)?
    Then its end is news too."""
    return bool(alert.get("notified") or alert.get("muted"))


def _confirmed_level(alert: Mapping[str, Any], effective: str | None, confirmed: str | None,
                     for_passes: int) -> str | None:
    """The level an alert holds after this pass (``None``: clear, or still pending).

    Going up needs ``for_passes`` in a row at the new level; staying at a confirmed level
    needs only that the value has not crossed the margin (``effective``); going down is
    immediate (and silent)."""
    if effective is None:
        return None
    if alert["crit_run"] >= for_passes or (confirmed == effective == "critical"):
        return "critical"
    if alert["warn_run"] >= for_passes or confirmed is not None:
        return "warning"
    return None


def classify(reading: Reading, confirmed: str | None) -> str | None:
    """The level this reading is at, keeping a confirmed level until the margin is crossed.

    A family where lower is worse is compared on the negated scale: at or under its
    threshold is a problem, which holds until the value is the margin above it."""
    sign = -1.0 if reading.lower else 1.0
    score, warning, critical = sign * reading.score, reading.level.warning, reading.level.critical

    def reached(threshold: float | None, keep: bool) -> bool:
        if threshold is None:
            return False
        return score >= sign * threshold - (reading.margin_at(threshold) if keep else 0.0)

    if reached(critical, False) or (confirmed == "critical" and reached(critical, True)):
        return "critical"
    if reached(warning, False) or (confirmed is not None and reached(warning, True)):
        return "warning"
    return None


def _new_alert(metric: str, item: str | None, now_s: str) -> dict[str, Any]:
    return {"metric": metric, "item": item, "level": None, "since": now_s, "warn_run": 0,
            "crit_run": 0, "notified": False, "last_notified": None, "notified_level": None,
            "value": None, "threshold": None, "unit": "", "message": "", "muted": None,
            "muted_by": None}


def _threshold(level: Level, at: str | None) -> float | None:
    if at == "critical" and level.critical is not None:
        return level.critical
    return level.warning if level.warning is not None else level.critical
