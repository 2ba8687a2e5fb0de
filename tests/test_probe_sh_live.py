"""The shell probe through the real test sshd: hosts without Python, hostile process names,
checks run as argv lists, and the probe choice kept between passes.

The "host" is this machine behind the loopback sshd; a host without Python is one whose
``python`` names an interpreter that is not there (exit 127) or is too old to read the probe.
Samples are read back from the data directory, as the dashboard reads them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil
import pytest
import sshd as harness
from process_fixtures import is_dead, wait_for

from collector.commands import check
from collector.config import Config
from collector.metrics.nagios import OK, UNKNOWN
from collector.metrics.schema import clean_text
from collector.passes import collect
from collector.store import probe_choice

NOW = datetime(2026, 11, 21, 22, 41, 0, tzinfo=timezone.utc)
Inventory = Callable[..., Config]


def samples(config: Config, host: str) -> list[dict[str, Any]]:
    return [json.loads(line) for path in sorted(
        (config.settings.data_dir / "hosts" / host).glob("*.jsonl"))
        for line in path.read_bytes().splitlines()]


@pytest.fixture
def writable() -> Iterator[Path]:
    """A folder the test account of the sshd may write in."""
    folder = Path(tempfile.mkdtemp(prefix="osmon-sh-live-"))
    folder.chmod(0o1777)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_host_without_python_is_collected_by_the_shell_probe(
        inventory: Inventory, sshd: harness.Sshd, tmp_path: Path, writable: Path) -> None:
    """probe = "auto": Python is tried, its absence (exit 127) sends the shell probe on the
    same connection; the choice is kept so the next pass goes straight to it, and tried
    again a day later."""
    calls = writable / "python-calls"
    missing = sshd.script(f"python-missing-{tmp_path.name}",
                          f"echo called >> {calls}\necho 'sh: python3: not found' >&2\n"
                          "exit 127\n")
    config = inventory(["tiny"], hosts={"tiny": {"python": str(missing)}})
    result = collect.run_pass(config, now=NOW)
    assert result.failed == 0, [o.describe() for o in result.outcomes]
    [sample] = samples(config, "tiny")
    assert sample["ok"] is True and sample["collect"]["probe"] == "sh"
    assert sample["system"]["python"] is None and sample["system"]["hostname"]
    assert sample["memory"]["total"] == psutil.virtual_memory().total
    assert sample["cpu"]["count"] == psutil.cpu_count()
    assert sample["processes"]["count"] > 1 and sample["processes"]["top"]
    assert calls.read_text() == "called\n"
    state = config.state_dir
    assert probe_choice.remembered(state, "tiny", time.time()) == "sh"

    collect.run_pass(config, now=NOW.replace(minute=42))
    assert calls.read_text() == "called\n"  # the remembered choice: no Python start
    second = samples(config, "tiny")[-1]
    assert second["ok"] and second["collect"]["probe"] == "sh"
    assert second["processes"]["cpu_basis"] == "interval"  # the counters came back

    stale = json.loads(probe_choice.path_for(state, "tiny").read_text())
    stale["since"] -= probe_choice.RECHECK_S + 60
    probe_choice.path_for(state, "tiny").write_text(json.dumps(stale))
    collect.run_pass(config, now=NOW.replace(minute=43))
    assert calls.read_text() == "called\ncalled\n"  # a day later, Python is tried again
    assert samples(config, "tiny")[-1]["collect"]["probe"] == "sh"


def test_a_python_too_old_for_the_probe_falls_back_too(
        inventory: Inventory, sshd: harness.Sshd, tmp_path: Path) -> None:
    old = sshd.script(f"python35-{tmp_path.name}",
                      "cat >/dev/null\necho '  File \"<stdin>\", line 40' >&2\n"
                      "echo 'SyntaxError: invalid syntax' >&2\nexit 1\n")
    config = inventory(["old"], hosts={"old": {"python": str(old)}})
    collect.run_pass(config, now=NOW)
    [sample] = samples(config, "old")
    assert sample["ok"] and sample["collect"]["probe"] == "sh"


def test_probe_python_never_falls_back_and_a_working_python_says_so(
        inventory: Inventory) -> None:
    config = inventory(["nopy", "web1"], hosts={
        "nopy": {"python": "/nonexistent/python3", "probe": "python"}})
    collect.run_pass(config, now=NOW)
    [failed] = samples(config, "nopy")
    assert failed["ok"] is False and failed["error"]["kind"] == "probe"
    assert failed["collect"]["probe"] == "python"
    [good] = samples(config, "web1")
    assert good["ok"] and good["collect"]["probe"] == "python"
    assert good["system"]["python"] == ".".join(map(str, sys.version_info[:3])) or \
        good["system"]["python"].startswith("3.")
    assert not probe_choice.path_for(config.state_dir, "web1").exists()


SPIN = "import ctypes,sys\nctypes.CDLL(None).prctl(15,sys.argv[1].encode(),0,0,0)\nwhile 1:pass"
HOSTILE = ["$(reboot)", '\\"; rm -rf /', "new\nline", "\x1b[31mred"]


@pytest.fixture
def hostile_processes() -> Iterator[list[int]]:
    """Busy processes whose names and arguments are hostile (the busiest, so in top_cpu)."""
    children = [subprocess.Popen([sys.executable, "-c", SPIN, name, *HOSTILE])
                for name in HOSTILE[:2]]
    try:
        time.sleep(1.0)
        yield [child.pid for child in children]
    finally:
        for child in children:
            child.kill()
            child.wait(10)


def test_hostile_process_names_come_back_as_data(
        inventory: Inventory, hostile_processes: list[int]) -> None:
    config = inventory(["tiny"], hosts={"tiny": {"probe": "sh"}})
    result = collect.run_pass(config, now=NOW)
    assert result.failed == 0, [o.describe() for o in result.outcomes]
    raw = b"".join(path.read_bytes() for path in
                   (config.settings.data_dir / "hosts" / "tiny").glob("*.jsonl"))
    assert raw.count(b"\n") == 1  # one whole line: no name broke out of its string
    [sample] = samples(config, "tiny")
    assert sample["collect"]["probe"] == "sh"
    top = {p["pid"]: p for p in sample["processes"]["top"]}
    first, second = (top[pid] for pid in hostile_processes)
    assert first["name"] == "$(reboot)" and second["name"] == '\\"; rm -rf /'
    for entry, name in ((first, HOSTILE[0]), (second, HOSTILE[1])):
        sent = " ".join([sys.executable, "-c", SPIN, name, *HOSTILE])[:200]
        assert entry["cmdline"] == clean_text(sent, 1024)  # what the gate does with any text
    assert "new\nline \ufffd[31mred" in first["cmdline"]  # ESC is not stored raw


PRINT_ARGS = 'for a in "$@"; do printf "[%s]\\n" "$a"; done\necho "OK - $# arguments"\n'
ARGS = ["two words", "it's", 'say "hi"', "$(touch /tmp/osmon-pwned-sh)", "; reboot",
        "line\nbreak", "back\\slash", "`id`", "*"]


def test_checks_run_by_the_shell_probe_are_argv_lists(
        inventory: Inventory, sshd: harness.Sshd, tmp_path: Path) -> None:
    printer = sshd.script(f"check_print_args-{tmp_path.name}", PRINT_ARGS)
    hang = sshd.script(f"check_hang-{tmp_path.name}",
                       "sleep 300 &\necho \"about to hang (child $!)\"\nwait\n")
    tables = [{"name": "args", "command": [str(printer), *ARGS]},
              {"name": "hang", "command": [str(hang)], "timeout_s": 1}]
    extra = "".join("\n[[checks]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in t.items())
                    for t in tables)
    config = inventory(["tiny"], hosts={"tiny": {"probe": "sh"}}, extra=extra)
    started = time.monotonic()
    collect.run_pass(config, now=NOW)
    assert time.monotonic() - started < 15
    [sample] = samples(config, "tiny")
    checks = sample["checks"]
    assert checks["args"]["state"] == OK
    assert checks["args"]["output"] == "[two words]"
    assert checks["args"]["long_output"] == "\n".join(
        f"[{a}]" for a in ARGS[1:]) + f"\nOK - {len(ARGS)} arguments"
    assert not Path("/tmp/osmon-pwned-sh").exists()
    assert checks["hang"]["state"] == UNKNOWN
    assert checks["hang"]["output"].startswith("timed out after 1 s, killed (output: about")
    child = int(checks["hang"]["output"].rsplit("child ", 1)[1].rstrip(")"))
    wait_for(lambda: is_dead(child), f"the hung plugin's child {child} to die on the host")


def test_osmon_check_names_the_probe_of_each_host(inventory: Inventory) -> None:
    config = inventory(["tiny", "web1", "nopy"], hosts={
        "tiny": {"probe": "sh"}, "nopy": {"python": "/nonexistent/python3"}})
    outcomes = collect.collect_hosts(config, config.hosts, store=None, started=NOW,
                                     deadline=time.monotonic() + 60)
    rows = check.format_table(config.hosts, outcomes).splitlines()
    probe_at = rows[0].index("PROBE")
    probes = [row[probe_at:].split("  ")[0].strip() for row in rows[1:]]
    assert probes[0] == "sh" and probes[2] == "sh"  # auto, no Python: the shell probe answered
    assert probes[1].startswith("python 3.")
    assert all(" ok " in f" {row[rows[0].index('RESULT'):]}" for row in rows[1:])
    # osmon check remembers nothing: the next pass tries Python again
    assert not probe_choice.path_for(config.state_dir, "nopy").exists()
