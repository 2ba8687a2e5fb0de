"""Silences and acknowledgements end to end: files in the state directory, the post-pass hook,
the alert history, ``osmon status``, and mail counted at a real SMTP server on loopback.

Most tests call the hook pass after pass with an injected clock (``mail_fixtures.Passes``), the
way the collection pass does; the last one is all real: ``osmon silence`` and ``osmon collect``
as processes, a local host and one behind a real sshd, and the SMTP server.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sshd as harness
from mail_fixtures import Passes, SmtpSink, make_config, minutes

from collector.alerts import muting_store
from collector.alerts import state as alert_store
from collector.alerts.muting_input import SilenceRequest
from collector.errors import MutingError
from collector.views.status_report import build_report, render

ROOT = Path(__file__).resolve().parent.parent
UTC = dt.timezone.utc


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as server:
        yield server


@pytest.fixture
def passes(tmp_path: Path, sink: SmtpSink) -> Passes:
    return Passes(make_config(tmp_path, hosts=("db1", "web1", "web2"), smtp_port=sink.port,
                              host_options={"web1": 'tags = ["web"]',
                                            "web2": 'tags = ["web"]'}))


@pytest.fixture
def one(tmp_path: Path, sink: SmtpSink) -> Passes:
    """db1 alone: hours pass between passes, other hosts would fall silent."""
    return Passes(make_config(tmp_path, hosts=("db1",), smtp_port=sink.port))


def silence(passes: Passes, *, reason: str = "kernel upgrade", **fields: str) -> str:
    """Add a silence as ``osmon silence add`` does, at the passes' clock; its id."""
    request = SilenceRequest(reason=reason, **fields)
    return muting_store.add_silence(passes.config, request, author="alice", now=passes.now,
                                    zone=UTC).id


def subjects(sink: SmtpSink) -> list[str]:
    return [str(m["Subject"]) for m in sink.messages]


def history(passes: Passes) -> list[tuple[str, str, str | None]]:
    """(event, host, silence id) of the history, oldest first."""
    return [(r["event"], r["host"], r.get("silenced") or r.get("silence"))
            for r in reversed(alert_store.history(passes.state_dir))]


def test_a_problem_under_a_silence_mails_nothing_and_shows_silenced(passes: Passes,
                                                                    sink: SmtpSink) -> None:
    sid = silence(passes, host="db1", duration="1h")
    for _ in range(3):
        samples = {"db1": passes.ok(disks={"/": 97}), "web1": passes.ok("web1"),
                   "web2": passes.ok("web2")}
        for host, sample in samples.items():  # as the pass stores them, for `osmon status`
            passes.store.append(host, sample)
        passes.run(**samples)
    assert sink.messages == []
    assert history(passes) == [("silence-added", "db1", sid), ("problem", "db1", sid)]
    active = alert_store.active_alerts(passes.state_dir)
    assert [(a["host"], a["metric"], a["level"]) for a in active] == [("db1", "disk", "critical")]
    report = build_report(passes.config, passes.now - minutes(1))
    line = next(h for h in report.as_dict()["hosts"] if h["name"] == "db1")
    assert line["status"] == "critical" and line["silenced"]["id"] == sid
    assert line["silenced"]["author"] == "alice"
    assert report.as_dict()["silenced"] == 1
    text = render(report)
    assert "critical (silenced)  db1" in text and "by alice: kernel upgrade" in text


def test_the_silence_ends_with_the_problem_still_there_one_mail(passes: Passes,
                                                                sink: SmtpSink) -> None:
    sid = silence(passes, host="db1", duration="3m")
    for _ in range(6):
        passes.run(db1=passes.ok(disks={"/": 97}))
    assert subjects(sink) == ["[osmon] CRITICAL db1 disk / 97%"]
    events = history(passes)
    assert events[:2] == [("silence-added", "db1", sid), ("problem", "db1", sid)]
    assert ("silence-expired", "db1", sid) in events and events[-1] == ("problem", "db1", None)
    assert muting_store.read(passes.state_dir)[0].silences == ()  # tidied away


def test_a_reboot_inside_a_silence_mails_nothing(passes: Passes, sink: SmtpSink) -> None:
    silence(passes, host="db1", duration="30m", reason="reboot for the new kernel")
    passes.run(db1=passes.ok())
    for _ in range(4):
        passes.run(db1=passes.failed())
    for _ in range(3):
        passes.run(db1=passes.ok())
    assert sink.messages == []
    assert [e for e, _h, _s in history(passes)] == ["silence-added", "problem", "recovery"]


def test_a_silence_by_tag_covers_every_host_of_the_tag_and_no_other(passes: Passes,
                                                                    sink: SmtpSink) -> None:
    silence(passes, tag="web", duration="1h")
    hot = {"disks": {"/": 97}}
    passes.run(db1=passes.ok(**hot), web1=passes.ok("web1", **hot), web2=passes.ok("web2", **hot))
    assert subjects(sink) == ["[osmon] CRITICAL db1 disk / 97%"]
    muted = sorted(h for e, h, s in history(passes) if e == "problem" and s)
    assert muted == ["web1", "web2"]


def test_an_expired_silence_is_inert(one: Passes, sink: SmtpSink) -> None:
    silence(one, host="db1", duration="2m")
    one.now += dt.timedelta(hours=1)
    one.run(db1=one.ok(disks={"/": 97}))
    assert subjects(sink) == ["[osmon] CRITICAL db1 disk / 97%"]


def test_an_acknowledged_alert_sends_no_reminder_but_its_escalation_and_recovery(
        one: Passes, sink: SmtpSink) -> None:
    one.run(db1=one.ok(disks={"/": 90}))
    ack = muting_store.acknowledge(one.config, "db1", "disk", "/", "ordering a bigger disk",
                                   author="bob", now=one.now)
    assert ack.level == "warning"
    for _ in range(3):
        one.now += dt.timedelta(hours=5)  # a reminder would be due every 4 h
        one.run(db1=one.ok(disks={"/": 90}))
    assert subjects(sink) == ["[osmon] WARNING db1 disk / 90%"]
    shown = muting_store.read(one.state_dir)[0].annotate(
        alert_store.active_alerts(one.state_dir), {}, one.now)
    assert shown[0]["ack"]["author"] == "bob" and shown[0]["ack"]["reason"] == \
        "ordering a bigger disk"
    one.run(db1=one.ok(disks={"/": 97}))
    assert subjects(sink)[-1] == "[osmon] CRITICAL db1 disk / 97%"
    assert muting_store.read(one.state_dir)[0].acks == ()  # over with the escalation
    one.run(db1=one.ok(disks={"/": 40}))
    assert subjects(sink)[-1] == "[osmon] RESOLVED db1 disk / 40%"
    events = [(r["event"], r["message"]) for r in reversed(alert_store.history(one.state_dir))]
    assert ("ack", "disk / on db1 acknowledged by bob: ordering a bigger disk") in events
    assert ("ack-ended", "acknowledgement of disk / on db1 by bob ended: the alert got worse "
                         "(critical)") in events


def test_an_acknowledged_alert_mails_its_recovery(one: Passes, sink: SmtpSink) -> None:
    one.run(db1=one.ok(disks={"/": 90}))
    muting_store.acknowledge(one.config, "db1", "disk", "/", "known", author="bob",
                             now=one.now)
    one.run(db1=one.ok(disks={"/": 40}))
    assert subjects(sink) == ["[osmon] WARNING db1 disk / 90%", "[osmon] RESOLVED db1 disk / 40%"]
    assert muting_store.read(one.state_dir)[0].acks == ()


def test_an_alert_acknowledged_in_a_window_mails_its_escalation_and_recovery_after_it(
        one: Passes, sink: SmtpSink) -> None:
    """A warning starts in a maintenance window, the admin acknowledges it, the window ends:
    nothing is sent.  Then it goes critical: one mail, the ack ends; then its recovery."""
    silence(one, host="db1", duration="3m")
    one.run(db1=one.ok(disks={"/": 90}))
    muting_store.acknowledge(one.config, "db1", "disk", "/", "cleaning up", author="bob",
                             now=one.now)
    for _ in range(4):  # the window ends during these
        one.run(db1=one.ok(disks={"/": 90}))
    assert sink.messages == []
    for _ in range(10):
        one.run(db1=one.ok(disks={"/": 97}))
    assert subjects(sink) == ["[osmon] CRITICAL db1 disk / 97%"]
    assert muting_store.read(one.state_dir)[0].acks == ()  # spent by the escalation
    one.run(db1=one.ok(disks={"/": 40}))
    assert subjects(sink)[-1] == "[osmon] RESOLVED db1 disk / 40%"
    recoveries = [r for r in alert_store.history(one.state_dir) if r["event"] == "recovery"]
    assert [r.get("silenced") for r in recoveries] == [None]


def test_an_alert_acknowledged_in_a_window_mails_its_recovery_after_it(
        one: Passes, sink: SmtpSink) -> None:
    silence(one, host="db1", duration="3m")
    one.run(db1=one.ok(disks={"/": 90}))
    muting_store.acknowledge(one.config, "db1", "disk", "/", "cleaning up", author="bob",
                             now=one.now)
    for _ in range(4):
        one.run(db1=one.ok(disks={"/": 90}))
    one.run(db1=one.ok(disks={"/": 40}))
    assert subjects(sink) == ["[osmon] RESOLVED db1 disk / 40%"]


@pytest.mark.parametrize("fields, words", [
    ({"host": "db1", "duration": "-1h"}, "a duration must be positive"),
    ({"host": "db9", "duration": "1h"}, "no host named 'db9'"),
    ({"tag": "nope", "duration": "1h"}, "no host has the tag 'nope'"),
    ({"host": "db1", "start": "2026-11-21T23:00Z", "until": "2026-11-21T22:30Z"},
     "would end (2026-11-21 22:30:00 UTC) before it starts (2026-11-21 23:00:00 UTC)"),
    ({"host": "db1", "duration": "1h", "metric": "dsik"}, "unknown metric 'dsik'"),
    ({"host": "db1", "duration": "1h", "metric": "cpu", "item": "0"}, "cpu has no items"),
    ({"host": "db1", "duration": "1h", "metric": "pressure", "item": "disk"},
     "pressure has no item 'disk'"),
], ids=["negative", "unknown-host", "unknown-tag", "end-before-start", "unknown-metric",
        "no-items", "unknown-resource"])
def test_bad_input_is_a_clear_error_and_changes_nothing(passes: Passes, fields: dict[str, str],
                                                        words: str) -> None:
    with pytest.raises(MutingError, match="the silence was not added") as raised:
        silence(passes, **fields)
    assert words in str(raised.value)
    assert not (passes.state_dir / muting_store.SILENCES_FILE).exists()
    assert alert_store.history(passes.state_dir) == []


def test_acknowledging_what_is_not_active_is_refused(passes: Passes) -> None:
    passes.run(db1=passes.ok(disks={"/": 90}))
    with pytest.raises(MutingError, match=r"db1 has no active disk /var alert to acknowledge "
                                          r"\(active now: disk /\)"):
        muting_store.acknowledge(passes.config, "db1", "disk", "/var", "x", author="bob",
                                 now=passes.now)
    with pytest.raises(MutingError, match="a reason is required"):
        muting_store.acknowledge(passes.config, "db1", "disk", "/", "  ", author="bob",
                                 now=passes.now)
    assert not (passes.state_dir / muting_store.ACKS_FILE).exists()


def test_a_corrupt_silences_file_is_set_aside_and_said(passes: Passes, sink: SmtpSink) -> None:
    passes.state_dir.mkdir(parents=True)
    (passes.state_dir / muting_store.SILENCES_FILE).write_text("{not json")
    passes.run(db1=passes.ok(disks={"/": 97}))
    assert subjects(sink) == ["[osmon] CRITICAL db1 disk / 97%"]  # loud, not lost
    assert (passes.state_dir / (muting_store.SILENCES_FILE + ".corrupt")).exists()
    rows = alert_store.history(passes.state_dir)
    assert any(r["event"] == "state" and "silences.json" in r["message"] for r in rows)
    sid = silence(passes, host="db1", duration="1h")  # and silences work again
    assert [s.id for s in muting_store.read(passes.state_dir)[0].silences] == [sid]


def test_silences_add_and_remove_in_the_history(passes: Passes) -> None:
    sid = silence(passes, host="db1", metric="disk", item="/var", duration="90m")
    passes.now += minutes(5)
    muting_store.remove_silence(passes.config, sid, author="carol", now=passes.now)
    with pytest.raises(MutingError, match=f"no silence '{sid}' to remove"):
        muting_store.remove_silence(passes.config, sid, author="carol", now=passes.now)
    rows = list(reversed(alert_store.history(passes.state_dir, host="db1")))
    assert [(r["event"], r["metric"], r["item"], r["silence"]) for r in rows] == [
        ("silence-added", "disk", "/var", sid), ("silence-removed", "disk", "/var", sid)]
    assert rows[0]["message"] == ("db1, disk /var silenced: 2026-11-21 22:00 UTC to "
                                  "2026-11-21 23:30 UTC by alice: kernel upgrade")
    assert rows[1]["message"].endswith("(removed by carol before its end)")


# -- all real: the CLI and `osmon collect` as processes, a real sshd, the SMTP server ----------
def osmon(config: Path, *args: str, user: str = "alice") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), USER=user, LOGNAME=user)
    env.pop("SUDO_USER", None)
    return subprocess.run([sys.executable, "-m", "collector", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=90, env=env, cwd=config.parent)


def test_real_passes_a_tag_silence_from_the_cli_then_removed(sshd: harness.Sshd,
                                                             tmp_path: Path) -> None:
    # Any memory use alerts; nothing else may (a loaded CI machine's real CPU, load or I/O
    # pressure would otherwise mail first and change the subjects this test reads).
    off = {"warning": False, "critical": False}
    tiny = {"memory": {"warning": 0.001, "critical": 0.002, "for": 1}, "cpu": off, "load": off,
            "swap": off, "disk": off, "disk_full": {"warning_h": False, "critical_h": False},
            "pressure": {"cpu": off, "memory": off, "io": off}}
    with SmtpSink() as sink:
        extra = (f'\n[smtp]\nhost = "127.0.0.1"\nport = {sink.port}\n'
                 'from = "osmon@example.org"\nto = ["ops@example.org"]\n')
        config = sshd.write_hosts_toml(tmp_path / "hosts.toml", ["central", "remote"], hosts={
            "central": {"local": True, "tags": ["core"], "thresholds": tiny},
            "remote": {"tags": ["web"], "thresholds": tiny}}, extra=extra)
        added = osmon(config, "silence", "add", "--tag", "core", "--for", "2h", "--reason",
                      "memory upgrade")
        assert added.returncode == 0, added.stderr
        sid = added.stdout.splitlines()[-1]
        assert len(sid) == 8 and sid in osmon(config, "silence", "list").stdout
        collected = osmon(config, "collect")
        assert collected.returncode == 0, collected.stderr
        assert len(sink.messages) == 1
        assert subjects(sink)[0].startswith("[osmon] CRITICAL remote memory ")  # not central
        status = json.loads(osmon(config, "status", "--json").stdout)
        central = next(h for h in status["hosts"] if h["name"] == "central")
        assert central["silenced"]["id"] == sid and central["silenced"]["author"] == "alice"
        assert osmon(config, "collect").returncode == 0
        assert len(sink.messages) == 1  # still silenced, and remote was already told
        removed = osmon(config, "silence", "remove", sid, user="bob")
        assert removed.returncode == 0, removed.stderr
        assert osmon(config, "collect").returncode == 0
        assert len(sink.messages) == 2  # central at once, as if its problem had just started
        assert subjects(sink)[1].startswith("[osmon] CRITICAL central memory ")
    rows = [json.loads(line) for line in
            (tmp_path / "data" / "state" / "alert-history.jsonl").read_text().splitlines()]
    changes = [(r["event"], r.get("tag"), r["message"]) for r in rows if r.get("silence")]
    assert [c[:2] for c in changes] == [("silence-added", "core"), ("silence-removed", "core")]
    assert "by alice: memory upgrade" in changes[0][2]
    assert changes[1][2].endswith("(removed by bob before its end)")
    muted = [r["host"] for r in rows if r["event"] == "problem" and r.get("silenced") == sid]
    assert muted == ["central"]


def test_a_silence_over_is_recorded_even_if_another_was_added_since(one: Passes) -> None:
    first = silence(one, host="db1", duration="3m")
    one.now += minutes(10)
    second = silence(one, host="db1", duration="1h", reason="second window")
    one.run(db1=one.ok())
    events = [(r["event"], r.get("silence")) for r in alert_store.history(one.state_dir)]
    assert ("silence-expired", first) in events
    assert [s.id for s in muting_store.read(one.state_dir)[0].silences] == [second]
