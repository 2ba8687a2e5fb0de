"""``osmon status``: the overview in a terminal, run as the real console script on a real store.

The data directory is written by the real store, alert rules, alert store and pass log at the
real "now" (the subprocess reads the clock), so ages are matched loosely where a slow machine
could add seconds.  Terminals are real pseudo-terminals (:mod:`pty`), not faked ``isatty``.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from web_fixtures import SECRET_ENV, SMTP_PASSWORD, Site, failed_sample, fill, make_site

from collector.alerts import rules as alert_rules
from collector.alerts import state as alert_store
from collector.commands.status import CLEAR, wants_colour
from collector.store import passlog
from collector.times import format_ts, utc_now
from collector.views.status_report import terminal_safe

OSMON = Path(sys.executable).with_name("osmon")
#: What a hostile host plants: SGR (recolour), ED (clear screen), OSC (retitle the window).
EVIL_MOUNT = "\x1b[31m/evil\x1b[0m\x1b[2J"
EVIL_CHECK = "\x1b]0;pwned\x07job"
EVIL_PROCESS = "\x1b[8minvisible\x1b[0m"
EXPECTED_ORDER = ["db1", "disk1", "evil", "chk", "old", "central"]
SGR = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def fleet(tmp_path: Path) -> Site:
    """One host per status, an alert on disk1 and a pass recorded just now."""
    now = utc_now()
    site = make_site(tmp_path, [{"name": n} for n in
                                ("central", "disk1", "db1", "old", "chk", "evil")]
                     + [{"name": "off", "enabled": False}], now=now)
    fill(site.store, "central", now - timedelta(seconds=42))
    fill(site.store, "disk1", now, disk=97.0, mount="/data")
    # The SSH layer may quote the identity file: the output must not reveal where keys live.
    site.store.append("db1", failed_sample(
        "db1", now, kind="auth", message=f"cannot read {site.identity_file} \x1b[2J"))
    fill(site.store, "old", now - timedelta(minutes=10, seconds=30))
    fill(site.store, "chk", now, checks={
        "procs": {"state": 1, "output": "PROCS WARNING: 3 processes", "perf": {}},
        "load": {"state": 0, "output": "LOAD OK", "perf": {}}})
    fill(site.store, "evil", now, mount=EVIL_MOUNT, processes=[
        {"pid": 666, "user": "x", "name": EVIL_PROCESS, "cpu_percent": 1.0, "mem_percent": 1.0,
         "rss": 1}], checks={EVIL_CHECK: {"state": 2, "output": "CRITICAL", "perf": {}}})
    fill(site.store, "off", now)
    state_dir = site.config.state_dir
    state, _notes = alert_rules.evaluate(site.config, alert_store.load_state(state_dir)[0],
                                         {"disk1": site.store.latest("disk1")}, now)
    alert_store.save_state(state_dir, state)
    record_pass(site, now)
    return site


def record_pass(site: Site, ts: datetime) -> None:
    passlog.record(site.config.state_dir, {"ts": format_ts(ts), "duration_s": 1.25, "hosts": 6,
                                           "ok": 5, "failed": 1, "skipped": False})


def env(**extra: str) -> dict[str, str]:
    result = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "OSMON_CONFIG")}
    result[SECRET_ENV] = SMTP_PASSWORD
    result.update(extra)
    return result


def osmon_status(site: Site, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(OSMON), "--config", str(site.config.path), "status", *args],
                          capture_output=True, text=True, env=env(**extra_env), timeout=60)


def host_rows(text: str) -> dict[str, str]:
    """Host name -> its line, from the lines after the header."""
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("STATUS"))
    return {line.split()[1]: line for line in lines[header + 1:] if line.strip()}


# -- plain text ----------------------------------------------------------------------------------
def test_piped_output_is_plain_worst_first_with_every_column(fleet: Site) -> None:
    result = osmon_status(fleet)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "\x1b" not in out  # piped: no colour, and nothing a host sent gets through
    lines = out.splitlines()
    assert re.match(r"collector: ok, last pass \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(\d+ s ago\), "
                    r"6 hosts, 1 failed, 1\.2 s$", lines[0])
    assert lines[1].split() == ["STATUS", "HOST", "LAST", "SEEN", "CPU", "MEM", "DISK",
                                "ALERTS", "CHECKS", "NOTE"]
    rows = host_rows(out)
    assert list(rows) == EXPECTED_ORDER  # down, critical x2 by name, warning, stale, ok
    assert [row.split()[0] for row in rows.values()] == [
        "down", "critical", "critical", "warning", "stale", "ok"]
    assert re.search(r"^ok +central +\d+ s ago +12\.5 % +40\.0 % +/ 50\.0 % +0 +- *$",
                     rows["central"])
    assert "/data 97.0 %" in rows["disk1"]
    assert re.search(r"97\.0 % +1 +-", rows["disk1"])  # one active alert, no failing check
    assert "procs WARNING" in rows["chk"] and "load" not in rows["chk"]  # OK checks are not listed
    assert re.search(r"stale +old +10 min ago", rows["old"])
    # db1 never answered: "never", not the age of its last failed try.
    assert re.search(r"down +db1 +never +- +- +- +0 +- +auth: cannot read \[hidden\]",
                     rows["db1"])
    assert "off" not in rows  # enabled = false
    assert str(fleet.identity_file) not in out and SMTP_PASSWORD not in out


def test_escapes_from_hosts_are_shown_as_text_never_sent(fleet: Site) -> None:
    for args in ((), ("--color", "always")):
        out = osmon_status(fleet, *args).stdout
        assert "\x1b" not in SGR.sub("", out)  # only our own colour codes remain
        assert "\x07" not in out
        rows = host_rows(SGR.sub("", out))
        assert "?[31m/evil?[0m?[2J 50.0 %" in rows["evil"]
        assert "?]0;pwned?job CRITICAL" in rows["evil"]
        assert rows["db1"].endswith("?[2J")
        assert "invisible" not in out  # process names are not part of the overview


def test_color_always_paints_the_status_words_and_keeps_the_labels(fleet: Site) -> None:
    out = osmon_status(fleet, "--color", "always").stdout
    assert "\x1b[1;31mdown\x1b[0m" in out
    assert "\x1b[31mcritical\x1b[0m" in out
    assert "\x1b[33mwarning\x1b[0m" in out
    assert "\x1b[35mstale\x1b[0m" in out
    assert "\x1b[32mok\x1b[0m" in out
    assert "\x1b[31m/data 97.0 %\x1b[0m" in out  # the value over its threshold too
    # Colour adds codes and nothing else: without them, the text is the plain text.
    plain, never = SGR.sub("", out), osmon_status(fleet, "--color", "never").stdout
    assert _same_clock(plain) == _same_clock(never)
    assert list(host_rows(plain)) == EXPECTED_ORDER


def _same_clock(text: str) -> str:
    """Two runs a second apart may differ only in their "N s ago"."""
    return re.sub(r"\d+ s ago", "N s ago", text)


def test_stale_collector_and_missing_data_are_said(fleet: Site, tmp_path: Path) -> None:
    record_pass(fleet, utc_now() - timedelta(minutes=30))
    first = osmon_status(fleet).stdout.splitlines()[0]
    assert first.startswith("collector: stale, last pass ")
    assert "(30 min ago)" in first and "stopped" in first and "osmon cron" in first

    (tmp_path / "empty").mkdir()
    empty = make_site(tmp_path / "empty", [{"name": "web1"}])
    out = osmon_status(empty).stdout
    assert out.splitlines()[0].startswith("collector: stale, no pass recorded yet")
    assert re.search(r"^stale +web1 +never +- +- +- +0 +- +no data yet$", out, re.M)


def test_tag_selects_hosts(tmp_path: Path) -> None:
    site = make_site(tmp_path, [{"name": "web1", "tags": ["web"]}, {"name": "db1"}])
    fill(site.store, "web1", utc_now())
    fill(site.store, "db1", utc_now())
    assert list(host_rows(osmon_status(site, "--tag", "web").stdout)) == ["web1"]


# -- JSON ----------------------------------------------------------------------------------------
def test_json_matches_the_text_and_holds_no_secret(fleet: Site) -> None:
    result = osmon_status(fleet, "--json", "--color", "always")
    assert result.returncode == 0
    assert "\x1b" not in result.stdout  # JSON escapes control characters (\u001b)
    assert SMTP_PASSWORD not in result.stdout and str(fleet.identity_file) not in result.stdout
    doc = json.loads(result.stdout)
    assert sorted(doc) == ["collector", "counts", "generated", "hosts", "shard", "silenced"]
    assert doc["shard"] is None  # not one shard of several
    assert doc["collector"]["stale"] is False and doc["collector"]["ts"]
    assert doc["counts"] == {"ok": 1, "stale": 1, "warning": 1, "critical": 2, "down": 1}
    hosts = {h["name"]: h for h in doc["hosts"]}
    assert [h["name"] for h in doc["hosts"]] == EXPECTED_ORDER
    assert [h["status"] for h in doc["hosts"]] == [
        r.split()[0] for r in host_rows(osmon_status(fleet).stdout).values()]
    assert (hosts["disk1"]["disk"], hosts["disk1"]["disk_mount"]) == (97.0, "/data")
    assert hosts["disk1"]["alerts"] == 1
    assert hosts["chk"]["failing_checks"] == [{"name": "procs", "state": "WARNING"}]
    # Scripts get host data exactly as stored; escaping is the JSON encoder's job.
    assert hosts["evil"]["disk_mount"] == EVIL_MOUNT
    assert hosts["evil"]["failing_checks"] == [{"name": EVIL_CHECK, "state": "CRITICAL"}]
    assert hosts["db1"]["error"].startswith("auth: cannot read [hidden]")
    assert hosts["central"]["cpu"] == 12.5 and hosts["central"]["memory"] == 40.0
    assert 42 <= hosts["central"]["age_s"] < 100
    assert set(hosts["central"]) >= {"status", "name", "ts", "age_s", "cpu", "memory", "disk",
                                     "disk_mount", "alerts", "failing_checks", "reasons", "error"}


# -- terminals -----------------------------------------------------------------------------------
class Terminal:
    """``osmon status ...`` with its stdout, stderr and stdin on a real pseudo-terminal."""

    def __init__(self, site: Site, *args: str, **extra_env: str) -> None:
        master, slave = pty.openpty()
        self.master = master
        self.proc = subprocess.Popen(
            [str(OSMON), "--config", str(site.config.path), "status", *args],
            stdin=slave, stdout=slave, stderr=slave, env=env(TERM="xterm", **extra_env))
        os.close(slave)
        self.output = ""

    def read_until(self, done: re.Pattern[str], timeout_s: float = 30) -> str:
        """Read until ``done`` matches the output so far, colour codes left out (or until the
        process ends)."""
        deadline = time.monotonic() + timeout_s
        while not done.search(SGR.sub("", self.output)) and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], deadline - time.monotonic())
            if not ready:
                break
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the process has closed the terminal
                break
            if not chunk:
                break
            self.output += chunk.decode("utf-8", "replace")
        return self.output

    def close(self) -> int:
        self.read_until(re.compile(r"(?!)"), timeout_s=10)  # drain until the process ends
        return self.proc.wait(timeout=30)

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.proc.poll() is None:  # a failed assertion must not leave a watch running
            self.proc.kill()
            self.proc.wait(timeout=30)
        os.close(self.master)


def test_a_terminal_gets_colour_unless_no_color(fleet: Site) -> None:
    with Terminal(fleet) as term:
        coloured = term.read_until(re.compile(r"central"))
        assert term.close() == 0
    assert "\x1b[32mok\x1b[0m" in coloured and "\x1b[1;31mdown\x1b[0m" in coloured

    with Terminal(fleet, NO_COLOR="1") as term:
        plain = term.read_until(re.compile(r"central"))
        assert term.close() == 0
    assert "\x1b" not in plain and re.search(r"^down +db1", plain, re.M)


def test_watch_redraws_in_place_until_ctrl_c(fleet: Site) -> None:
    snapshot = re.escape(CLEAR) + r"osmon status every 0\.2 s, [^\r\n]+ \(Ctrl-C to stop\)\r\n" \
        r"collector: .*?\r\nok +central[^\r\n]*\r\n"
    two = re.compile(f"{snapshot}.*?{snapshot}", re.S)
    with Terminal(fleet, "--watch", "0.2") as term:
        out = term.read_until(two)
        assert two.search(SGR.sub("", out)), out[-2000:]
        term.proc.send_signal(signal.SIGINT)
        assert term.close() == 0  # Ctrl-C is how a watch ends: not an error
    assert "Traceback" not in term.output and "interrupted" not in term.output
    screens = term.output.split(CLEAR)[1:]
    assert len(screens) >= 2
    assert list(host_rows(SGR.sub("", screens[1]))) == EXPECTED_ORDER


def test_watch_piped_prints_snapshots_separated_by_a_blank_line(fleet: Site) -> None:
    with subprocess.Popen([str(OSMON), "--config", str(fleet.config.path), "status",
                           "--watch", "0.2"], stdout=subprocess.PIPE, text=True,
                          env=env()) as proc:
        assert proc.stdout is not None
        lines: list[str] = []
        while sum(line.startswith("collector:") for line in lines) < 2:
            lines.append(proc.stdout.readline())
            assert lines[-1], "osmon status --watch ended by itself"
        lines.append(proc.stdout.readline())  # the second snapshot's header
        proc.send_signal(signal.SIGINT)
        rest = proc.stdout.read()  # communicate() would skip what readline() has buffered
        proc.wait(timeout=30)
    assert proc.returncode == 0
    text = "".join(lines) + rest
    assert "\x1b" not in text
    first, second = text.split("\n\ncollector:")[:2]
    assert list(host_rows(first)) == EXPECTED_ORDER
    assert list(host_rows("collector:" + second)) == EXPECTED_ORDER


def test_watch_needs_a_sensible_interval(fleet: Site) -> None:
    result = osmon_status(fleet, "--watch", "0")
    assert result.returncode == 2
    assert "--watch: must be at least 0.1 s" in result.stderr


# -- pure parts ----------------------------------------------------------------------------------
def test_terminal_safe_replaces_every_control_or_format_character() -> None:
    assert terminal_safe("\x1b[2Jx\x9b31m\u202eevil\u200b\n\r\t\x00\x7f") == "?[2Jx?31m?evil??????"
    assert terminal_safe("/srv/données é 日本") == "/srv/données é 日本"
    assert terminal_safe("a" * 50, 10) == "aaaaaaa..."


@pytest.mark.parametrize(("choice", "tty", "environ", "expected"), [
    ("auto", True, {}, True),
    ("auto", False, {}, False),
    ("auto", True, {"NO_COLOR": "1"}, False),
    ("auto", True, {"NO_COLOR": ""}, True),  # no-color.org: set *and* not empty
    ("auto", True, {"TERM": "dumb"}, False),
    ("always", False, {"NO_COLOR": "1"}, True),
    ("never", True, {}, False),
])
def test_colour_choice(choice: str, tty: bool, environ: dict[str, str], expected: bool) -> None:
    assert wants_colour(choice, tty, environ) is expected


def test_one_host_is_said_in_the_singular(tmp_path: Path) -> None:
    site = make_site(tmp_path, [{"name": "web1"}])
    fill(site.store, "web1", utc_now())
    passlog.record(site.config.state_dir, {"ts": format_ts(utc_now()), "duration_s": 0.5,
                                           "hosts": 1, "ok": 1, "failed": 0, "skipped": False})
    first = osmon_status(site).stdout.splitlines()[0]
    assert ", 1 host, 0 failed, " in first, first


def test_an_unknown_tag_is_said_as_such(tmp_path: Path) -> None:
    site = make_site(tmp_path, [{"name": "web1", "tags": ["web"]},
                                {"name": "old", "tags": ["legacy"], "enabled": False}])
    fill(site.store, "web1", utc_now())
    assert osmon_status(site, "--tag", "nosuch").stdout.splitlines()[-1] == (
        "(no host has the tag 'nosuch')")
    assert osmon_status(site, "--tag", "legacy").stdout.splitlines()[-1] == (
        "(no enabled host has the tag 'legacy')")
    (tmp_path / "empty").mkdir()
    empty = make_site(tmp_path / "empty", [{"name": "off", "enabled": False}])
    assert osmon_status(empty).stdout.splitlines()[-1] == "(no enabled host in the config)"
