"""``osmon silence`` and ``osmon ack`` as an admin types them: output, exit codes, what is
stored and recorded, and bad input refused with nothing changed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mail_fixtures import make_config, ok_sample

from collector import cli
from collector.alerts import muting_store
from collector.alerts import rules as alert_rules
from collector.alerts import state as alert_store
from collector.config import Config
from collector.times import utc_now

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setenv("USER", "alice")
    monkeypatch.setenv("LOGNAME", "alice")
    monkeypatch.delenv("SUDO_USER", raising=False)
    return make_config(tmp_path, hosts=("db1", "web1", "web2"), host_options={
        "web1": 'tags = ["web"]', "web2": 'tags = ["web"]'})


def osmon(config: Config, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["--config", str(config.path), *args])
    out, err = capsys.readouterr()
    return code, out, err


def silences_file(config: Config) -> Path:
    return config.state_dir / muting_store.SILENCES_FILE


def test_add_prints_the_id_on_its_last_line_then_list_and_remove(
        config: Config, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = osmon(config, capsys, "silence", "add", "--tag", "web", "--metric", "disk",
                           "--item", "/var", "--for", "90m", "--reason", "resizing /var")
    assert (code, err) == (0, "")
    first, sid = out.splitlines()
    assert first.startswith("silenced hosts tagged web, disk /var from ")
    assert first.endswith(": resizing /var") and len(sid) == 8
    code, out, _err = osmon(config, capsys, "silence", "list")
    header, row = out.splitlines()
    assert header.split()[:3] == ["ID", "HOSTS", "METRIC"]
    assert row.split()[:6] == [sid, "tag:web", "disk", "/var", "now", row.split()[5]]
    assert row.endswith("alice  resizing /var")
    code, out, _err = osmon(config, capsys, "silence", "list", "--json")
    [listed] = json.loads(out)["silences"]
    assert (listed["id"], listed["tag"], listed["author"], listed["active"]) == (
        sid, "web", "alice", True)
    code, out, _err = osmon(config, capsys, "silence", "remove", sid)
    assert code == 0 and out.startswith(f"removed silence {sid} (hosts tagged web, disk /var)")
    assert osmon(config, capsys, "silence", "list")[1] == "no silence in force or to come\n"
    events = [r["event"] for r in alert_store.history(config.state_dir)]
    assert events == ["silence-removed", "silence-added"]


@pytest.mark.parametrize("args, words", [
    (["--host", "db1", "--for", "-1h"], "a duration must be positive, like 2h or 30m: got '-1h'"),
    (["--host", "db2", "--for", "1h"], "no host named 'db2' in"),
    (["--tag", "webb", "--for", "1h"], "no host has the tag 'webb' in"),
    (["--host", "db1", "--start", "2099-01-01T12:00Z", "--until", "2099-01-01T11:00Z"],
     "would end (2099-01-01 11:00:00 UTC) before it starts (2099-01-01 12:00:00 UTC)"),
    (["--host", "db1", "--until", "2020-01-01T00:00Z"], "before it starts"),
    (["--host", "db1", "--for", "2y"], "not a duration: '2y'"),
    (["--host", "db1", "--for", "400d"], "a silence lasts at most 366 days"),
    (["--host", "db1", "--for", "1h", "--metric", "disks"], "unknown metric 'disks' (did you "
                                                             "mean 'disk'?)"),
    (["--host", "db1", "--for", "1h", "--item", "/var"], "an item needs its metric"),
    (["--host", "db1", "--for", "1h", "--metric", "check", "--item", "nginx"],
     "no check named 'nginx' runs on the host(s) silenced"),
], ids=["negative", "unknown-host", "unknown-tag", "end-before-start", "in-the-past",
        "bad-unit", "too-long", "unknown-metric", "item-alone", "unknown-check"])
def test_bad_input_is_one_clear_line_exit_2_and_nothing_changes(
        config: Config, capsys: pytest.CaptureFixture[str], args: list[str], words: str) -> None:
    code, out, err = osmon(config, capsys, "silence", "add", *args, "--reason", "why")
    assert code == 2 and out == ""
    assert err.startswith("osmon silence: the silence was not added: ") and words in err, err
    assert len(err.splitlines()) == 1
    assert not silences_file(config).exists()
    assert alert_store.history(config.state_dir) == []


def test_every_problem_is_said_at_once(config: Config,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = osmon(config, capsys, "silence", "add", "--host", "db9", "--for", "-1h",
                            "--reason", " ")
    assert code == 2
    assert "no host named 'db9'" in err and "duration: a duration must be positive" in err
    assert "a reason is required" in err


def test_remove_of_an_unknown_id_is_exit_2(config: Config,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = osmon(config, capsys, "silence", "remove", "deadbeef")
    assert code == 2
    assert err == ("osmon silence: no silence 'deadbeef' to remove (current silences: none; see "
                   "osmon silence list)\n")


def test_the_author_is_the_person_behind_sudo(config: Config,
                                              capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "root")
    monkeypatch.setenv("SUDO_USER", "carol")
    osmon(config, capsys, "silence", "add", "--host", "db1", "--for", "1h", "--reason", "x")
    [silence] = muting_store.read(config.state_dir)[0].silences
    assert silence.author == "carol"


def test_a_time_without_a_zone_is_the_servers_local_time(config: Config) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TZ="UTC-2")  # POSIX: two hours east of UTC
    result = subprocess.run(
        [sys.executable, "-m", "collector", "--config", str(config.path), "silence", "add",
         "--host", "db1", "--start", "2099-01-01 12:00", "--until", "2099-01-01T13:30",
         "--reason", "window"], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert "from 2099-01-01 10:00 UTC until 2099-01-01 11:30 UTC" in result.stdout
    [silence] = json.loads(silences_file(config).read_text())["silences"]
    assert (silence["start"], silence["end"]) == ("2099-01-01T10:00:00Z", "2099-01-01T11:30:00Z")


def test_ack_an_active_alert(config: Config, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = osmon(config, capsys, "ack", "db1", "disk", "/", "--reason", "x")
    assert code == 2
    assert err == ("osmon ack: nothing was acknowledged: db1 has no active disk / alert to "
                   "acknowledge (active now: none)\n")
    now = utc_now()
    state, _notes = alert_rules.evaluate(config, None, {"db1": ok_sample(
        "db1", now, disks={"/": 91.0})}, now)
    alert_store.save_state(config.state_dir, state)
    code, out, err = osmon(config, capsys, "ack", "db1", "disk", "/", "--reason",
                           "cleaning up the logs")
    assert (code, err) == (0, "")
    assert out.startswith("acknowledged disk / on db1 (warning since ")
    assert out.endswith("no reminders until it recovers or gets worse\n")
    [record] = alert_store.history(config.state_dir)
    assert (record["event"], record["host"], record["item"], record["message"]) == (
        "ack", "db1", "/", "disk / on db1 acknowledged by alice: cleaning up the logs")
    code, _out, err = osmon(config, capsys, "ack", "db1", "dsk", "--reason", "x")
    assert code == 2 and "unknown metric 'dsk' (did you mean 'disk'?)" in err


def test_help_lists_the_metrics_and_the_time_formats(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["silence", "add", "--help"])
    out = " ".join(capsys.readouterr().out.split())  # as read, whatever the line breaks
    assert "disk_full, load" in out and "hostkey, down, silent" in out
    assert "1h30m" in out and "06:00" in out
