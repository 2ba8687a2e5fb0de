"""The probe on this machine, checked against independent sources: psutil, `who`, vermin.

The probe runs as the collector runs it: a subprocess reading its source on stdin
(`python3 -`) with the `OSMON_PARAMS = '<json>'` line prepended, and also as a plain script.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from collector.metrics.families.cpu import busy_percent
from remote_probe import probe

PROBE = Path(probe.__file__)
SOURCE = PROBE.read_text()


def run_piped(params: dict[str, Any] | None = None, python: str = sys.executable) -> dict:
    """Exactly what the SSH path sends: the params line, then the probe source."""
    head = f"OSMON_PARAMS = {json.dumps(params or {})!r}\n" if params is not None else ""
    done = subprocess.run([python, "-"], input=(head + SOURCE).encode(), capture_output=True,
                          timeout=60, check=True)
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def live() -> dict:
    done = subprocess.run([sys.executable, str(PROBE)], capture_output=True,
                          timeout=60, check=True)
    lines = done.stdout.decode().splitlines()
    assert len(lines) == 1, "the probe prints exactly one line"
    return json.loads(lines[0])


def test_script_run_has_every_family_and_no_errors(live: dict) -> None:
    assert live["probe"] == 1
    assert live["errors"] == {}
    for family in probe.FAMILIES:
        assert family[0] in live
    assert live["cpu"]["percent"] is not None  # default: first-pass in-probe interval


def test_piped_run_with_params_matches_script_run(live: dict) -> None:
    out = run_piped({"cpu_sample_s": 0, "top_n": 2, "self_timing": True})
    assert out["errors"] == {}
    assert out["cpu"]["percent"] is None  # steady state: no in-probe interval
    assert len(out["processes"]["top_cpu"]) == 2
    assert out["system"]["boot_time"] == pytest.approx(live["system"]["boot_time"], abs=2)
    # The probe's own work (reading /proc) takes CPU, but far less than a second.
    assert 0 < out["timing"]["cpu_s"] < 1.0
    assert out["timing"]["cpu_s"] <= out["timing"]["wall_s"] + 0.01


def test_params_are_data_not_code(tmp_path: Path) -> None:
    """Quotes, newlines and shell syntax in parameters stay inside the string literal."""
    marker = tmp_path / "pwned"
    hostile = f"'\"; import os; open({str(marker)!r}, 'w')\n#'; touch {marker}; echo '"
    out = run_piped({"cpu_sample_s": 0, "checks": [{"name": hostile}], "etc_root": hostile})
    assert not marker.exists()
    assert "processes:passwd" in out["errors"]  # the odd etc_root was simply not found


def test_bad_params_are_reported_not_fatal() -> None:
    out = run_piped({"cpu_sample_s": "soon", "top_n": 1})
    assert out["errors"]["params"].startswith("ValueError")
    assert len(out["processes"]["top_cpu"]) == 1


def test_memory_and_swap_totals_match_psutil(live: dict) -> None:
    assert abs(live["memory"]["total"] - psutil.virtual_memory().total) <= 4096
    assert abs(live["swap"]["total"] - psutil.swap_memory().total) <= 4096
    assert 0 < live["memory"]["available"] <= live["memory"]["total"]


def test_cpu_count_matches_psutil(live: dict) -> None:
    assert live["cpu"]["count"] == psutil.cpu_count(logical=True)
    assert len(live["cpu"]["per_core_times"]) == live["cpu"]["count"]


def test_mounts_match_psutil(live: dict) -> None:
    """Same set as psutil.disk_partitions(all=False), minus the probe's deliberate choices:
    squashfs images are skipped and a device mounted twice is listed once (shortest path).
    Neither occurs on a plain CI machine, where the sets are simply equal."""
    by_device: dict[str, str] = {}
    for part in psutil.disk_partitions(all=False):
        if part.fstype == "squashfs":
            continue
        kept = by_device.get(part.device)
        if kept is None or (len(part.mountpoint), part.mountpoint) < (len(kept), kept):
            by_device[part.device] = part.mountpoint
    assert {d["mount"] for d in live["disks"]} == set(by_device.values())


def test_disk_totals_match_psutil(live: dict) -> None:
    for disk in live["disks"]:
        usage = psutil.disk_usage(disk["mount"])
        assert disk["total"] == pytest.approx(usage.total, rel=0.01)
        assert disk["percent"] == pytest.approx(usage.percent, abs=1.0)


@pytest.fixture
def one_busy_core():
    """A child spinning on one CPU so the CPU percent comparison is not a comparison of
    zeros. Stopped by its own pid."""
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.2)
    yield
    child.kill()
    child.wait()


def test_in_probe_cpu_percent_close_to_psutil(one_busy_core) -> None:
    psutil.cpu_percent(interval=None)
    out = run_piped({"cpu_sample_s": 1.0})
    reference = psutil.cpu_percent(interval=None)
    assert out["cpu"]["percent"] == pytest.approx(reference, abs=8)


def test_cpu_counters_give_psutil_percent_over_same_interval(one_busy_core) -> None:
    """The steady-state path: two probe runs, percent from their counters (metrics.rates)."""
    psutil_before = psutil.cpu_times()
    first = run_piped({"cpu_sample_s": 0})
    time.sleep(1.0)
    second = run_piped({"cpu_sample_s": 0})
    psutil_after = psutil.cpu_times()
    fields = probe.CPU_FIELDS
    reference = busy_percent({k: getattr(psutil_before, k) for k in fields},
                             {k: getattr(psutil_after, k) for k in fields})
    assert busy_percent(first["cpu"]["times"], second["cpu"]["times"]) == pytest.approx(
        reference, abs=5)


def _who(*args: str) -> list[tuple[str, ...]]:
    """`who` output (C locale, UTC) as (name, tty, month, day, HH:MM, host or "")."""
    env = dict(os.environ, LC_ALL="C", TZ="UTC")
    text = subprocess.run(["who", *args], stdout=subprocess.PIPE, env=env, check=True,
                          timeout=30).stdout.decode()
    rows = []
    for line in text.splitlines():
        fields = line.split()
        host = fields[5].strip("()") if len(fields) > 5 else ""
        rows.append((*fields[:5], host))
    return rows


def _as_who(users: list[dict]) -> list[tuple[str, ...]]:
    """Probe users in the shape `who` prints them in the C locale: "Nov 21 15:46"."""
    rows = []
    for user in users:
        since = time.strptime(user["since"], "%Y-%m-%dT%H:%M:%SZ")
        month, day, clock = time.strftime("%b %e %H:%M", since).split()
        rows.append((user["name"], user["tty"], month, day, clock, user["from"] or ""))
    return rows


@pytest.mark.skipif(shutil.which("who") is None, reason="`who` is not installed")
def test_users_match_who_on_this_machine(live: dict) -> None:
    assert _as_who(live["users"]) == _who()


@pytest.mark.skipif(shutil.which("who") is None, reason="`who` is not installed")
def test_users_match_who_on_a_written_utmp(tmp_path: Path) -> None:
    """CI machines rarely have anyone logged in, so also compare on a utmp file we write:
    `who FILE` reads it with the same rules (USER_PROCESS only, no pid check)."""
    layout = struct.Struct("=hxxi32s4s32s256shhiii16s20x")
    records = [(7, 100, b"pts/0", b"alice", b"10.0.0.9", 1763740000),
               (6, 101, b"tty1", b"LOGIN", b"", 1763740100),
               (7, 102, b"tty2", b"bob", b"", 1763740200),
               (8, 103, b"pts/1", b"", b"", 1763740300),
               (7, 104, b"pts/2", b"carol", b"host.example.org", 1763740400)]
    utmp = tmp_path / "utmp"
    utmp.write_bytes(b"".join(layout.pack(t, pid, line, b"", user, host, 0, 0, 0, sec, 0, b"")
                              for t, pid, line, user, host, sec in records))
    out = probe.collect({"cpu_sample_s": 0, "utmp_path": str(utmp), "utmp_check_pids": False})
    assert [u["name"] for u in out["users"]] == ["alice", "bob", "carol"]
    assert _as_who(out["users"]) == _who(str(utmp))


def test_vermin_says_python_36() -> None:
    """Python 3.6 is the oldest server interpreter we support; vermin proves the syntax
    and stdlib calls allow it (CI installs vermin with the test extras)."""
    pytest.importorskip("vermin")
    runner = "import sys; from vermin import main; sys.argv[0] = 'vermin'; sys.exit(main())"
    done = subprocess.run([sys.executable, "-c", runner, "-t=3.6-", "--no-tips",
                           "--violations", str(PROBE)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=120)
    assert done.returncode == 0, done.stdout.decode()


def _python36() -> str | None:
    candidates = [shutil.which("python3.6") or ""]
    candidates += glob.glob(os.path.expanduser("~/.pyenv/versions/3.6*/bin/python3.6"))
    for path in candidates:
        if path and subprocess.run([path, "-c", "pass"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL).returncode == 0:
            return path
    return None


def test_runs_under_a_real_python_36_when_available() -> None:
    python = _python36()
    if python is None:
        pytest.skip("no Python 3.6 interpreter on this machine")
    out = run_piped({"cpu_sample_s": 0.1}, python=python)
    assert out["system"]["python"].startswith("3.6.")
    assert out["errors"] == {}
    assert out["cpu"]["percent"] is not None


def test_source_is_ascii_for_c_locale_interpreters() -> None:
    SOURCE.encode("ascii")


def test_probe_stays_stdlib_only() -> None:
    """Nothing of ours and nothing from site-packages: it must run on a bare server."""
    done = subprocess.run([sys.executable, "-I", "-S", str(PROBE)], capture_output=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["errors"] == {}


def test_runs_when_exec_from_a_stdin_string() -> None:
    """The cheaper transport the bench measures (`-c exec(compile(stdin))`): same output."""
    runner = "import sys; exec(compile(sys.stdin.read(), 'osmon-probe', 'exec'))"
    source = f"OSMON_PARAMS = {json.dumps({'cpu_sample_s': 0, 'top_n': 1})!r}\n" + SOURCE
    done = subprocess.run([sys.executable, "-I", "-S", "-c", runner], input=source.encode(),
                          capture_output=True, timeout=60, check=True)
    out = json.loads(done.stdout)
    assert out["errors"] == {}
    assert len(out["processes"]["top_cpu"]) == 1  # the params line was seen
