"""The probe's checks family run on this machine, no SSH: small plugins written by the tests.

Each plugin is a real executable in ``tmp_path`` run by the real probe code (processes,
pipes, signals); the answers are then read the way the collector reads them
(``collector.checks.derive_checks``), so a test states what the admin would see.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from process_fixtures import SLACK_S, is_dead, wait_for

from collector.metrics.families.checks import CHECKS_MAX_BYTES, derive_checks
from collector.metrics.gate import validate_probe_output
from collector.metrics.nagios import CRITICAL, OK, UNKNOWN, WARNING
from collector.passes.probe_call import probe_stdin
from remote_probe import probe

PROBE_SOURCE = Path(probe.__file__).read_bytes()


def plugin(tmp_path: Path, name: str, body: str) -> str:
    """Write an executable shell plugin; return its path."""
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(0o755)
    return str(path)


def check(name: str, command: list[str], **extra: Any) -> dict[str, Any]:
    return {"name": name, "command": command, **extra}


def derived(specs: list[dict[str, Any]], **run: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the checks as the probe does; return (raw answers, what the collector stores)."""
    answers, problems, hung = probe.run_checks(specs, **run)
    assert not hung
    return answers, derive_checks(answers, specs)


def test_hung_plugin_and_its_child_are_killed_at_the_timeout(tmp_path: Path) -> None:
    hang = plugin(tmp_path, "check_hang", f"""
echo $$ > {tmp_path}/leader
sleep 300 &
echo $! > {tmp_path}/child
echo "CHECKING something slow"
wait
""")
    start = time.monotonic()
    answers, stored = derived([check("hang", [hang], timeout_s=1)])
    elapsed = time.monotonic() - start
    assert 1.0 <= elapsed < 1.0 + SLACK_S, elapsed  # at its timeout, not after its 300 s
    assert answers["hang"]["error"] == "timed out after 1 s, killed"
    assert answers["hang"]["exit"] is None
    assert stored["hang"]["state"] == UNKNOWN
    assert stored["hang"]["output"] == (
        "timed out after 1 s, killed (output: CHECKING something slow)")
    leader = int((tmp_path / "leader").read_text())
    child = int((tmp_path / "child").read_text())
    # The plugin itself is reaped by the probe: not even a zombie is left.
    assert not Path(f"/proc/{leader}").exists()
    wait_for(lambda: is_dead(child), f"the plugin's child {child} to die")


def test_child_left_behind_by_a_finished_plugin_is_killed(tmp_path: Path) -> None:
    """A plugin that exits but leaves a child holding its stdout: its answer counts, the
    child does not outlive the check."""
    leaver = plugin(tmp_path, "check_leaver", f"""
sleep 300 &
echo $! > {tmp_path}/child
echo "OK - done"
exit 0
""")
    start = time.monotonic()
    answers, stored = derived([check("leaver", [leaver], timeout_s=10)])
    assert time.monotonic() - start < 3  # the short grace, not the 10 s timeout
    assert "error" not in answers["leaver"]
    assert stored["leaver"]["state"] == OK and stored["leaver"]["output"] == "OK - done"
    child = int((tmp_path / "child").read_text())
    wait_for(lambda: is_dead(child), f"the left-behind child {child} to die")


def test_flood_of_megabytes_is_killed_and_capped(tmp_path: Path) -> None:
    flood = plugin(tmp_path, "check_flood",
                   "echo 'OK - lots'; head -c 8000000 /dev/zero | tr '\\0' x; exit 0\n")
    err_flood = plugin(tmp_path, "check_err_flood", "yes 'warning: spam' >&2\n")
    start = time.monotonic()
    answers, stored = derived([check("flood", [flood], max_output=65536),
                               check("err_flood", [err_flood], max_output=4096)])
    assert time.monotonic() - start < 5
    assert len(answers["flood"]["output"]) == 65536
    assert answers["flood"]["output"].startswith("OK - lots\nxxx")
    assert answers["flood"]["error"].startswith("more than 65536 bytes of output, killed")
    assert stored["flood"]["state"] == UNKNOWN
    assert stored["flood"]["output"].startswith("more than 65536 bytes of output, killed")
    # stdout and stderr share the cap: a plugin spamming stderr is stopped too.
    assert answers["err_flood"]["error"].startswith("more than 4096 bytes of output")
    assert stored["err_flood"]["state"] == UNKNOWN


def test_exit_codes_are_the_plugin_api_states(tmp_path: Path) -> None:
    specs = [check(f"exit{code}", [plugin(tmp_path, f"check_{code}",
                                          f"echo 'STATUS {code} | v={code}'; exit {code}\n")])
             for code in (0, 1, 2, 3, 7)]
    answers, stored = derived(specs)
    assert [stored[f"exit{c}"]["state"] for c in (0, 1, 2, 3, 7)] == [
        OK, WARNING, CRITICAL, UNKNOWN, UNKNOWN]
    assert stored["exit3"]["output"] == "STATUS 3"  # the plugin's own words, not an error
    assert stored["exit3"]["perf"] == {"v": {"value": 3.0, "uom": ""}}
    assert stored["exit7"]["output"] == "exit code 7: STATUS 7"
    assert all(answers[s["name"]]["duration_s"] < 2 for s in specs)


def test_missing_unrunnable_and_crashing_commands_are_reported(tmp_path: Path) -> None:
    not_exec = tmp_path / "check_noexec"
    not_exec.write_text("#!/bin/sh\necho OK\n")
    segv = plugin(tmp_path, "check_segv", "echo 'about to crash'; kill -SEGV $$\n")
    silent = plugin(tmp_path, "check_silent",
                    "echo 'Traceback...' >&2; echo 'ImportError: no module' >&2; exit 1\n")
    specs = [check("missing", [str(tmp_path / "check_missing"), "-w", "1"]),
             check("noexec", [str(not_exec)]),
             check("segv", [segv]),
             check("silent", [silent]),
             check("not_argv", "echo hi")]  # type: ignore[arg-type]
    answers, stored = derived(specs)
    assert stored["missing"] == {
        "state": UNKNOWN, "output": f"command not found: {tmp_path}/check_missing",
        "long_output": "", "perf": {}, "duration_s": 0.0}
    assert stored["noexec"]["output"] == (
        f"command not executable (permission denied): {not_exec}")
    assert stored["segv"]["state"] == UNKNOWN
    assert stored["segv"]["output"] == "killed by SIGSEGV (output: about to crash)"
    assert stored["silent"]["state"] == WARNING
    assert stored["silent"]["output"] == "(no output; stderr: ImportError: no module)"
    assert stored["not_argv"]["state"] == UNKNOWN
    assert "not a non-empty list" in stored["not_argv"]["output"]


def test_tricky_perfdata_and_long_output(tmp_path: Path) -> None:
    tricky = plugin(tmp_path, "check_tricky", r"""cat <<'EOF'
QUEUE WARNING - 3 queues slow | 'queue length'=12;10;20;0; 'it''s late'=1.5s;;
queue mail: 12 waiting
queue print: 0 waiting
queue spool: 7 waiting | 'time spent'=250ms;;;0 ratio=99.5%;~:90;@95:100
bytes=2KB;;;0;10 counter=1234c undetermined=U;1;2
broken= =5 missing;;;
EOF
exit 1
""")
    stored = derived([check("tricky", [tricky])])[1]["tricky"]
    assert stored["state"] == WARNING
    assert stored["output"] == "QUEUE WARNING - 3 queues slow"
    assert stored["long_output"].splitlines() == [
        "queue mail: 12 waiting", "queue print: 0 waiting", "queue spool: 7 waiting"]
    assert stored["perf"] == {
        "queue length": {"value": 12.0, "uom": "", "warn": "10", "crit": "20", "min": 0.0},
        "it's late": {"value": 1.5, "uom": "s"},
        "time spent": {"value": 250.0, "uom": "ms", "min": 0.0},
        "ratio": {"value": 99.5, "uom": "%", "warn": "~:90", "crit": "@95:100"},
        "bytes": {"value": 2.0, "uom": "KB", "min": 0.0, "max": 10.0},
        "counter": {"value": 1234.0, "uom": "c"},
        "undetermined": {"value": None, "uom": "", "warn": "1", "crit": "2"},
    }


def test_checks_run_side_by_side_so_hangs_do_not_add_up(tmp_path: Path) -> None:
    hang = plugin(tmp_path, "check_hang", "exec sleep 300\n")
    fine = plugin(tmp_path, "check_fine", "echo 'OK - fine | x=1'\n")
    specs = [check(f"hang{i}", [hang], timeout_s=1) for i in range(4)]
    specs.append(check("fine", [fine]))
    start = time.monotonic()
    answers, stored = derived(specs)
    assert time.monotonic() - start < 2.5  # about one timeout, not four
    assert [stored[f"hang{i}"]["state"] for i in range(4)] == [UNKNOWN] * 4
    assert stored["fine"]["state"] == OK and stored["fine"]["perf"]["x"]["value"] == 1.0
    assert list(answers) == [s["name"] for s in specs]  # the config's order


def test_shared_budget_cuts_a_queue_of_slow_checks(tmp_path: Path) -> None:
    """With more slow checks than workers, the probe still answers within its budget."""
    slow = plugin(tmp_path, "check_slow", "exec sleep 300\n")
    specs = [check(f"slow{i}", [slow], timeout_s=5) for i in range(3)]
    start = time.monotonic()
    answers, stored = derived(specs, budget_s=1.0, workers=1)
    assert time.monotonic() - start < 3
    assert answers["slow0"]["error"] == (
        "timed out after 1 s, killed (cut short: the 1 s the probe gives all checks ran out)")
    for name in ("slow1", "slow2"):
        assert answers[name]["error"].startswith("not run: the 1 s the probe gives")
        assert stored[name]["state"] == UNKNOWN


def test_output_of_many_checks_stays_inside_what_the_collector_accepts(
        tmp_path: Path) -> None:
    """Binary garbage escapes to six JSON characters a byte: the total is still bounded."""
    garbage = plugin(tmp_path, "check_garbage",
                     "echo 'OK - binary follows'; head -c 200000 /dev/zero | tr '\\0' '\\377'\n")
    small = plugin(tmp_path, "check_small", "echo 'OK - small | a=1'\n")
    specs = [check(f"garbage{i}", [garbage], max_output=1 << 20) for i in range(12)]
    specs.append(check("small", [small]))
    out = probe.collect({"cpu_sample_s": 0, "checks": specs})
    encoded = json.dumps(out["checks"], separators=(",", ":"))
    assert len(encoded) <= CHECKS_MAX_BYTES
    assert validate_probe_output(json.loads(probe.json_dumps(probe.json_safe(out))))["checks"]
    assert out["checks"]["small"] == {"exit": 0, "output": "OK - small | a=1\n",
                                      "duration_s": out["checks"]["small"]["duration_s"]}
    assert out["checks"]["garbage0"]["truncated"] is True
    assert out["checks"]["garbage0"]["output"].startswith("OK - binary follows\n\ufffd")
    stored = derive_checks(out["checks"], specs)
    assert stored["garbage3"]["state"] == OK
    assert stored["garbage3"]["output"] == "OK - binary follows"


def test_no_checks_no_family() -> None:
    for params in ({"cpu_sample_s": 0}, {"cpu_sample_s": 0, "checks": []}):
        out = probe.collect(params)
        assert "checks" not in out and "checks" not in out["errors"]


def test_piped_probe_runs_checks_with_stdin_closed(tmp_path: Path) -> None:
    """As over SSH: the probe's own source comes on stdin; a plugin that reads stdin gets
    /dev/null, so it cannot swallow the probe nor wait for input."""
    reader = plugin(tmp_path, "check_reader",
                    "got=$(cat | wc -c); echo \"OK - read $got bytes | bytes=${got}B\"\n")
    hostile = "x'; touch " + str(tmp_path / "pwned") + "; echo '"
    params = {"cpu_sample_s": 0, "checks": [check("reader", [reader], timeout_s=5),
                                           check(hostile, ["/bin/echo", hostile])]}
    done = subprocess.run([sys.executable, "-"], input=probe_stdin(params, PROBE_SOURCE),
                          capture_output=True, timeout=60, check=True)
    out = json.loads(done.stdout)
    assert out["errors"] == {}
    assert out["checks"]["reader"]["output"] == "OK - read 0 bytes | bytes=0B\n"
    assert out["checks"][hostile]["output"] == hostile + "\n"  # an argument, not a command
    assert not (tmp_path / "pwned").exists()
    assert "memory" in out and "processes" in out  # the other families are all there


def test_a_check_does_not_outlive_a_probe_that_was_killed(tmp_path: Path) -> None:
    """The probe kills a check at its timeout, but a probe killed first (the host-side limit
    of the remote command, the OOM killer) cannot, and the check, in a session of its own,
    is out of reach of that kill: its watcher ends it and its children."""
    hang = plugin(tmp_path, "check_hang", f"""
sleep 300 &
echo $! > {tmp_path}/child
echo $$ > {tmp_path}/leader.tmp
mv {tmp_path}/leader.tmp {tmp_path}/leader
wait
""")
    params = {"cpu_sample_s": 0, "checks": [check("hang", [hang], timeout_s=300)]}
    probe_process = subprocess.Popen([sys.executable, "-"], stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert probe_process.stdin is not None
        probe_process.stdin.write(probe_stdin(params, PROBE_SOURCE))
        probe_process.stdin.close()
        wait_for(lambda: (tmp_path / "leader").exists(), "the check to start")
    finally:
        probe_process.kill()  # long before the check's own 300 s
        probe_process.wait(timeout=10)
    leader = int((tmp_path / "leader").read_text())
    child = int((tmp_path / "child").read_text())
    wait_for(lambda: is_dead(leader) and is_dead(child), "the orphaned check to be killed")


def test_a_finished_check_leaves_no_watcher_behind(tmp_path: Path) -> None:
    """The watcher of a check that ended normally leaves with it: nothing stays on the host."""
    quick = plugin(tmp_path, "check_quick", "echo 'OK - fine'\n")
    before = _guards()
    _answers, stored = derived([check("quick", [quick], timeout_s=10)])
    assert stored["quick"]["state"] == OK
    wait_for(lambda: _guards() <= before, "the check's watcher to leave")


def _guards() -> set[int]:
    """This machine's check watchers (their command line names them)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"osmon-check-guard" in (entry / "cmdline").read_bytes():
                    found.add(int(entry.name))
            except OSError:
                pass
    return found


def test_bad_check_entries_are_reported_not_fatal(tmp_path: Path) -> None:
    ok = plugin(tmp_path, "check_ok", "echo OK\n")
    out = probe.collect({"cpu_sample_s": 0, "checks": [
        "not a table", {"command": [ok]}, check("ok", [ok]), check("ok", [ok])]})
    assert list(out["checks"]) == ["ok"]
    assert out["errors"]["checks:params"] == (
        "ValueError: check #1 has no usable name; check #2 has no usable name; "
        "check #4: duplicate name, run once")
    out = probe.collect({"cpu_sample_s": 0, "checks": {"ok": [ok]}})
    assert out["errors"]["checks"] == "ValueError: checks must be a list, not dict"
    assert "memory" in out


def test_checks_under_a_real_python_36_when_available(tmp_path: Path) -> None:
    """The oldest interpreter the probe supports runs the whole family: os.waitid, selectors,
    process groups and the kill all exist there (vermin checks syntax, this checks behaviour)."""
    from test_probe_live import _python36

    python = _python36()
    if python is None:
        pytest.skip("no Python 3.6 interpreter on this machine")
    hang = plugin(tmp_path, "check_hang", "sleep 300 &\necho \"hang (child $!)\"\nwait\n")
    params = {"cpu_sample_s": 0, "checks": [
        check("hang", [hang], timeout_s=1),
        check("flood", ["yes"], max_output=1000),
        check("missing", [str(tmp_path / "nope")]),
        check("three", [plugin(tmp_path, "check_3", "echo 'UNKNOWN - x | a=1'; exit 3\n")])]}
    done = subprocess.run([python, "-"], input=probe_stdin(params, PROBE_SOURCE),
                          capture_output=True, timeout=60, check=True)
    out = json.loads(done.stdout)
    assert out["system"]["python"].startswith("3.6.") and out["errors"] == {}
    stored = derive_checks(out["checks"], params["checks"])
    assert stored["hang"]["output"].startswith("timed out after 1 s, killed (output: hang")
    assert stored["flood"]["output"].startswith("more than 1000 bytes of output, killed")
    assert stored["missing"]["output"] == f"command not found: {tmp_path}/nope"
    assert (stored["three"]["state"], stored["three"]["perf"]) == (
        UNKNOWN, {"a": {"value": 1.0, "uom": ""}})
    child = int(stored["hang"]["output"].rsplit("child ", 1)[1].split(")")[0])
    wait_for(lambda: is_dead(child), f"the hung plugin's child {child} to die")
