"""The post-pass alert hook: rules, CERT-FR, one digest e-mail, history, state.

Order matters for "nothing lost, nothing sent twice":

1. drop the silences that are over (a line of the history each), read the silences and
   acknowledgements, evaluate the rules (pure) with them and, if due, read the CERT-FR feed
   within its share of the time;
2. write the notifications to the outbox (atomic), the e-mail digest and the webhook messages (a
   channel with nothing configured is skipped) — from here on the notifications survive a
   crash;
3. append the history, then save the alert and CERT-FR state;
4. drop the acknowledgements that no longer hold (a line of the history each), then flush the
   outbox until the pass deadline, each channel within its share of the time left (a channel
   starting or ending to fail is a history event too).

A crash between 2 and 3 makes the next pass notify the same changes again (a duplicate,
never a loss); a crash during 4 is covered by the outbox (see :mod:`collector.alerts.mail`).
What a silence keeps back is never sent by any channel: it only goes to the history.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from collector.alerts import alertmanager, certfr, muting_store, webhook
from collector.alerts import mail as notify
from collector.alerts import rules as alert_rules
from collector.alerts import state as alert_store
from collector.alerts.notification import Notification, severity_key
from collector.config import Config
from collector.times import format_ts

log = logging.getLogger(__name__)

#: History lines one host may add in one pass (beyond: one summary line).
HISTORY_PER_HOST = 20
#: The feed may use at most this share of the time left, the rest is for the mail.
CERTFR_SHARE = 0.5


def on_pass(config: Config, store: Any, samples: dict[str, dict], now: datetime,
            deadline: float) -> None:
    """Judge this pass's samples and mail what changed (the ``collector.passes.hooks`` contract)."""
    state_dir = config.state_dir
    try:
        state, problem = alert_store.load_state(state_dir)
    except alert_store.StateUnusable as exc:
        _judge_nothing(config, now, deadline, str(exc))
        return
    events: list[dict[str, Any]] = []
    if problem is not None:
        message = (f"alert state {problem} (kept as {alert_store.STATE_FILE}.corrupt); problems "
                   "still present will be notified again")
        log.error("%s", message)
        events.append({"ts": format_ts(now), "host": "", "metric": "state", "item": None,
                       "event": "state", "level": "warning", "value": None, "threshold": None,
                       "message": message})
    events += muting_store.expire(config, now)
    muting, _problems = muting_store.read(state_dir)  # damage: said by expire
    new_state, judged = alert_rules.evaluate(config, state, samples, now, muting)
    feed = _poll_certfr(config, now, deadline)
    if feed is not None:
        judged.extend(certfr_notification(a) for a in feed.new_alerts)
        events.extend(feed.events)
    for note in judged:
        log.info("alert %s %s%s: %s", note.event, note.level,
                 f" (silenced by {note.silenced})" if note.silenced else "", note.message)
    #: What is sent, by every channel; the silenced rest is only recorded.
    notes = [n for n in judged if n.silenced is None]
    if notes and config.smtp.enabled:
        notify.queue(state_dir, notify.compose(config, notes, now), now)
    if notes and config.webhook.enabled:
        webhook.queue(state_dir, alertmanager.messages(notes, now, config.web.public_url), now)
    ts = format_ts(now)
    alert_store.append_history(state_dir, events + history_records(judged, ts))
    alert_store.save_state(state_dir, new_state)
    if feed is not None and feed.fetched:
        certfr.save_state(state_dir, feed.state)
    muting_store.end_acks(config, new_state, now)
    _flush_all(config, now, deadline)


def _flush_all(config: Config, now: datetime, deadline: float) -> None:
    """Every enabled channel sends what waits, each within its share of the time left, so a
    hung one cannot starve the other."""
    channels = []
    if config.smtp.enabled:
        channels.append(_EMAIL)
    if config.webhook.enabled:
        channels.append(_WEBHOOK)
    for index, channel in enumerate(channels):
        left = deadline - time.monotonic()
        _flush(config, now, channel, time.monotonic() + left / (len(channels) - index))


def _judge_nothing(config: Config, now: datetime, deadline: float, reason: str) -> None:
    """The alert state cannot be used as it is: say so, touch it not, still send what waits."""
    log.error("%s", reason)
    alert_store.append_history(config.state_dir, [{
        "ts": format_ts(now), "host": "", "metric": "state", "item": None, "event": "state",
        "level": "critical", "value": None, "threshold": None, "message": reason}])
    _flush_all(config, now, deadline)


class _Channel(NamedTuple):
    name: str
    words: str
    failure: Callable[[Path], str | None]
    flush: Callable[[Config, float], int]
    pending: Callable[[Path], list[Path]]


_EMAIL = _Channel("email", "e-mail", notify.smtp_failure,
                  lambda config, by: notify.flush_outbox(config.smtp, config.state_dir, by),
                  notify.pending)
_WEBHOOK = _Channel("webhook", "the webhook", webhook.failure,
                    lambda config, by: webhook.flush_outbox(config.webhook, config.state_dir, by),
                    webhook.pending)


def _flush(config: Config, now: datetime, channel: _Channel, deadline: float) -> None:
    """Send what waits; a channel starting or ending to fail is an event of the history too,
    so the dashboard shows that alerts are not getting through."""
    state_dir = config.state_dir
    before = channel.failure(state_dir)
    channel.flush(config, deadline)
    after = channel.failure(state_dir)
    if (before is None) == (after is None):
        return
    waiting = len(channel.pending(state_dir))
    if after is not None:
        verb = "cannot be sent" if channel is _EMAIL else "cannot be reached"
        level, message = "warning", (f"{channel.words} {verb}: {after}; {waiting} message(s) "
                                     f"wait in the outbox")
    else:
        level, message = "ok", f"{channel.words} works again: the waiting messages were sent"
    alert_store.append_history(state_dir, [{
        "ts": format_ts(now), "host": "", "metric": channel.name, "item": None,
        "event": channel.name, "level": level, "value": None, "threshold": None,
        "message": message}])


def history_records(notes: list[Notification], ts: str) -> list[dict[str, Any]]:
    """The pass's notifications as history lines, at most :data:`HISTORY_PER_HOST` a host.

    The history is bounded in bytes (it rotates), so a host flapping hundreds of mounts around
    a threshold would otherwise push every other host's events out of it within hours; the
    rest of such a burst is one summary line (the e-mail digest still lists them all).
    """
    per_host: dict[str, list[int]] = {}
    for index, note in enumerate(notes):
        if note.host:
            per_host.setdefault(note.host, []).append(index)
    dropped: set[int] = set()
    for indices in per_host.values():  # over the cap: the worst are kept, in pass order
        dropped.update(sorted(indices, key=lambda i: severity_key(notes[i]))[HISTORY_PER_HOST:])
    records = [note.history_record(ts) for index, note in enumerate(notes)
               if index not in dropped]
    for host, indices in per_host.items():
        count = len(indices)
        if host and count > HISTORY_PER_HOST:
            records.append({"ts": ts, "host": host, "metric": "history", "item": None,
                            "event": "summary", "level": "warning", "value": count,
                            "threshold": None,
                            "message": f"{count - HISTORY_PER_HOST} more events of {host} this "
                                       "pass were not recorded (see the e-mail)"})
    return records


def _poll_certfr(config: Config, now: datetime, deadline: float) -> certfr.PollResult | None:
    """The feed never costs the pass more than its share of the time left, nor fails it."""
    if not config.certfr.enabled:
        return None
    budget = min(config.certfr.timeout_s, (deadline - time.monotonic()) * CERTFR_SHARE)
    try:
        return certfr.poll(config.certfr, config.state_dir, now, budget)
    except Exception:
        log.exception("CERT-FR: unexpected error; alerts are evaluated without the feed")
        return None


def certfr_notification(alert: dict[str, Any]) -> Notification:
    return Notification(event="certfr", level="info", host=None, metric="certfr",
                        item=alert["id"], value=None, threshold=None,
                        since=alert["published"], message=alert["title"], link=alert["link"],
                        details=alert["description"])
