"""The alert hook end to end: samples in, e-mails out of a real SMTP server on loopback.

Each test runs ``collector.alerting.on_pass`` pass after pass with an injected clock, the way the
collection pass calls it, and counts the mails the admin would get.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from mail_fixtures import Passes, SmtpSink, make_config

from collector.alerts import mail as notify
from collector.alerts import state as alert_store


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as server:
        yield server


@pytest.fixture
def passes(tmp_path: Path, sink: SmtpSink) -> Passes:
    return Passes(make_config(tmp_path, hosts=("db1", "web1"), smtp_port=sink.port))


def bodies(msg: EmailMessage) -> tuple[str, str]:
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    return (text.get_content().replace("\r\n", "\n"), html.get_content().replace("\r\n", "\n"))


def test_breach_shorter_than_for_sends_nothing(passes: Passes, sink: SmtpSink) -> None:
    passes.run(db1=passes.ok(cpu=90))
    passes.run(db1=passes.ok(cpu=90))
    passes.run(db1=passes.ok(cpu=20))
    assert sink.messages == []


def test_confirmed_breach_one_mail_then_none_then_escalation_then_recovery(
        passes: Passes, sink: SmtpSink) -> None:
    for _ in range(3):
        passes.run(db1=passes.ok(cpu=90))
    assert [m["Subject"] for m in sink.messages] == ["[osmon] WARNING db1 cpu 90%"]
    passes.run(db1=passes.ok(cpu=91))
    assert len(sink.messages) == 1  # the same problem the next pass: nothing
    for _ in range(3):
        passes.run(db1=passes.ok(cpu=99))
    assert sink.messages[-1]["Subject"] == "[osmon] CRITICAL db1 cpu 99%"
    assert "escalated to critical" in bodies(sink.messages[-1])[0]
    passes.run(db1=passes.ok(cpu=30))
    assert len(sink.messages) == 3
    assert sink.messages[-1]["Subject"] == "[osmon] RESOLVED db1 cpu 30%"
    passes.run(db1=passes.ok(cpu=30))
    assert len(sink.messages) == 3


def test_reminder_after_repeat_interval(passes: Passes, sink: SmtpSink) -> None:
    passes.run(db1=passes.ok(disks={"/": 90}), web1=passes.ok("web1"))
    passes.now += dt.timedelta(hours=4)
    passes.run(db1=passes.ok(disks={"/": 91}), web1=passes.ok("web1"))
    assert [m["Subject"] for m in sink.messages] == ["[osmon] WARNING db1 disk / 90%",
                                                     "[osmon] STILL WARNING db1 disk / 91%"]
    assert "still going on" in bodies(sink.messages[1])[0]


def test_flapping_value_sends_one_mail(passes: Passes, sink: SmtpSink) -> None:
    for i in range(20):
        passes.run(db1=passes.ok(cpu=80.5 if i % 2 else 79.5,
                                 disks={"/": 85.5 if i % 2 else 84.5}))
    assert [m["Subject"] for m in sink.messages] == ["[osmon] WARNING db1 disk / 85.5%"]


def test_host_down_with_three_metrics_over_threshold_is_one_mail(passes: Passes,
                                                                 sink: SmtpSink) -> None:
    hot = {"cpu": 99, "memory": 99, "swap": 99}
    for _ in range(3):
        passes.run(db1=passes.ok(**hot), web1=passes.ok("web1"))
    assert len(sink.messages) == 1  # the three metrics, in one digest
    assert sink.messages[0]["Subject"] == "[osmon] CRITICAL db1 cpu 99%  (+2 more)"
    for _ in range(5):
        passes.run(db1=passes.failed(), web1=passes.ok("web1"))
    assert len(sink.messages) == 2
    down = sink.messages[1]
    assert down["Subject"] == "[osmon] CRITICAL db1 down"
    text, _html = bodies(down)
    assert "db1 is down: timeout" in text
    assert "cpu" not in text and "RESOLVED" not in text


def test_digest_groups_a_pass_and_links_to_the_dashboard(passes: Passes,
                                                         sink: SmtpSink) -> None:
    passes.run(db1=passes.ok(disks={"/": 97, "/var": 90}), web1=passes.ok("web1", swap=60))
    for _ in range(2):
        passes.run(db1=passes.ok(disks={"/": 97, "/var": 90}), web1=passes.ok("web1", swap=60))
    assert len(sink.messages) == 2
    first = sink.messages[0]
    assert first["Subject"] == "[osmon] CRITICAL db1 disk / 97%  (+1 more)"
    assert first["From"] == "osmon@example.org"
    assert first["To"] == "ops@example.org, boss@example.org"
    assert sorted(sink.recorder.envelopes[0][1]) == ["boss@example.org", "ops@example.org"]
    assert first["Auto-Submitted"] == "auto-generated"
    text, html = bodies(first)
    assert text.index("db1 disk / 97%") < text.index("db1 disk /var 90%")
    assert "https://osmon.example.org/hosts/db1\n" in text
    assert "https://osmon.example.org/hosts/db1/charts/disk.svg?range=24h" in text
    assert 'href="https://osmon.example.org/hosts/db1/charts/disk.svg?range=24h"' in html
    assert "since 2026-11-21T22:00:00Z" in text
    assert "threshold 95%" in text
    assert sink.messages[1]["Subject"] == "[osmon] WARNING web1 swap 60%"


def test_smtp_down_then_up_delivers_each_mail_once(passes: Passes, sink: SmtpSink,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    sink.stop()
    caplog.set_level(logging.INFO, logger="collector")
    passes.run(db1=passes.ok(disks={"/": 90}))
    assert len(notify.pending(passes.state_dir)) == 1
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "connection refused" in warnings[0].getMessage()
    for _ in range(3):
        passes.run(db1=passes.ok(disks={"/": 90}))
    passes.run(db1=passes.ok(disks={"/": 97}))  # escalation while the server is down
    assert len(notify.pending(passes.state_dir)) == 2
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1  # said once
    sink.start()
    passes.run(db1=passes.ok(disks={"/": 97}))
    assert [m["Subject"] for m in sink.messages] == ["[osmon] WARNING db1 disk / 90%",
                                                     "[osmon] CRITICAL db1 disk / 97%"]
    assert notify.pending(passes.state_dir) == []
    assert "works again" in caplog.records[-1].getMessage()
    for _ in range(3):
        passes.run(db1=passes.ok(disks={"/": 97}))
    assert len(sink.messages) == 2
    ids = {m["Message-ID"] for m in sink.messages}
    assert len(ids) == 2
    email_events = [(r["level"], r["message"]) for r in alert_store.history(passes.state_dir)
                    if r["event"] == "email"]
    assert [level for level, _message in email_events] == ["ok", "warning"]  # newest first
    assert "e-mail cannot be sent: connection refused" in email_events[1][1]


def test_no_time_left_keeps_the_mail_for_the_next_pass(passes: Passes, sink: SmtpSink) -> None:
    passes.run(deadline_s=0, db1=passes.ok(disks={"/": 90}))
    assert sink.messages == [] and len(notify.pending(passes.state_dir)) == 1
    passes.run(db1=passes.ok(disks={"/": 90}))
    assert len(sink.messages) == 1 and notify.pending(passes.state_dir) == []


def test_smtp_disabled_keeps_history_and_writes_no_outbox(tmp_path: Path) -> None:
    passes = Passes(make_config(tmp_path))
    passes.run(db1=passes.ok(disks={"/": 90}))
    assert notify.pending(passes.state_dir) == []
    assert [h["event"] for h in alert_store.history(passes.state_dir)] == ["problem"]


def test_history_and_active_alerts_for_the_dashboard(passes: Passes, sink: SmtpSink) -> None:
    passes.run(db1=passes.ok(disks={"/": 90}), web1=passes.ok("web1", disks={"/": 99}))
    passes.run(db1=passes.ok(disks={"/": 60}), web1=passes.ok("web1", disks={"/": 99}))
    passes.run(db1=passes.ok(disks={"/": 60}), web1=passes.failed("web1"))
    passes.run(db1=passes.ok(disks={"/": 60}), web1=passes.failed("web1"))
    active = alert_store.active_alerts(passes.state_dir)
    assert [(a["host"], a["metric"], a["item"], a["level"]) for a in active] == [
        ("web1", "disk", "/", "critical"), ("web1", "down", None, "critical")]
    assert active[0] == {"host": "web1", "metric": "disk", "item": "/", "level": "critical",
                         "value": 99.0, "threshold": 95.0, "since": "2026-11-21T22:00:00Z",
                         "message": "disk / on web1 is at 99% (critical at 95%)"}
    rows = alert_store.history(passes.state_dir)
    assert [(r["host"], r["metric"], r["event"], r["level"]) for r in rows] == [
        ("web1", "down", "problem", "critical"), ("db1", "disk", "recovery", "ok"),
        ("web1", "disk", "problem", "critical"), ("db1", "disk", "problem", "warning")]
    assert set(rows[0]) == {"ts", "host", "metric", "item", "event", "level", "value",
                            "threshold", "message"}
    assert rows[0]["ts"] == "2026-11-21T22:03:00Z"
    assert [r["event"] for r in alert_store.history(passes.state_dir, host="db1")] == [
        "recovery", "problem"]
    assert len(alert_store.history(passes.state_dir, limit=1)) == 1


def test_history_survives_a_torn_line_and_rotates(passes: Passes, sink: SmtpSink,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    passes.run(db1=passes.ok(disks={"/": 90}))
    path = passes.state_dir / alert_store.HISTORY_FILE
    with open(path, "ab") as fh:
        fh.write(b'{"ts": "2026-11-21T22:0')  # a writer killed mid-line
    monkeypatch.setattr(alert_store, "HISTORY_MAX_BYTES", 10)
    passes.run(db1=passes.ok(disks={"/": 50}))
    assert [r["event"] for r in alert_store.history(passes.state_dir)] == ["recovery", "problem"]
    assert (passes.state_dir / (alert_store.HISTORY_FILE + ".1")).exists()


def test_corrupt_state_is_reported_and_rebuilt(passes: Passes, sink: SmtpSink,
                                               caplog: pytest.LogCaptureFixture) -> None:
    passes.run(db1=passes.ok(disks={"/": 90}))
    state_file = passes.state_dir / alert_store.STATE_FILE
    state_file.write_text('{"version": 1, "hosts": {', encoding="utf-8")
    assert alert_store.active_alerts(passes.state_dir) == []  # the reader does not crash
    passes.run(db1=passes.ok(disks={"/": 90}))
    assert any("corrupt" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    assert (passes.state_dir / "alerts.json.corrupt").exists()
    assert len(sink.messages) == 2  # the problem is notified again: better twice than never
    passes.run(db1=passes.ok(disks={"/": 90}))
    assert len(sink.messages) == 2
    assert alert_store.active_alerts(passes.state_dir)[0]["item"] == "/"
    state_events = [r for r in alert_store.history(passes.state_dir) if r["event"] == "state"]
    assert len(state_events) == 1 and "corrupt" in state_events[0]["message"]


def test_untrusted_text_is_escaped_in_the_html_mail(passes: Passes, sink: SmtpSink) -> None:
    mount = '/mnt/<img src=x onerror=alert(1)>"&'
    checks = {"web<b>": {"state": 2, "output": "CRITICAL <script>alert(2)</script>", "perf": {}}}
    for _ in range(2):  # a check needs two passes
        passes.run(db1=passes.ok(disks={mount: 99}, checks=checks))
    assert len(sink.messages) == 2
    for msg in sink.messages:
        text, html = bodies(msg)
        assert "<img" not in html and "<script" not in html and "<b>" not in html
    _text, html = bodies(sink.messages[0])
    assert "&lt;img src=x onerror=alert(1)&gt;&#34;&amp;" in html
    text, html = bodies(sink.messages[1])
    assert "check web&lt;b&gt; on db1 is CRITICAL: CRITICAL &lt;script&gt;alert(2)&lt;/script&gt;" \
        in html
    assert "check web<b> on db1 is CRITICAL: CRITICAL <script>alert(2)</script>" in text


@pytest.mark.parametrize("mount", ["/x\r\nBcc: evil@example.org\r\n\r\nbody",
                                   "/x\nBcc: evil@example.org", "/x\u2028Bcc: evil@example.org",
                                   "/x\x0bBcc: evil@example.org\x85"])
def test_a_mount_point_cannot_inject_mail_headers(passes: Passes, sink: SmtpSink,
                                                  mount: str) -> None:
    passes.run(db1=passes.ok(disks={mount: 99}))
    [msg] = sink.messages
    [(_sender, recipients, raw)] = sink.recorder.envelopes
    assert sorted(recipients) == ["boss@example.org", "ops@example.org"]
    assert msg["Bcc"] is None and b"\nBcc:" not in raw
    assert msg["Subject"].startswith("[osmon] CRITICAL db1 disk /x Bcc: evil@example.org")
    assert "\n" not in msg["Subject"]


def test_a_host_flapping_hundreds_of_mounts_cannot_flood_the_history() -> None:
    """The history rotates at a fixed size: one host's burst is capped, others keep theirs."""
    from collector.alerts.hook import HISTORY_PER_HOST, history_records
    from collector.alerts.rules import Notification

    def note(host: str | None, item: str, level: str = "warning") -> Notification:
        return Notification(event="problem", level=level, host=host, metric="disk", item=item,
                            value=97.0, threshold=95.0, since="2026-11-21T22:41:00Z",
                            message=f"disk {item} on {host} at 97 %")

    notes = [note("evil", f"/mnt/{i}") for i in range(250)] + [note("evil", "/", "critical")]
    notes += [note("good", "/"), note("good", "/var"), note(None, "CERTFR-2026-ALE-001", "info")]
    records = history_records(notes, "2026-11-21T22:41:00Z")
    evil = [r for r in records if r["host"] == "evil"]
    assert len(evil) == HISTORY_PER_HOST + 1
    assert ("/", "critical") in [(r["item"], r["level"]) for r in evil]  # the worst is kept
    assert evil[-1]["event"] == "summary" and evil[-1]["value"] == 251
    assert evil[-1]["message"] == (f"{251 - HISTORY_PER_HOST} more events of evil this pass "
                                   "were not recorded (see the e-mail)")
    assert [r["item"] for r in records if r["host"] == "good"] == ["/", "/var"]
    assert [r["item"] for r in records if r["host"] == ""] == ["CERTFR-2026-ALE-001"]


def test_an_unreadable_alert_state_is_left_alone_and_its_recoveries_still_come(
        passes: Passes, sink: SmtpSink, caplog: pytest.LogCaptureFixture) -> None:
    """A read error is not corruption: setting the file aside would forget the open alert,
    and its recovery would never be mailed."""
    passes.run(db1=passes.failed())
    passes.run(db1=passes.failed())
    assert [m["Subject"] for m in sink.messages] == ["[osmon] CRITICAL db1 down"]
    state_file = passes.state_dir / alert_store.STATE_FILE
    aside = state_file.with_name("saved-by-the-test")
    state_file.rename(aside)
    state_file.mkdir()  # reading it fails (EISDIR) as an I/O error would: it is not corrupt

    passes.run(db1=passes.ok())

    assert state_file.is_dir() and not state_file.with_name("alerts.json.corrupt").exists()
    assert len(sink.messages) == 1  # nothing judged, nothing mailed
    assert any("cannot read it" in r.getMessage() for r in caplog.records
               if r.levelno == logging.ERROR)
    events = [r for r in alert_store.history(passes.state_dir) if r["event"] == "state"]
    assert events and "alerts are not evaluated" in events[0]["message"]

    state_file.rmdir()  # the disk answers again
    aside.rename(state_file)
    passes.run(db1=passes.ok())
    assert sink.messages[-1]["Subject"] == "[osmon] RESOLVED db1 down"


def test_an_alert_state_from_a_newer_osmon_is_refused_and_left_as_it_is(
        passes: Passes, sink: SmtpSink, caplog: pytest.LogCaptureFixture) -> None:
    state_file = passes.state_dir / alert_store.STATE_FILE
    state_file.parent.mkdir(parents=True, exist_ok=True)
    newer = b'{"version": 2, "hosts": {"db1": {"alerts": {"future": {}}}}}\n'
    state_file.write_bytes(newer)
    for _ in range(2):
        passes.run(db1=passes.ok(disks={"/": 99}))
    assert state_file.read_bytes() == newer
    assert not state_file.with_name("alerts.json.corrupt").exists()
    assert sink.messages == []
    assert any("written by a newer osmon (state version 2, this one reads 1)" in r.getMessage()
               for r in caplog.records if r.levelno == logging.ERROR)
