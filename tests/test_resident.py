"""``osmon run``'s resident sessions against a real sshd: one login per host, not per pass;
every way a session can break costs that host one failed pass at most; closing leaves
nothing behind on the host.  Logins are counted in the sshd's own log."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import sshd as harness
from resident_fixtures import (
    inventory,
    kill_all,
    kinds,
    left_below,
    probes,
    run,
    wait_for,
)

from collector.passes import one_host, sessions
from collector.passes.sessions import SessionPool
from collector.store import proc_counters
from collector.store.samples import Store


def test_sessions_are_kept_across_passes_one_login_per_host(
        logging_sshd: harness.Sshd, session_pool: SessionPool, tmp_path: Path) -> None:
    config = inventory(logging_sshd, tmp_path, ["web1", "web2", "db1"])
    before = logging_sshd.logins()
    results = run(config, session_pool, passes=3)
    time.sleep(0.3)  # CPU counters move in hundredths of a second
    results += run(config, session_pool)
    assert [r.failed for r in results] == [0, 0, 0, 0]
    assert logging_sshd.logins() - before == 3  # not 12
    assert len(probes(logging_sshd)) == 3
    latest = Store(config.settings.data_dir).latest("web1")
    assert latest is not None and latest["collect"]["resident"] is True
    assert latest["collect"]["connect_s"] == 0.0  # no login in this pass
    assert latest["processes"]["cpu_basis"] == "interval"  # the probe kept its counters
    assert latest["cpu"]["percent"] is not None  # rates from the previous stored sample



def test_a_restore_during_osmon_run_is_what_the_next_pass_reads(
        logging_sshd: harness.Sshd, session_pool: SessionPool, tmp_path: Path) -> None:
    """osmon run keeps each host's last stored sample in memory instead of reading it back; a
    restore swaps in another data directory, and from then on that directory's history is the
    truth (here: a host that fails, in a restored store where it never answered, shows "never
    answered", not the time it answered before the restore)."""
    config = inventory(logging_sshd, tmp_path, ["web1", "web2"])
    [before] = run(config, session_pool)
    assert kinds(before) == {"web1": None, "web2": None}
    data = config.settings.data_dir
    data.rename(tmp_path / "data-before-restore")
    data.mkdir()  # the restored backup: web1 has no sample in it
    down = inventory(logging_sshd, tmp_path, ["web1", "web2"],
                     hosts={"web1": {"port": harness.free_port()}})
    [after] = run(down, session_pool)
    assert kinds(after) == {"web1": "unreachable", "web2": None}
    assert after.outcomes[0].sample["last_ok"] is None
    latest = Store(data).latest("web1")
    assert latest is not None and latest["last_ok"] is None

def test_a_probe_killed_on_the_host_costs_one_pass_at_most(
        logging_sshd: harness.Sshd, session_pool: SessionPool, tmp_path: Path) -> None:
    config = inventory(logging_sshd, tmp_path, ["web1", "web2"])
    run(config, session_pool)
    kill_all(probes(logging_sshd))
    after_kill, recovered = run(config, session_pool, passes=2)
    assert all(kind in (None, "probe") for kind in kinds(after_kill).values())
    assert kinds(recovered) == {"web1": None, "web2": None}
    # The new session's first request carried the kept counters: per-process CPU at once.
    assert recovered.outcomes[0].sample["processes"]["cpu_basis"] == "interval"


def test_the_state_file_keeps_counters_for_a_new_session(
        logging_sshd: harness.Sshd, session_pool: SessionPool, tmp_path: Path) -> None:
    """The resident probe keeps its counters, but sends them back on a session's first
    request (and every COUNTERS_EVERY_S), so a reopened session or a cron pass finds them."""
    config = inventory(logging_sshd, tmp_path, ["web1"])
    run(config, session_pool)
    saved = proc_counters.path_for(config.state_dir, "web1")
    assert saved.exists()
    stamp = saved.stat().st_mtime_ns
    run(config, session_pool, passes=2)
    assert saved.stat().st_mtime_ns == stamp  # not rewritten every pass
    kill_all(probes(logging_sshd))
    wait_for(lambda: not probes(logging_sshd), "the probe to end")
    time.sleep(0.2)  # the connection's end reaches the collector
    (result,) = run(config, session_pool)
    assert result.failed == 0
    assert result.outcomes[0].sample["processes"]["cpu_basis"] == "interval"


def test_an_sshd_restart_costs_one_pass_at_most(
        logging_sshd: harness.Sshd, session_pool: SessionPool, tmp_path: Path) -> None:
    config = inventory(logging_sshd, tmp_path, ["web1", "web2"])
    run(config, session_pool)
    logging_sshd.restart()  # every session's processes killed, a new sshd on the same port
    after_restart, recovered = run(config, session_pool, passes=2)
    assert all(kind in (None, "unreachable", "probe") for kind in kinds(after_restart).values())
    assert kinds(recovered) == {"web1": None, "web2": None}


def test_a_host_that_stops_answering_mid_pass_times_out_then_recovers(
        logging_sshd: harness.Sshd, session_pool: SessionPool, tmp_path: Path) -> None:
    config = inventory(logging_sshd, tmp_path, ["web1", "web2"],
                       settings={"ssh_timeout_s": 1, "host_deadline_s": 3})
    run(config, session_pool)
    frozen = [pid for pid, cmd in logging_sshd.descendants() if "@notty" in cmd]
    assert len(frozen) == 2
    kill_all(frozen, signal.SIGSTOP)  # the connections stay up, nothing answers
    try:
        (stalled,) = run(config, session_pool)
    finally:
        kill_all(frozen, signal.SIGCONT)
    assert kinds(stalled) == {"web1": "timeout", "web2": "timeout"}
    (recovered,) = run(config, session_pool)
    assert kinds(recovered) == {"web1": None, "web2": None}
    # The abandoned sessions end once their sshd runs again: only the new probes remain.
    wait_for(lambda: len(probes(logging_sshd)) == 2, "the abandoned probes to end")


def test_sessions_are_opened_again_when_the_probe_changes(
        logging_sshd: harness.Sshd, session_pool: SessionPool, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    config = inventory(logging_sshd, tmp_path, ["web1", "web2"])
    run(config, session_pool)
    before = logging_sshd.logins()
    original = one_host.load_probe()
    monkeypatch.setattr(one_host, "load_probe", lambda: original + b"\n# osmon 2\n")
    assert run(config, session_pool, passes=2)[1].failed == 0
    assert logging_sshd.logins() - before == 2  # once per host, on the first pass after the change


def test_only_the_changed_hosts_get_a_new_session(
        logging_sshd: harness.Sshd, session_pool: SessionPool, tmp_path: Path) -> None:
    config = inventory(logging_sshd, tmp_path, ["web1", "web2", "db1"])
    run(config, session_pool)
    before = logging_sshd.logins()
    edited = inventory(logging_sshd, tmp_path, ["web1", "db1"],
                       hosts={"db1": {"python": "/usr/bin/python3"}})  # web2 gone, db1 changed
    session_pool.reconfigure(edited)
    wait_for(lambda: len(probes(logging_sshd)) == 1, "the sessions of web2 and db1 to end")
    assert run(edited, session_pool)[0].failed == 0
    assert logging_sshd.logins() - before == 1  # db1's new session; web1 kept its own


def test_a_session_past_its_maximum_age_is_opened_again(
        logging_sshd: harness.Sshd, session_pool: SessionPool, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    config = inventory(logging_sshd, tmp_path, ["web1"], settings={"session_max_age_s": 3600})
    run(config, session_pool)
    before = logging_sshd.logins()
    later = time.monotonic() + 3600  # an hour on: past the age, whatever the jitter
    monkeypatch.setattr(sessions.time, "monotonic", lambda: later)
    assert run(config, session_pool)[0].failed == 0
    assert logging_sshd.logins() - before == 1


def test_a_host_without_python_falls_back_to_the_shell_probe(
        logging_sshd: harness.Sshd, session_pool: SessionPool, tmp_path: Path) -> None:
    """No usable Python: the resident probe never starts; the shell probe answers on the
    same login, and is remembered (no resident attempt in the next passes)."""
    config = inventory(logging_sshd, tmp_path, ["tiny"], hosts={"tiny": {"python": "python2.1"}})
    before = logging_sshd.logins()
    results = run(config, session_pool, passes=3)
    assert [r.failed for r in results] == [0, 0, 0]
    assert [r.outcomes[0].sample["collect"]["probe"] for r in results] == ["sh"] * 3
    assert logging_sshd.logins() - before == 3  # the shell probe: one connection per pass
    assert not probes(logging_sshd)


def test_an_interpreter_that_hangs_before_reading_is_killed_on_the_host(
        logging_sshd: harness.Sshd, session_pool: SessionPool, tmp_path: Path) -> None:
    """The resident start-up limit: what never reads its input dies a few seconds after the
    host's deadline, though the resident branch runs no `timeout` around the probe."""
    mute = logging_sshd.script(f"mute-{tmp_path.name}.sh", "exec sleep 1000\n")
    config = inventory(logging_sshd, tmp_path, ["mute"], settings={"ssh_timeout_s": 1,
                                                             "host_deadline_s": 3},
                       hosts={"mute": {"python": str(mute)}})
    (result,) = run(config, session_pool)
    ended = time.monotonic()
    assert kinds(result) == {"mute": "timeout"}
    wait_for(lambda: not left_below(logging_sshd), "the hung interpreter to be killed", timeout=10)
    assert time.monotonic() - ended < 1 + 2 + 3  # ssh_timeout_s + the grace + start-up
