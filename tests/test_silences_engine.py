"""Silences and acknowledgements in the pure rule engine, pass by pass with an injected clock.

What a user would notice: which notifications would be *sent* (``silenced`` is None) and which
are only recorded in the history (``silenced`` names the silence).  The same behaviour through
real passes, files and a real SMTP server is in test_silences_live.py.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import pytest
from mail_fixtures import T0, failed_sample, make_config, minutes, ok_sample

from collector.alerts import rules as alert_rules
from collector.alerts.muting import Ack, Muting, Silence
from collector.alerts.muting_input import parse_duration, parse_time
from collector.alerts.notification import Notification
from collector.times import format_ts


def silence(sid: str = "s1", *, host: str | None = "db1", tag: str | None = None,
            metric: str | None = None, item: str | None = None,
            start: dt.datetime = T0, end: dt.datetime = T0 + dt.timedelta(hours=1)) -> Silence:
    return Silence(id=sid, host=host, tag=tag, metric=metric, item=item, start=start, end=end,
                   author="alice", reason="kernel upgrade", created=start)


class Engine:
    """Passes one after the other, the state round-tripped through JSON as on disk."""

    def __init__(self, tmp_path: Path, hosts: tuple[str, ...] = ("db1",),
                 host_options: dict[str, str] | None = None) -> None:
        self.config = make_config(tmp_path, hosts=hosts, host_options=host_options)
        self.state: Any = None
        self.now = T0
        self.muting = Muting()

    def run(self, **samples: dict) -> list[Notification]:
        before = copy.deepcopy(self.state)
        new_state, notes = alert_rules.evaluate(self.config, self.state, samples, self.now,
                                                self.muting)
        assert self.state == before, "evaluate must not modify the state it is given"
        self.state = json.loads(json.dumps(new_state))
        self.now += minutes(1)
        return notes

    def ok(self, host: str = "db1", **values: Any) -> dict:
        return ok_sample(host, self.now, **values)

    def failed(self, host: str = "db1") -> dict:
        return failed_sample(host, self.now)

    def alert(self, key: str, host: str = "db1") -> dict[str, Any]:
        return self.state["hosts"][host]["alerts"][key]


def sent(notes: list[Notification]) -> list[tuple[str, str, str | None, str]]:
    return [(n.event, n.host or "", n.item, n.level) for n in notes if n.silenced is None]


def recorded(notes: list[Notification]) -> list[tuple[str, str, str | None]]:
    """What only goes to the history: (event, metric, silence id)."""
    return [(n.event, n.metric, n.silenced) for n in notes if n.silenced is not None]


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return Engine(tmp_path)


def test_a_silenced_problem_is_evaluated_and_recorded_but_not_sent(engine: Engine) -> None:
    engine.muting = Muting((silence(),))
    notes = engine.run(db1=engine.ok(disks={"/": 97}))
    assert sent(notes) == []
    assert recorded(notes) == [("problem", "disk", "s1")]
    assert engine.alert("disk:/")["level"] == "critical"  # still judged and kept
    for _ in range(5):  # recorded once, not every pass of the silence
        assert engine.run(db1=engine.ok(disks={"/": 97})) == []


def test_when_the_silence_ends_one_notification_as_if_it_had_just_started(
        engine: Engine) -> None:
    engine.muting = Muting((silence(end=T0 + minutes(3)),))
    for _ in range(3):
        assert sent(engine.run(db1=engine.ok(disks={"/": 90}))) == []
    notes = engine.run(db1=engine.ok(disks={"/": 90}))  # T0 + 3 min: the silence is over
    assert sent(notes) == [("problem", "db1", "/", "warning")]
    assert "disk / on db1 is at 90%" in notes[0].message
    for _ in range(5):
        assert engine.run(db1=engine.ok(disks={"/": 90})) == []


def test_a_problem_that_begins_and_ends_inside_a_silence_sends_nothing(engine: Engine) -> None:
    engine.muting = Muting((silence(),))
    notes = engine.run(db1=engine.ok(disks={"/": 97}))
    notes += engine.run(db1=engine.ok(disks={"/": 40}))
    assert sent(notes) == []
    assert recorded(notes) == [("problem", "disk", "s1"), ("recovery", "disk", "s1")]
    engine.muting = Muting()
    assert engine.run(db1=engine.ok(disks={"/": 40})) == []


def test_a_reboot_inside_a_silence_sends_nothing(engine: Engine) -> None:
    engine.muting = Muting((silence(),))
    notes = []
    for _ in range(4):
        notes += engine.run(db1=engine.failed())
    assert engine.alert("down")["level"] == "critical"
    notes += engine.run(db1=engine.ok())
    assert sent(notes) == []
    assert recorded(notes) == [("problem", "down", "s1"), ("recovery", "down", "s1")]


def test_a_host_still_down_when_the_silence_ends_is_one_mail(engine: Engine) -> None:
    engine.muting = Muting((silence(end=T0 + minutes(5)),))
    for _ in range(5):
        assert sent(engine.run(db1=engine.failed())) == []
    assert sent(engine.run(db1=engine.failed())) == [("problem", "db1", None, "critical")]
    assert sent(engine.run(db1=engine.failed())) == []
    assert sent(engine.run(db1=engine.ok())) == [("recovery", "db1", None, "ok")]


def test_an_escalation_inside_the_silence_is_recorded_once_and_mailed_after(
        engine: Engine) -> None:
    notes = engine.run(db1=engine.ok(disks={"/": 90}))
    assert sent(notes) == [("problem", "db1", "/", "warning")]  # told before the silence
    engine.muting = Muting((silence(start=engine.now, end=engine.now + minutes(3)),))
    notes = engine.run(db1=engine.ok(disks={"/": 97}))
    notes += engine.run(db1=engine.ok(disks={"/": 97}))
    notes += engine.run(db1=engine.ok(disks={"/": 97}))
    assert sent(notes) == [] and recorded(notes) == [("escalation", "disk", "s1")]
    assert sent(engine.run(db1=engine.ok(disks={"/": 97}))) == [
        ("escalation", "db1", "/", "critical")]


def test_a_silence_of_one_metric_and_item_leaves_the_others_alone(engine: Engine) -> None:
    engine.muting = Muting((silence(metric="disk", item="/var"),))
    notes = engine.run(db1=engine.ok(disks={"/": 97, "/var": 97}))
    assert sent(notes) == [("problem", "db1", "/", "critical")]
    assert recorded(notes) == [("problem", "disk", "s1")]
    notes = []
    for _ in range(3):
        notes += engine.run(db1=engine.failed())
    assert sent(notes) == [("problem", "db1", None, "critical")]  # down is not disk


def test_a_silence_by_tag_covers_every_host_of_the_tag_and_no_other(tmp_path: Path) -> None:
    engine = Engine(tmp_path, hosts=("web1", "web2", "db1"),
                    host_options={"web1": 'tags = ["web"]', "web2": 'tags = ["web", "eu"]'})
    engine.muting = Muting((silence(host=None, tag="web"),))
    hot = {"disks": {"/": 97}}
    notes = engine.run(web1=engine.ok("web1", **hot), web2=engine.ok("web2", **hot),
                       db1=engine.ok("db1", **hot))
    assert sent(notes) == [("problem", "db1", "/", "critical")]
    assert sorted(n.host or "" for n in notes if n.silenced) == ["web1", "web2"]


@pytest.mark.parametrize("window", [(T0 - dt.timedelta(hours=2), T0 - dt.timedelta(hours=1)),
                                    (T0 + dt.timedelta(hours=1), T0 + dt.timedelta(hours=2))],
                         ids=["expired", "not-started"])
def test_a_silence_outside_its_window_is_inert(engine: Engine,
                                               window: tuple[dt.datetime, dt.datetime]) -> None:
    engine.muting = Muting((silence(start=window[0], end=window[1]),))
    assert sent(engine.run(db1=engine.ok(disks={"/": 97}))) == [
        ("problem", "db1", "/", "critical")]


def test_no_reminder_during_a_silence_one_when_it_ends_if_due(engine: Engine) -> None:
    engine.run(db1=engine.ok(disks={"/": 90}))
    engine.muting = Muting((silence(start=engine.now, end=engine.now + dt.timedelta(hours=5)),))
    engine.now += dt.timedelta(hours=4)  # repeat_interval_s is 4 h by default
    assert engine.run(db1=engine.ok(disks={"/": 90})) == []  # due, but silenced: not even recorded
    engine.now += dt.timedelta(hours=1)
    assert sent(engine.run(db1=engine.ok(disks={"/": 90}))) == [
        ("reminder", "db1", "/", "warning")]


def ack_of(engine: Engine, key: str, aid: str = "a1") -> Ack:
    alert = engine.alert(key)
    metric, _, item = key.partition(":")
    return Ack(id=aid, host="db1", metric=metric, item=item or None, since=alert["since"],
               level=alert["level"], author="bob", reason="replacing the disk", ts=engine.now)


def test_an_acknowledged_alert_sends_no_reminder_but_its_escalation_and_recovery(
        engine: Engine) -> None:
    engine.run(db1=engine.ok(disks={"/": 90}))
    engine.muting = Muting(acks=(ack_of(engine, "disk:/"),))
    for _ in range(3):
        engine.now += dt.timedelta(hours=5)
        assert engine.run(db1=engine.ok(disks={"/": 90})) == []
    assert sent(engine.run(db1=engine.ok(disks={"/": 97}))) == [
        ("escalation", "db1", "/", "critical")]
    engine.now += dt.timedelta(hours=5)  # the ack ended with the escalation: reminders again
    assert sent(engine.run(db1=engine.ok(disks={"/": 97}))) == [
        ("reminder", "db1", "/", "critical")]
    assert sent(engine.run(db1=engine.ok(disks={"/": 40}))) == [("recovery", "db1", "/", "ok")]


def test_an_acknowledged_alert_still_mails_its_recovery(engine: Engine) -> None:
    engine.run(db1=engine.ok(disks={"/": 97}))
    engine.muting = Muting(acks=(ack_of(engine, "disk:/"),))
    assert sent(engine.run(db1=engine.ok(disks={"/": 40}))) == [("recovery", "db1", "/", "ok")]


def test_an_acknowledgement_holds_for_that_occurrence_only(engine: Engine) -> None:
    engine.run(db1=engine.ok(disks={"/": 90}))
    engine.muting = Muting(acks=(ack_of(engine, "disk:/"),))
    engine.run(db1=engine.ok(disks={"/": 40}))  # recovers...
    engine.run(db1=engine.ok(disks={"/": 90}))  # ...and comes back: a new occurrence
    engine.now += dt.timedelta(hours=5)
    assert sent(engine.run(db1=engine.ok(disks={"/": 90}))) == [
        ("reminder", "db1", "/", "warning")]


def test_an_acknowledged_alert_is_not_mailed_when_its_silence_ends(engine: Engine) -> None:
    engine.muting = Muting((silence(end=T0 + minutes(2)),))
    engine.run(db1=engine.ok(disks={"/": 90}))
    engine.muting = Muting((silence(end=T0 + minutes(2)),), (ack_of(engine, "disk:/"),))
    for _ in range(3):
        assert sent(engine.run(db1=engine.ok(disks={"/": 90}))) == []
    # the admin acknowledged it, so was told: its end is news (issue 16, item 2)
    assert sent(engine.run(db1=engine.ok(disks={"/": 40}))) == [("recovery", "db1", "/", "ok")]


def test_an_alert_acknowledged_after_its_silence_mails_its_escalation_and_recovery(
        engine: Engine) -> None:
    """A warning starts in a maintenance window, the admin acknowledges it, the window ends:
    nothing is sent.  When it then goes critical, that is news (the ack saw a warning): mailed
    once, and the ack is spent; its recovery is mailed too."""
    engine.muting = Muting((silence(end=T0 + minutes(2)),))
    assert sent(engine.run(db1=engine.ok(disks={"/": 90}))) == []
    engine.muting = Muting((silence(end=T0 + minutes(2)),), (ack_of(engine, "disk:/"),))
    for _ in range(3):  # the window ends at T0 + 2 min: still nothing, it is acknowledged
        assert sent(engine.run(db1=engine.ok(disks={"/": 90}))) == []
    notes = engine.run(db1=engine.ok(disks={"/": 97}))
    assert sent(notes) == [("escalation", "db1", "/", "critical")]
    assert engine.alert("disk:/")["ack_spent"] == "a1"
    for _ in range(10):  # once, not every pass
        assert sent(engine.run(db1=engine.ok(disks={"/": 97}))) == []
    assert sent(engine.run(db1=engine.ok(disks={"/": 40}))) == [("recovery", "db1", "/", "ok")]


def test_an_alert_acknowledged_inside_its_silence_stays_quiet_while_the_silence_lasts(
        engine: Engine) -> None:
    engine.muting = Muting((silence(),))
    engine.run(db1=engine.ok(disks={"/": 90}))
    engine.muting = Muting((silence(),), (ack_of(engine, "disk:/"),))
    notes = engine.run(db1=engine.ok(disks={"/": 97}))
    notes += engine.run(db1=engine.ok(disks={"/": 40}))
    assert sent(notes) == []
    assert recorded(notes) == [("escalation", "disk", "s1"), ("recovery", "disk", "s1")]


def test_silences_found_by_host_and_tag_are_those_that_cover_the_host() -> None:
    """The overview and the pass ask about every host: the silences are indexed by host and
    tag, and each host must still get exactly those active now that cover it."""
    rng = random.Random(16)
    tags = [f"rack{i}" for i in range(6)]
    hosts = {f"h{i}": tuple(rng.sample(tags, rng.randint(0, 3))) for i in range(40)}
    silences = tuple(silence(f"s{i}", host=None if i % 3 else rng.choice(list(hosts)),
                             tag=rng.choice(tags) if i % 3 else None,
                             metric=rng.choice([None, "disk"]),
                             start=T0 + minutes(rng.randint(-60, 30)),
                             end=T0 + minutes(rng.randint(1, 90))) for i in range(120))
    muting = Muting(silences)
    for host, its_tags in hosts.items():
        expected = {s.id for s in silences if s.active(T0) and s.covers_host(host, its_tags)}
        assert {s.id for s in muting.for_host(host, its_tags + its_tags, T0).silences} \
            == expected
        whole = [s for s in silences
                 if s.id in expected and s.metric is None]
        best = max(whole, key=lambda s: (s.end, s.id)) if whole else None
        assert muting.host_silence(host, its_tags, T0) == best


# -- what people type: durations and times, parsed with an injected clock -----------------------
@pytest.mark.parametrize("text, seconds", [("90m", 5400), ("2h", 7200), ("1h30m", 5400),
                                           ("1d", 86400), ("2w", 1209600), (" 45 s ", 45)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["-1h", "0m", "2", "h", "1y", "1h-", ""])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize("text, expected", [
    ("2026-11-21T23:30Z", "2026-11-21T23:30:00Z"),
    ("2026-11-21 23:30", "2026-11-21T22:30:00Z"),  # in the given zone, an hour east
    ("2026-11-21T23:30:00+00:00", "2026-11-21T23:30:00Z"),
    ("23:30", "2026-11-21T22:30:00Z"),  # today, still to come
    ("22:30", "2026-11-22T21:30:00Z"),  # today's is past (it is 23:00 there): tomorrow's
])
def test_times(text: str, expected: str) -> None:
    east = dt.timezone(dt.timedelta(hours=1))
    assert format_ts(parse_time(text, T0, east)) == expected  # T0 is 22:00 UTC


@pytest.mark.parametrize("text", ["tomorrow", "25:00", "2026-13-01 10:00", ""])
def test_bad_times(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time(text, T0, dt.timezone.utc)
