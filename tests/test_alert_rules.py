"""The pure rule engine: (config, state, samples, now) -> (state, notifications).

No server here: each test feeds literal samples pass by pass with an injected clock and checks
which notifications a user would receive.  The end-to-end tests with a real SMTP server are in
test_alerting.py.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from mail_fixtures import T0, failed_sample, make_config, minutes, ok_sample

from collector.alerts import rules as alert_rules
from collector.alerts.rules import Notification


class Engine:
    """Runs passes one after the other, like cron would, keeping the state as JSON would."""

    def __init__(self, tmp_path: Path, hosts: tuple[str, ...] = ("db1",), extra: str = "") -> None:
        self.config = make_config(tmp_path, hosts=hosts, extra=extra)
        self.state: Any = None
        self.now = T0

    def run(self, **samples: dict | None) -> list[Notification]:
        before = copy.deepcopy(self.state)
        new_state, notes = alert_rules.evaluate(
            self.config, self.state, {k: v for k, v in samples.items() if v is not None},
            self.now)
        assert self.state == before, "evaluate must not modify the state it is given"
        self.state = json.loads(json.dumps(new_state))  # what the state file round-trips
        self.now += minutes(1)
        return notes

    def ok(self, host: str = "db1", **values: Any) -> dict:
        return ok_sample(host, self.now, **values)

    def failed(self, host: str = "db1", kind: str = "timeout") -> dict:
        return failed_sample(host, self.now, kind)


def events(notes: list[Notification]) -> list[tuple[str, str, str | None, str]]:
    return [(n.event, n.metric, n.item, n.level) for n in notes]


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return Engine(tmp_path)


def test_breach_shorter_than_for_is_not_notified(engine: Engine) -> None:
    assert engine.run(db1=engine.ok(cpu=90)) == []
    assert engine.run(db1=engine.ok(cpu=91)) == []
    assert engine.run(db1=engine.ok(cpu=10)) == []
    assert engine.run(db1=engine.ok(cpu=92)) == []  # the count starts again


def test_confirmed_breach_is_notified_once_then_quiet(engine: Engine) -> None:
    start = engine.now
    engine.run(db1=engine.ok(cpu=90))
    engine.run(db1=engine.ok(cpu=90))
    notes = engine.run(db1=engine.ok(cpu=90))
    assert events(notes) == [("problem", "cpu", None, "warning")]
    assert notes[0].value == 90 and notes[0].threshold == 80
    assert notes[0].since == start.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert "cpu on db1 is at 90%" in notes[0].message
    for _ in range(10):
        assert engine.run(db1=engine.ok(cpu=91)) == []


def test_disk_is_confirmed_at_once_and_escalates(engine: Engine) -> None:
    notes = engine.run(db1=engine.ok(disks={"/": 88, "/var": 20}))
    assert events(notes) == [("problem", "disk", "/", "warning")]
    notes = engine.run(db1=engine.ok(disks={"/": 97, "/var": 20}))
    assert events(notes) == [("escalation", "disk", "/", "critical")]
    assert notes[0].threshold == 95
    assert engine.run(db1=engine.ok(disks={"/": 97, "/var": 20})) == []


def test_escalation_needs_for_passes_too(engine: Engine) -> None:
    for _ in range(3):
        notes = engine.run(db1=engine.ok(cpu=90))
    assert events(notes) == [("problem", "cpu", None, "warning")]
    assert engine.run(db1=engine.ok(cpu=99)) == []
    assert engine.run(db1=engine.ok(cpu=99)) == []
    assert events(engine.run(db1=engine.ok(cpu=99))) == [("escalation", "cpu", None, "critical")]


def test_straight_to_critical_is_one_problem_not_an_escalation(engine: Engine) -> None:
    notes = engine.run(db1=engine.ok(disks={"/": 99}))
    assert events(notes) == [("problem", "disk", "/", "critical")]


def test_deescalation_is_silent_and_recovery_needs_the_margin(engine: Engine) -> None:
    engine.run(db1=engine.ok(disks={"/": 97}))
    assert engine.run(db1=engine.ok(disks={"/": 91})) == []  # within 5 points: still critical
    assert engine.state["hosts"]["db1"]["alerts"]["disk:/"]["level"] == "critical"
    assert engine.run(db1=engine.ok(disks={"/": 89})) == []  # critical -> warning: no mail
    assert engine.state["hosts"]["db1"]["alerts"]["disk:/"]["level"] == "warning"
    assert engine.run(db1=engine.ok(disks={"/": 82})) == []  # below 85 but within 5 points
    notes = engine.run(db1=engine.ok(disks={"/": 79}))
    assert events(notes) == [("recovery", "disk", "/", "ok")]
    assert "back to 79%" in notes[0].message
    assert engine.run(db1=engine.ok(disks={"/": 79})) == []


def test_flapping_value_at_the_threshold_does_not_storm(engine: Engine) -> None:
    cpu_notes, disk_notes = [], []
    for i in range(40):
        above = i % 2 == 0
        notes = engine.run(db1=engine.ok(cpu=80.5 if above else 79.5,
                                         disks={"/": 85.5 if above else 84.5}))
        cpu_notes += [n for n in notes if n.metric == "cpu"]
        disk_notes += [n for n in notes if n.metric == "disk"]
    assert cpu_notes == []  # never 3 passes in a row over 80
    assert events(disk_notes) == [("problem", "disk", "/", "warning")]  # and no recovery


def test_reminder_every_repeat_interval_while_it_lasts(engine: Engine) -> None:
    engine.run(db1=engine.ok(disks={"/": 90}))
    engine.now += minutes(4 * 60 - 2)
    assert engine.run(db1=engine.ok(disks={"/": 90})) == []  # 3 h 59 min after the mail
    notes = engine.run(db1=engine.ok(disks={"/": 90}))  # 4 h after
    assert events(notes) == [("reminder", "disk", "/", "warning")]
    assert engine.run(db1=engine.ok(disks={"/": 90})) == []
    engine.now += minutes(4 * 60)
    assert events(engine.run(db1=engine.ok(disks={"/": 90}))) == [
        ("reminder", "disk", "/", "warning")]


def test_no_reminders_when_repeat_interval_is_zero(tmp_path: Path) -> None:
    engine = Engine(tmp_path, extra="[alerts]\nrepeat_interval_s = 0")
    engine.run(db1=engine.ok(disks={"/": 90}))
    engine.now += minutes(24 * 60)
    assert engine.run(db1=engine.ok(disks={"/": 90})) == []


def test_host_down_with_three_metrics_over_threshold_is_one_notification(engine: Engine) -> None:
    hot = {"cpu": 99, "memory": 99, "disks": {"/": 99}}
    notified = []
    for _ in range(3):
        notified += engine.run(db1=engine.ok(**hot))
    assert sorted(n.metric for n in notified) == ["cpu", "disk", "memory"]
    assert engine.run(db1=engine.failed()) == []  # one failure is not "down" (down_after = 2)
    notes = engine.run(db1=engine.failed())
    assert events(notes) == [("problem", "down", None, "critical")]
    assert "db1 is down: timeout" in notes[0].message
    engine.now += minutes(5 * 60)
    # Hours later: a reminder for the host only, none for its metrics, no metric "recovery".
    assert events(engine.run(db1=engine.failed())) == [("reminder", "down", None, "critical")]
    # Back, still hot: the host's recovery, and the reminders held back while it was down.
    notes = engine.run(db1=engine.ok(**hot))
    assert events(notes) == [("recovery", "down", None, "ok"),
                             ("reminder", "cpu", None, "critical"),
                             ("reminder", "memory", None, "critical"),
                             ("reminder", "disk", "/", "critical")]
    assert engine.run(db1=engine.ok(**hot)) == []


def test_down_counts_its_failed_passes_in_words(tmp_path: Path) -> None:
    engine = Engine(tmp_path, extra="[alerts]\ndown_after = 1")
    [note] = engine.run(db1=engine.failed())
    assert note.message.endswith("(1 failed pass in a row)")
    engine = Engine(tmp_path, extra="[alerts]\ndown_after = 3")
    notes = [n for _ in range(3) for n in engine.run(db1=engine.failed())]
    assert len(notes) == 1 and notes[0].message.endswith("(3 failed passes in a row)")


def test_metrics_that_recovered_while_down_are_resolved_once_the_host_is_back(
        engine: Engine) -> None:
    engine.run(db1=engine.ok(disks={"/": 99}))
    engine.run(db1=engine.failed())
    engine.run(db1=engine.failed())
    notes = engine.run(db1=engine.ok(disks={"/": 40}))
    assert events(notes) == [("recovery", "down", None, "ok"), ("recovery", "disk", "/", "ok")]


def test_pending_metrics_of_a_host_that_goes_down_send_nothing(engine: Engine) -> None:
    engine.run(db1=engine.ok(cpu=99, memory=99))
    engine.run(db1=engine.failed())
    notes = engine.run(db1=engine.failed())
    assert events(notes) == [("problem", "down", None, "critical")]


def test_host_key_change_is_critical_at_once_and_sticks(engine: Engine) -> None:
    notes = engine.run(db1=engine.failed(kind="hostkey"))
    assert events(notes) == [("problem", "hostkey", None, "critical")]
    assert "possible attack" in notes[0].message
    # Later failures of another kind do not turn it into a plain "down".
    assert engine.run(db1=engine.failed(kind="timeout")) == []
    assert engine.run(db1=engine.failed(kind="timeout")) == []
    assert events(engine.run(db1=engine.ok())) == [("recovery", "hostkey", None, "ok")]


def test_down_then_hostkey_mails_the_host_key(engine: Engine) -> None:
    engine.run(db1=engine.failed())
    engine.run(db1=engine.failed())
    assert events(engine.run(db1=engine.failed(kind="hostkey"))) == [
        ("problem", "hostkey", None, "critical")]
    assert list(engine.state["hosts"]["db1"]["alerts"]) == ["hostkey"]


def test_a_host_without_news_goes_silent(tmp_path: Path) -> None:
    engine = Engine(tmp_path, hosts=("db1", "web1"))
    engine.run(db1=engine.ok(), web1=engine.ok())
    engine.now += minutes(28)
    assert engine.run(db1=engine.ok()) == []  # web1 missing from the pass: 29 min
    notes = engine.run(db1=engine.ok())  # 30 min
    assert [(n.event, n.host, n.metric) for n in notes] == [("problem", "web1", "silent")]
    assert engine.run(db1=engine.ok()) == []
    assert [(n.event, n.host, n.metric) for n in engine.run(db1=engine.ok(), web1=engine.ok())
            ] == [("recovery", "web1", "silent")]


def test_load_is_per_core(engine: Engine) -> None:
    for _ in range(3):
        notes = engine.run(db1=engine.ok(load1=10.0, count=4))  # 2.5 per core >= 2.0
    assert events(notes) == [("problem", "load", None, "warning")]
    assert notes[0].value == 2.5 and notes[0].unit == "/core"
    # 1.95 per core is within the margin (5 % of 2.0 = 0.1): no recovery yet.
    assert engine.run(db1=engine.ok(load1=7.8, count=4)) == []
    assert events(engine.run(db1=engine.ok(load1=7.0, count=4))) == [
        ("recovery", "load", None, "ok")]


def test_per_host_and_per_mount_thresholds(tmp_path: Path) -> None:
    extra = ('[thresholds]\ndisk = { warning = 85, critical = 95, '
             'mounts = { "/backup" = { warning = 98, critical = 99 } } }')
    engine = Engine(tmp_path, extra=extra)
    notes = engine.run(db1=engine.ok(disks={"/": 86, "/backup": 97}))
    assert events(notes) == [("problem", "disk", "/", "warning")]


def test_missing_or_broken_sections_skip_the_rule_and_keep_the_alert(engine: Engine) -> None:
    engine.run(db1=engine.ok(disks={"/": 90}))
    sample = engine.ok()
    del sample["disks"]
    sample["cpu"] = {"count": "four", "percent": None, "load": "high"}
    sample["memory"] = ["not", "a", "dict"]
    sample["errors"] = {"disks": "statvfs failed"}
    assert engine.run(db1=sample) == []
    assert engine.state["hosts"]["db1"]["alerts"]["disk:/"]["level"] == "warning"
    assert engine.run(db1={"ok": True, "ts": "x"}) == []  # nothing but "ok"
    assert engine.run(db1="not a sample") == []  # type: ignore[arg-type]


def test_an_unmounted_disk_is_resolved_as_no_longer_reported(engine: Engine) -> None:
    engine.run(db1=engine.ok(disks={"/": 50, "/mnt/usb": 99}))
    notes = engine.run(db1=engine.ok(disks={"/": 50}))
    assert events(notes) == [("recovery", "disk", "/mnt/usb", "ok")]
    assert "no longer reported" in notes[0].message


def test_hostile_mount_names_are_one_bounded_line(engine: Engine) -> None:
    notes = engine.run(db1=engine.ok(disks={"/x\n<script>" + "y" * 1000: 99}))
    assert len(notes) == 1
    assert "\n" not in notes[0].item and len(notes[0].item) <= 300


def test_check_rule_warning_critical_and_unknown(engine: Engine) -> None:
    def checks(state: int, output: str = "") -> dict:
        return engine.ok(checks={"http": {"state": state, "output": output, "perf": {}}})

    assert engine.run(db1=checks(2, "HTTP CRITICAL - 500\nmore lines")) == []
    notes = engine.run(db1=checks(2, "HTTP CRITICAL - 500"))
    assert events(notes) == [("problem", "check", "http", "critical")]
    assert notes[0].message == "check http on db1 is CRITICAL: HTTP CRITICAL - 500"
    assert engine.run(db1=checks(1, "slow")) == []  # de-escalation is silent
    assert events(engine.run(db1=checks(0, "HTTP OK"))) == [("recovery", "check", "http", "ok")]
    engine.run(db1=checks(3, "plugin timed out"))
    notes = engine.run(db1=checks(3, "plugin timed out"))
    assert events(notes) == [("problem", "check", "http", "warning")]  # UNKNOWN: not critical
    assert "UNKNOWN" in notes[0].message


def test_removed_host_is_forgotten_without_mail(tmp_path: Path) -> None:
    engine = Engine(tmp_path, hosts=("db1", "web1"))
    engine.run(db1=engine.ok(disks={"/": 99}), web1=engine.ok(disks={"/": 99}))
    engine.config = make_config(tmp_path, hosts=("db1",))
    assert engine.run(db1=engine.ok(disks={"/": 99})) == []
    assert list(engine.state["hosts"]) == ["db1"]


@pytest.mark.parametrize("state", [None, "junk", {"version": 99, "hosts": {}},
                                   {"version": 1, "hosts": {"db1": {"alerts": {"cpu": 5}}}},
                                   {"version": 1, "hosts": {"db1": {"fail_count": "x",
                                                                    "alerts": []}}},
                                   {"version": 1, "hosts": {"db1": {"last_error": "x",
                                                                    "last_ok": 5}}}])
def test_unusable_state_is_rebuilt_not_a_crash(engine: Engine, state: Any) -> None:
    engine.state = state
    notes = engine.run(db1=engine.ok(disks={"/": 99}))
    assert events(notes) == [("problem", "disk", "/", "critical")]


def test_a_value_hovering_79_81_at_the_threshold_never_flaps(tmp_path: Path) -> None:
    engine = Engine(tmp_path, extra="[thresholds]\ndisk = { warning = 80, critical = 95 }")
    notes = []
    for i in range(30):  # cpu warns at 80 after 3 passes, disk (now 80) at once
        value = 81 if i % 2 == 0 else 79
        notes += engine.run(db1=engine.ok(cpu=value, disks={"/": value}))
    assert events(notes) == [("problem", "disk", "/", "warning")]  # cpu: never 3 in a row
    assert engine.state["hosts"]["db1"]["alerts"]["disk:/"]["level"] == "warning"
    assert events(engine.run(db1=engine.ok(disks={"/": 74}))) == [("recovery", "disk", "/", "ok")]


def test_a_confirmed_problem_hovering_at_its_threshold_stays_one_problem(engine: Engine) -> None:
    notes = []
    for _ in range(3):
        notes += engine.run(db1=engine.ok(cpu=81))
    for i in range(30):
        notes += engine.run(db1=engine.ok(cpu=79 if i % 2 == 0 else 81))
    assert events(notes) == [("problem", "cpu", None, "warning")]


def test_a_value_swinging_between_warning_and_critical_mails_once(engine: Engine) -> None:
    notes = []
    for i in range(20):  # critical, then under critical by more than the margin, and back
        notes += engine.run(db1=engine.ok(disks={"/": 97 if i % 2 == 0 else 89}))
    assert events(notes) == [("problem", "disk", "/", "critical")]
    engine.now += minutes(4 * 60)
    assert events(engine.run(db1=engine.ok(disks={"/": 89}))) == [
        ("reminder", "disk", "/", "warning")]  # the admin now reads "warning" ...
    assert events(engine.run(db1=engine.ok(disks={"/": 97}))) == [
        ("escalation", "disk", "/", "critical")]  # ... so critical is news again


def test_a_failed_pass_restarts_the_for_count(engine: Engine) -> None:
    assert engine.run(db1=engine.ok(cpu=90)) == []
    assert engine.run(db1=engine.ok(cpu=90)) == []
    assert engine.run(db1=engine.failed()) == []  # not 3 consecutive passes over 80
    assert engine.run(db1=engine.ok(cpu=90)) == []
    assert engine.run(db1=engine.ok(cpu=90)) == []
    assert events(engine.run(db1=engine.ok(cpu=90))) == [("problem", "cpu", None, "warning")]


def test_swap_has_its_own_levels(engine: Engine) -> None:
    notes = []
    for _ in range(3):
        notes += engine.run(db1=engine.ok(swap=85))
    assert events(notes) == [("problem", "swap", None, "critical")]
    assert notes[0].threshold == 80


def test_thresholds_per_host_and_per_mount_of_a_host(tmp_path: Path) -> None:
    options = {"web1": 'thresholds = { disk = { warning = 70, '
                       'mounts = { "/srv" = { warning = 90, critical = 99 } } }, '
                       'cpu = { warning = 50, for = 1 } }'}
    engine = Engine(tmp_path, hosts=("db1", "web1"))
    engine.config = make_config(tmp_path, hosts=("db1", "web1"), host_options=options)
    notes = engine.run(db1=engine.ok(cpu=60, disks={"/": 75, "/srv": 80}),
                       web1=engine.ok("web1", cpu=60, disks={"/": 75, "/srv": 89}))
    assert [(n.host, n.metric, n.item, n.threshold) for n in notes] == [
        ("web1", "cpu", None, 50), ("web1", "disk", "/", 70)]  # db1 keeps the defaults


def test_silent_after_is_configurable(tmp_path: Path) -> None:
    engine = Engine(tmp_path, hosts=("db1", "web1"), extra="[alerts]\nsilent_after_s = 300")
    engine.run(db1=engine.ok(), web1=engine.ok())
    for _ in range(4):
        assert engine.run(db1=engine.ok()) == []
    notes = engine.run(db1=engine.ok())  # 5 min without a sample of web1
    assert [(n.event, n.host, n.metric, n.level) for n in notes] == [
        ("problem", "web1", "silent", "critical")]
    assert "no successful sample since 2026-11-21T22:00:00Z" in notes[0].message
