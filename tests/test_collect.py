"""The pass as a whole and the commands around it: one line per enabled host, the lock, a
killed pass, hooks, and what ``osmon collect``, ``check`` and ``cron`` print."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
import types
import urllib.request
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import sshd as harness

from collector import cli
from collector import config as config_mod
from collector.config import Config
from collector.errors import LockHeld
from collector.passes import collect, probe_call
from collector.passes.collect import HostOutcome
from collector.store import passlog
from collector.store.lock import DataLock
from collector.store.samples import Store
from collector.views.progress import TerminalProgress

NOW = datetime(2026, 11, 21, 22, 41, 0, tzinfo=timezone.utc)
ROOT = Path(__file__).resolve().parent.parent
Inventory = Callable[..., Config]


def osmon(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``osmon ARGS`` in a child process, stdin/stdout/stderr not a terminal (as under cron)."""
    return subprocess.run([sys.executable, "-m", "collector", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def day_lines(config: Config, host: str) -> list[bytes]:
    return [line for path in sorted((config.settings.data_dir / "hosts" / host).glob("*.jsonl"))
            for line in path.read_bytes().splitlines()]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    """Poll for a state another process reaches (never a sleep standing in for time)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_every_enabled_host_gets_exactly_one_line_and_disabled_none(
        inventory: Inventory, refused_port: int) -> None:
    config = inventory(["central", "web1", "web2", "down", "retired"],
                       hosts={"central": {"local": True}, "down": {"port": refused_port},
                              "retired": {"enabled": False}})
    result = collect.run_pass(config, now=NOW)
    assert [o.host for o in result.outcomes] == ["central", "web1", "web2", "down"]
    assert (result.ok, result.failed) == (3, 1)
    for name in ("central", "web1", "web2", "down"):
        assert len(day_lines(config, name)) == 1
    assert not (config.settings.data_dir / "hosts" / "retired").exists()
    central = json.loads(day_lines(config, "central")[0])
    assert central["ok"] is True and central["collect"]["transport"] == "local"
    assert central["memory"]["total"] > 0
    last = passlog.last_pass(config.state_dir)
    assert last is not None
    assert {k: last[k] for k in ("ts", "hosts", "ok", "failed", "skipped")} == {
        "ts": "2026-11-21T22:41:00Z", "hosts": 4, "ok": 3, "failed": 1, "skipped": False}


def test_hooks_get_every_sample_and_a_failing_hook_does_not_stop_the_next(
        inventory: Inventory, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture, refused_port: int) -> None:
    calls: list[tuple[dict[str, Any], datetime, float]] = []

    def broken(*_args: Any) -> None:
        raise RuntimeError("rollup exploded")

    def record(config: Config, store: Store, samples: dict[str, Any], now: datetime,
               deadline: float) -> None:
        calls.append((samples, now, deadline - time.monotonic()))

    module = types.ModuleType("osmon_test_hooks")
    module.broken = broken  # type: ignore[attr-defined]
    module.record = record  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "osmon_test_hooks", module)
    monkeypatch.setattr(collect, "POST_PASS_HOOKS",
                        ("osmon_test_hooks:broken", "osmon_test_hooks:record"))
    config = inventory(["web1", "down"], hosts={"down": {"port": refused_port}})
    with caplog.at_level(logging.WARNING, logger="collector.passes.collect"):
        collect.run_pass(config, now=NOW)
    assert "osmon_test_hooks:broken failed" in caplog.text
    [(samples, now, budget)] = calls
    assert now == NOW and budget >= collect.MIN_HOOK_BUDGET_S - 1
    assert samples["web1"]["ok"] is True
    assert samples["down"]["error"]["kind"] == "unreachable"


def test_second_collect_while_one_runs_exits_3_and_records_the_skip(
        sshd: harness.Sshd, tmp_path: Path) -> None:
    # The first pass's host answers only once the test opens the gate: no race with a clock.
    gate = sshd.workdir / f"gate-{tmp_path.name}"
    slow = sshd.script(f"slow-{tmp_path.name}.sh",
                       f"cat >/dev/null\nfor i in $(seq 1200); do [ -e {gate} ] && break; "
                       f"sleep 0.05; done\nexec python3 -c 'print(1)'\n")
    path = sshd.write_hosts_toml(tmp_path / "hosts.toml", ["slow"],
                                 hosts={"slow": {"python": str(slow)}})
    first = subprocess.Popen([sys.executable, "-m", "collector", "--config", str(path),
                              "collect"], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        lock_file = tmp_path / "data" / ".lock"
        wait_for(lambda: lock_file.exists() and b"pid" in lock_file.read_bytes(),
                 "the first pass to take the lock")
        second = osmon("--config", str(path), "collect")
        assert second.returncode == 3
        assert second.stderr.startswith("osmon collect: another osmon collect is running since ")
        assert f"(pid {first.pid}); collect skipped" in second.stderr
        assert second.stdout == ""
        skipped = passlog.last_pass(tmp_path / "data" / "state")
        assert skipped is not None and skipped["skipped"] is True
        assert "another osmon collect is running" in skipped["reason"]
    finally:
        gate.touch()
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert out.startswith("slow: invalid-output: wrong shape")  # the pass ran to its end
    last = passlog.last_pass(tmp_path / "data" / "state")
    assert last is not None and last["skipped"] is False


def test_pass_killed_with_sigkill_leaves_readable_logs_and_the_next_pass_runs(
        sshd: harness.Sshd, tmp_path: Path) -> None:
    names = [f"h{i:02d}" for i in range(24)]
    path = sshd.write_hosts_toml(tmp_path / "hosts.toml", names, settings={"concurrency": 2})
    victim = subprocess.Popen([sys.executable, "-m", "collector", "--config", str(path),
                               "collect"], cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    hosts_dir = tmp_path / "data" / "hosts"
    try:
        wait_for(lambda: len(list(hosts_dir.glob("*/*.jsonl"))) >= 3, "the first samples")
    finally:
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(60)
    assert victim.returncode == -signal.SIGKILL
    config = config_mod.load(path)
    store = Store(config.settings.data_dir)
    written = store.hosts()
    assert 3 <= len(written) < len(names)  # killed midway
    for name in written:
        assert len(day_lines(config, name)) == 1  # whole or torn, never two
        list(store.samples(name, NOW.replace(year=2000)))  # readable, never an exception
        store.latest(name)
    # The lock of the killed pass is free again and the next pass appends whole lines.
    result = collect.run_pass(config, now=NOW.replace(year=2027))
    assert result.failed == 0
    for name in names:
        latest = store.latest(name)
        assert latest is not None and latest["ts"].startswith("2027-")


def test_run_collects_every_interval_and_serves_the_dashboard(sshd: harness.Sshd,
                                                              tmp_path: Path) -> None:
    """The quick start's ``osmon run``: passes on the interval, the dashboard beside them, and
    SIGTERM (a service manager stopping it) ends it cleanly."""
    path = sshd.write_hosts_toml(
        tmp_path / "hosts.toml", ["central", "web1"], hosts={"central": {"local": True}},
        settings={"interval_s": 5, "pass_deadline_s": 4, "host_deadline_s": 4})
    service = subprocess.Popen([sys.executable, "-m", "collector", "--config", str(path), "run",
                                "--port", "0"], cwd=ROOT, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    passes = tmp_path / "data" / "state" / passlog.FILE_NAME
    try:
        assert service.stderr is not None
        announced = service.stderr.readline()
        assert announced.startswith("osmon: dashboard on http://127.0.0.1:"), announced
        url = announced.split(" on ", 1)[1].strip()
        plan = service.stderr.readline()
        assert plan.startswith("osmon: a collection pass every 5 s for 2 hosts, ") and (
            "the first one now" in plan), plan
        done = service.stderr.readline()
        assert re.match(r"osmon: first pass done in [\d.]+ s: 2 ok, 0 failed; the next at "
                        r"\d\d:\d\d:\d\d UTC$", done), done
        wait_for(lambda: passes.exists() and len(passes.read_bytes().splitlines()) >= 2,
                 "two passes")
        with urllib.request.urlopen(url, timeout=30) as response:
            page = response.read().decode("utf-8")
        assert "central" in page and "web1" in page
    finally:
        service.send_signal(signal.SIGTERM)
        out, err = service.communicate(timeout=60)
    assert service.returncode == 0, err
    first, second = (json.loads(line) for line in passes.read_bytes().splitlines()[:2])
    assert (first["ok"], first["failed"], second["ok"]) == (2, 0, 2)
    gap = (datetime.fromisoformat(second["ts"].replace("Z", "+00:00"))
           - datetime.fromisoformat(first["ts"].replace("Z", "+00:00"))).total_seconds()
    assert gap >= 2.5, f"passes {gap} s apart: at least half the 5 s interval"
    config = config_mod.load(path)
    assert len(day_lines(config, "web1")) >= 2 and len(day_lines(config, "central")) >= 2


def test_collect_under_cron_prints_only_failed_hosts(sshd: harness.Sshd, tmp_path: Path,
                                                     refused_port: int) -> None:
    path = sshd.write_hosts_toml(tmp_path / "hosts.toml", ["web1", "db2"])
    quiet = osmon("--config", str(path), "collect")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    sshd.write_hosts_toml(path, ["web1", "db2"], hosts={"db2": {"port": refused_port}})
    noisy = osmon("--config", str(path), "collect")
    assert noisy.returncode == 0  # the pass ran; the failure is in the output and the log
    assert noisy.stdout == f"db2: unreachable: connection refused on 127.0.0.1:{refused_port}\n"
    assert noisy.stderr == ""


def test_collect_progress_when_asked(sshd: harness.Sshd, tmp_path: Path) -> None:
    path = sshd.write_hosts_toml(tmp_path / "hosts.toml", ["web1", "db2"])
    shown = osmon("--config", str(path), "collect", "--progress")
    assert shown.returncode == 0
    assert "osmon collect: 2/2 hosts" in shown.stderr
    assert "2 hosts, 2 ok, 0 failed" in shown.stderr
    single = sshd.write_hosts_toml(tmp_path / "one.toml", ["web1"])
    one = osmon("--config", str(single), "collect", "--progress")
    assert "osmon collect: 1 host, 1 ok, 0 failed in " in one.stderr, one.stderr


def test_terminal_progress_rewrites_one_line() -> None:
    stream = io.StringIO()
    progress = TerminalProgress(stream, "osmon collect", min_interval_s=0)
    outcome = HostOutcome("web1", {"ok": False})
    progress(outcome, 1, 3, 1)
    progress(outcome, 3, 3, 1)
    progress.clear()
    text = stream.getvalue()
    assert "\n" not in text
    assert "\rosmon collect: 1/3 hosts, 1 failed" in text
    assert "\rosmon collect: 3/3 hosts, 1 failed" in text
    assert text.endswith("\r")


def test_check_prints_a_table_and_fails_when_a_host_fails(sshd: harness.Sshd, tmp_path: Path,
                                                          refused_port: int) -> None:
    path = sshd.write_hosts_toml(
        tmp_path / "hosts.toml", ["central", "web1", "db2", "old"],
        hosts={"central": {"local": True}, "db2": {"port": refused_port},
               "old": {"enabled": False}})
    result = osmon("--config", str(path), "check")
    assert result.returncode == 1, result.stderr
    rows = result.stdout.splitlines()
    assert rows[0].split() == ["HOST", "ADDRESS", "PROBE", "RESULT"]
    # Columns are aligned: every cell starts where its heading does.
    starts = [rows[0].index(h) for h in ("HOST", "ADDRESS", "PROBE", "RESULT")] + [None]
    central, web1, db2 = ([row[a:b].strip() for a, b in zip(starts, starts[1:])]
                          for row in rows[1:4])
    assert central[:2] == ["central", "local"] and central[2].startswith("python 3.")
    assert central[3].startswith("ok ")
    assert web1[:2] == ["web1", f"{sshd.user}@127.0.0.1:{sshd.port}"]
    assert web1[2].startswith("python 3.") and web1[3].endswith(" s")
    assert web1[3].startswith("ok ")
    assert db2[2:] == ["-", f"unreachable: connection refused on 127.0.0.1:{refused_port}"]
    assert "not tried (enabled = false): old" in result.stdout
    assert rows[-1] == "2 ok, 1 failed"
    assert not (tmp_path / "data" / "hosts").exists()  # nothing stored


def test_check_with_every_host_ok_exits_0(sshd: harness.Sshd, tmp_path: Path) -> None:
    path = sshd.write_hosts_toml(tmp_path / "hosts.toml", ["web1"])
    result = osmon("--config", str(path), "check")
    assert result.returncode == 0 and result.stdout.splitlines()[-1] == "1 ok, 0 failed"


def test_check_lists_every_config_problem_at_once(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "hosts.toml"
    path.write_text('[settings]\nconcurency = 4\n\n[[hosts]]\nname = "web 1"\n\n'
                    '[[hosts]]\nname = "db"\naddress = "192.0.2.1"\nport = "22"\n',
                    encoding="utf-8")
    assert cli.main(["--config", str(path), "check"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("osmon check: 3 problems in the config:\n")
    # Every command lists them the same way: a count, then one indented problem a line.
    assert cli.main(["--config", str(path), "collect"]) == 2
    assert capsys.readouterr().err == err.replace("osmon check:", "osmon collect:", 1)
    assert len(err.splitlines()) == 4
    assert all(line.startswith(f"  {path}: ") for line in err.splitlines()[1:])
    assert "unknown key 'concurency' (did you mean 'concurrency'?)" in err
    assert "host 'web 1': 'name' may only hold letters" in err
    assert "host 'db': 'port' must be an integer, not a string" in err


def test_cron_prints_absolute_lines_for_collect_prune_and_backup(tmp_path: Path) -> None:
    (tmp_path / "hosts.toml").write_text('[[hosts]]\nname = "c"\nlocal = true\n')
    result = subprocess.run([sys.executable, "-m", "collector", "--config", "hosts.toml",
                             "cron"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    jobs = [line for line in result.stdout.splitlines() if not line.startswith("#")]
    assert [job.split()[:5] for job in jobs] == [["*"] * 5, ["17", "3", "*", "*", "*"],
                                                 ["47", "2", "*", "*", "*"]]
    config = str(tmp_path / "hosts.toml")
    for job, tail in zip(jobs, ("collect", "prune", "backup create --quiet")):
        assert job.endswith(f"--config {config} {tail}")
        assert f"{sys.executable} -m collector" in job and f"cd {ROOT} && " in job
    # cron's shell runs it: the line works from anywhere.
    command = jobs[1].split(maxsplit=5)[5].replace(" prune", " --help")
    run = subprocess.run(["/bin/sh", "-c", command], cwd="/", capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0 and "osmon" in run.stdout


def test_passlog_skips_torn_lines_and_rotates(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    assert passlog.last_pass(tmp_path) is None
    passlog.record(tmp_path, {"ts": "2026-11-21T22:40:00Z", "skipped": False})
    with open(tmp_path / passlog.FILE_NAME, "ab") as fh:
        fh.write(b'{"ts": "2026-11-21T22:41')  # a killed writer
    assert passlog.last_pass(tmp_path) == {"ts": "2026-11-21T22:40:00Z", "skipped": False}
    passlog.record(tmp_path, {"ts": "2026-11-21T22:42:00Z", "skipped": True})
    assert passlog.last_pass(tmp_path) == {"ts": "2026-11-21T22:42:00Z", "skipped": True}
    monkeypatch.setattr(passlog, "MAX_BYTES", 10)
    passlog.record(tmp_path, {"ts": "2026-11-21T22:43:00Z", "skipped": False})
    assert (tmp_path / (passlog.FILE_NAME + ".1")).exists()
    assert len((tmp_path / passlog.FILE_NAME).read_bytes().splitlines()) == 1
    assert passlog.last_pass(tmp_path) == {"ts": "2026-11-21T22:43:00Z", "skipped": False}


def test_lock_held_in_process_is_lock_held(inventory: Inventory) -> None:
    config = inventory(["web1"])
    with DataLock(config.settings.data_dir, "backup"), pytest.raises(LockHeld) as info:
        collect.run_pass(config, now=NOW)
    assert "another osmon backup is running since" in str(info.value)
    assert not (config.settings.data_dir / "hosts").exists()


def test_a_pass_after_an_interrupted_restore_brings_the_data_back(tmp_path: Path) -> None:
    """A restore killed between its fallback renames left the data aside and no data dir: the
    next pass must put it back, not collect into a new empty directory that hides it."""
    (tmp_path / "hosts.toml").write_text(
        '[settings]\ndata_dir = "data"\n[certfr]\nenabled = false\n'
        '[[hosts]]\nname = "central"\nlocal = true\n', encoding="utf-8")
    config = config_mod.load(tmp_path / "hosts.toml")
    old_day = tmp_path / ".data.aside-20261121-224100" / "hosts" / "central" / "2026-11-20.jsonl"
    old_day.parent.mkdir(parents=True)
    old_day.write_text('{"v": 1, "ts": "2026-11-20T10:00:00Z", "host": "central"}\n',
                       encoding="utf-8")
    collect.run_pass(config, now=NOW)
    day_files = sorted(p.name for p in (tmp_path / "data" / "hosts" / "central").iterdir())
    assert day_files == ["2026-11-20.jsonl", f"{NOW:%Y-%m-%d}.jsonl"]
    assert not list(tmp_path.glob(".data.aside-*"))


def test_checks_share_what_the_host_deadline_leaves(tmp_path: Path) -> None:
    (tmp_path / "hosts.toml").write_text(
        '[settings]\nssh_timeout_s = 5\nhost_deadline_s = 25\n'
        '[[hosts]]\nname = "a"\nlocal = true\n[[hosts]]\nname = "b"\nlocal = true\n'
        '[[checks]]\nname = "x"\ncommand = ["/bin/true"]\nhosts = ["a"]\n', encoding="utf-8")
    config = config_mod.load(tmp_path / "hosts.toml")
    with_checks = probe_call.probe_params(config, config.hosts[0], None)
    assert with_checks["checks_budget_s"] == 11.0  # one wave of 10 s checks, plus a second
    assert [c["name"] for c in with_checks["checks"]] == ["x"]
    assert "checks_budget_s" not in probe_call.probe_params(config, config.hosts[1], None)
    many = [{"name": f"c{i}", "timeout_s": 4.0} for i in range(17)]  # three waves of 8
    assert probe_call.checks_budget(config, many) == 13.0
    slow = [{"name": f"c{i}", "timeout_s": 10.0} for i in range(9)]  # 2 waves: 21 s > 20 s room
    assert probe_call.checks_budget(config, slow) == 20.0


def test_the_collector_knows_how_many_checks_the_probe_runs_at_once() -> None:
    from remote_probe import probe

    assert probe_call.CHECKS_SIDE_BY_SIDE == probe.CHECK_WORKERS


@pytest.mark.parametrize(("interval_s", "schedule"), [
    (60, "* * * * *"), (300, "*/5 * * * *"), (120, "*/2 * * * *"), (3600, "0 * * * *"),
    (7200, "0 */2 * * *"), (86400, "0 0 * * *")])
def test_cron_runs_collect_every_interval(tmp_path: Path, interval_s: int, schedule: str) -> None:
    (tmp_path / "hosts.toml").write_text(
        f'[settings]\ninterval_s = {interval_s}\n[[hosts]]\nname = "c"\nlocal = true\n')
    result = osmon("--config", str(tmp_path / "hosts.toml"), "cron")
    assert result.returncode == 0, result.stderr
    [collect_line] = [line for line in result.stdout.splitlines() if line.endswith(" collect")]
    assert collect_line.startswith(schedule + " ")


@pytest.mark.parametrize(("interval_s", "why"), [
    (15, "is below a minute"), (90, "cannot be kept by cron"), (420, "cannot be kept by cron")])
def test_cron_says_when_it_cannot_keep_the_interval(tmp_path: Path, interval_s: int,
                                                   why: str) -> None:
    (tmp_path / "hosts.toml").write_text(
        f'[settings]\ninterval_s = {interval_s}\n[[hosts]]\nname = "c"\nlocal = true\n')
    result = osmon("--config", str(tmp_path / "hosts.toml"), "cron")
    assert result.returncode == 1
    assert f"interval_s = {interval_s} {why}" in result.stderr and "`osmon run`" in result.stderr
    jobs = [line for line in result.stdout.splitlines() if not line.startswith("#")]
    assert [job.rsplit(" ", 1)[-1] for job in jobs] == ["prune", "--quiet"]  # no collect


@pytest.mark.parametrize(("last", "now", "expected"), [
    (56.0, 57.0, 120.0),   # started 4 s before the minute: skip it, never 4 s apart
    (30.0, 31.0, 60.0),    # exactly half an interval is enough
    (0.0, 1.0, 60.0),      # on the boundary: the next boundary
    (10.0, 75.0, 120.0),   # a pass longer than the interval: the next boundary after it
])
def test_run_keeps_half_an_interval_between_passes(last: float, now: float,
                                                   expected: float) -> None:
    from collector.commands.run import next_start

    assert next_start(last, now, 60) == expected
