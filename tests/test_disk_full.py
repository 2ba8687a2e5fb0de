"""The disk_full rule: hours until a mount is full, judged per mount like every other family.

Samples carry ``disks[].full_in_s`` as a pass stores it; the pure engine runs pass after pass
(test_alert_rules.Engine), the hook mails a real SMTP server, and the host verdict says it
where the admin looks.  The end-to-end test through real passes is test_disk_full_live.py.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from mail_fixtures import T0, Passes, SmtpSink, make_config, ok_sample
from test_alert_rules import Engine, events

from collector.errors import ConfigError
from collector.views.health import host_status
from collector.views.status_report import render

HOUR = 3600


def filling(host: str, when: dt.datetime, **mounts: tuple[float, float | None]) -> dict:
    """A good sample whose mounts are ``name=(percent, hours until full or None)``;
    ``root`` is "/"."""
    names = {("/" if k == "root" else "/" + k): v for k, v in mounts.items()}
    sample = ok_sample(host, when, disks={m: p for m, (p, _h) in names.items()})
    for disk in sample["disks"]:
        hours = names[disk["mount"]][1]
        disk["full_in_s"] = None if hours is None else round(hours * HOUR)
    return sample


def run(engine: Engine, **mounts: tuple[float, float | None]) -> list[tuple[Any, ...]]:
    return events(engine.run(db1=filling("db1", engine.now, **mounts)))


def test_fires_after_for_passes_and_says_when_and_how_full(tmp_path: Path) -> None:
    engine = Engine(tmp_path)  # built-in: warning under 24 h, critical under 4 h, for 2
    assert run(engine, root=(82.0, 20.0)) == []
    notes = engine.run(db1=filling("db1", engine.now, root=(82.0, 19.9)))
    assert events(notes) == [("problem", "disk_full", "/", "warning")]
    # T0 is 22:00 UTC; two passes later (22:01) plus 19.9 h is 17:55 tomorrow -> 18:00
    assert notes[0].message == ("disk_full / on db1 will be full in about 20 h, around 18:00 "
                                "UTC tomorrow; 82.0 % used now (warning under 24 h)")
    assert notes[0].unit == "h" and notes[0].threshold == 24
    assert run(engine, root=(83.0, 19.0)) == []  # the same problem: no news
    assert run(engine, root=(84.0, 3.5)) == []  # critical needs its 2 passes too
    notes = engine.run(db1=filling("db1", engine.now, root=(84.2, 3.4)))
    assert events(notes) == [("escalation", "disk_full", "/", "critical")]
    assert "will be full in about 3 h, around 01:30 UTC" in notes[0].message


def test_clears_only_well_beyond_the_warning_or_when_it_stops_filling(tmp_path: Path) -> None:
    engine = Engine(tmp_path)
    run(engine, root=(82.0, 20.0))
    run(engine, root=(82.0, 20.0))
    for hours in (25.0, 30.0, 35.0):  # beyond 24 h, but within 1.5 x: still a problem
        assert run(engine, root=(82.0, hours)) == []
    notes = engine.run(db1=filling("db1", engine.now, root=(82.0, 37.0)))
    assert events(notes) == [("recovery", "disk_full", "/", "ok")]
    assert notes[0].message == ("disk_full / on db1 fills more slowly: full in about 37 h; "
                                "82.0 % used now")
    run(engine, root=(82.0, 20.0))
    run(engine, root=(82.0, 20.0))
    notes = engine.run(db1=filling("db1", engine.now, root=(60.0, None)))  # cleaned up
    assert events(notes) == [("recovery", "disk_full", "/", "ok")]
    assert notes[0].message == "disk_full / on db1 is no longer filling up; 60.0 % used now"


def test_a_forecast_wavering_around_the_threshold_mails_once(tmp_path: Path) -> None:
    """``for = 2`` (the default): a forecast under 24 h one pass in two never holds for two
    passes in a row, so nothing is sent; once it does, one problem, and the hysteresis (it
    clears beyond 36 h) keeps the 30 h passes from mailing recoveries."""
    engine = Engine(tmp_path)
    sent = []
    for i in range(40):
        sent += run(engine, root=(80.0, 23.0 if i % 2 else 26.0))
    assert sent == []
    for i in range(40):
        sent += run(engine, root=(80.0, 23.0 if i % 3 else 30.0))
    assert sent == [("problem", "disk_full", "/", "warning")]


def test_levels_per_host_and_per_mount_in_hours(tmp_path: Path) -> None:
    extra = ('[thresholds]\ndisk_full = { warning_h = 12, critical_h = 2, for = 1, '
             'mounts = { "/backup" = { warning_h = 72 } } }')
    engine = Engine(tmp_path, hosts=("db1", "web1"), extra=extra)
    notes = engine.run(db1=filling("db1", engine.now, root=(50.0, 20.0), backup=(70.0, 50.0)))
    assert events(notes) == [("problem", "disk_full", "/backup", "warning")]
    notes = engine.run(db1=filling("db1", engine.now, root=(50.0, 1.5), backup=(70.0, 50.0)))
    assert events(notes) == [("problem", "disk_full", "/", "critical")]


@pytest.mark.parametrize("table, expected", [
    ("disk_full = { warning_h = 4, critical_h = 24 }",
     "[thresholds].disk_full: warning_h (4) must be above critical_h (24): for disk_full, the "
     "lower the worse"),
    ("disk_full = { warning = 24 }",
     "[thresholds].disk_full: unknown key 'warning' (did you mean 'warning_h'?)"),
    ("disk_full = 24",
     "[thresholds]: 'disk_full' must be a table like { warning_h = 24, critical_h = 4 }, not an "
     "integer"),
    ('disk_full = { warning_h = "a day" }',
     "[thresholds].disk_full: 'warning_h' must be a number, not a string ('a day')"),
])
def test_a_mistake_in_its_table_names_the_file_and_the_key(tmp_path: Path, table: str,
                                                           expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make_config(tmp_path, extra=f"[thresholds]\n{table}")
    assert caught.value.problems == (f"{tmp_path / 'hosts.toml'}: {expected}",)


def test_the_mail_says_the_mount_its_use_and_when(tmp_path: Path) -> None:
    with SmtpSink() as sink:
        passes = Passes(make_config(tmp_path, smtp_port=sink.port))
        for _ in range(2):
            passes.run(db1=filling("db1", passes.now, var=(80.0, 5.0), root=(40.0, None)))
        assert len(sink.messages) == 1
        msg = sink.messages[0]
        assert msg["Subject"] == "[osmon] WARNING db1 disk_full /var 5 h"
        text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
        assert ("disk_full /var on db1 will be full in about 5 h, around 03:00 UTC tomorrow; 80.0 "
                "% used now (warning under 24 h)") in text
        assert "threshold 24 h" in text
        assert "https://osmon.example.org/hosts/db1/charts/disk.svg?range=24h" in text


def test_the_host_verdict_and_the_fullest_disk_say_it(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    sample = filling("db1", T0, root=(91.0, None), var=(60.0, 3.0))
    status = host_status("db1", sample, [], config.thresholds, T0, 60)
    assert status.status == "critical"
    assert status.levels["disk"] == "warning" and status.levels["disk_full"] == "critical"
    assert "critical: /var full in about 3 h" in status.reasons
    assert status.items["disk"] == "/" and status.marks["disk"] == "/var full in about 3 h"
    data = status.as_dict()
    assert data["disk_mark"] == "/var full in about 3 h"
    assert data["disk_full"] == 3 * HOUR and data["disk_full_mount"] == "/var"
    quiet = host_status("db1", filling("db1", T0, root=(91.0, 30.0)), [], config.thresholds,
                        T0, 60)
    assert quiet.marks == {} and quiet.as_dict()["disk_mark"] is None


def test_osmon_status_marks_the_disk_that_will_be_full(tmp_path: Path) -> None:
    from collector.views.health import CollectorState
    from collector.views.status_report import HostLine, Report

    config = make_config(tmp_path)
    sample = filling("db1", T0, root=(61.0, 3.0))
    status = host_status("db1", sample, [], config.thresholds, T0, 60)
    report = Report(T0, CollectorState("2026-11-21T22:00:00Z", 0.0, False), None,
                    [HostLine(status, ())])
    text = render(report)
    assert "/ 61.0 % (/ full in about 3 h)" in text
    painted = render(report, colour=True)
    assert "\x1b[31m/ 61.0 % (/ full in about 3 h)\x1b[0m" in painted  # critical: red


def test_a_disk_full_now_says_so(tmp_path: Path) -> None:
    engine = Engine(tmp_path, extra="[thresholds]\ndisk_full = { for = 1 }")
    notes = engine.run(db1=filling("db1", engine.now, root=(84.0, 0.0)))
    assert [n.message for n in notes] == [
        "disk_full / on db1 is full or about to be; 84.0 % used now (critical under 4 h)"]
