"""Nothing osmon starts on a host outlives the host's deadline by more than a few seconds,
whatever hangs there, and the remote command stays one fixed string per host.

The hosts are a private sshd that adopts its sessions' orphans (``subreaper``), so what a
killed session left running is still below it: the tests look at that sshd's process tree,
never at every process of the test account (other suites use it at the same time)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sshd as harness
from process_fixtures import SLACK_S

from collector import config as config_mod
from collector.config import Config
from collector.passes import collect, probe_call

#: What the host-side limit may add to the host's deadline: the grace and process start-up.
FEW_S = probe_call.REMOTE_GRACE_S + 3


@pytest.fixture(scope="module")
def reaping_sshd() -> Iterator[harness.Sshd]:
    with harness.running_sshd(subreaper=True) as server:
        yield server


def left_below(server: harness.Sshd) -> list[tuple[int, str]]:
    """Processes below the sshd but its own session processes."""
    return [(pid, cmd) for pid, cmd in server.descendants() if not cmd.startswith("sshd")]


def test_nothing_a_hung_host_runs_outlives_its_deadline(reaping_sshd: harness.Sshd,
                                                        tmp_path: Path) -> None:
    server = reaping_sshd
    interpreters = {
        # never reads its input: what a wrong `python` that waits on something looks like
        "mute": "exec sleep 1000\n",
        # reads the probe, then hangs in a child (a probe stuck in a dead NFS statvfs)
        "stuck": "cat >/dev/null\nsleep 1000\n",
        # leaves a child of its own in the background, then hangs too
        "spawner": "cat >/dev/null\nsleep 1000 &\nsleep 1000\n",
    }
    hosts = {name: {"python": str(server.script(f"{name}-{tmp_path.name}.sh", body))}
             for name, body in interpreters.items()}
    path = server.write_hosts_toml(tmp_path / "hosts.toml", list(interpreters),
                                   settings={"ssh_timeout_s": 1, "host_deadline_s": 3},
                                   hosts=hosts)
    config = config_mod.load(path)
    try:
        result = collect.run_pass(config)
        ended = time.monotonic()
        assert [o.error["kind"] for o in result.outcomes] == ["timeout"] * 3
        while left_below(server) and time.monotonic() < ended + FEW_S:
            time.sleep(0.1)
        assert left_below(server) == []
    finally:
        for pid, _cmd in left_below(server):  # without the fix: do not leave them running
            os.kill(pid, signal.SIGKILL)


def test_the_remote_command_is_one_fixed_string_per_host(sshd: harness.Sshd,
                                                         tmp_path: Path) -> None:
    path = sshd.write_hosts_toml(
        tmp_path / "hosts.toml", ["plain", "checked"], settings={"ssh_timeout_s": 10},
        extra='[[checks]]\nname = "slow"\ncommand = ["/bin/true"]\ntimeout_s = 15\n'
              'hosts = ["checked"]\n')
    config = config_mod.load(path)
    plain, checked = config.hosts
    first = probe_call.remote_command(config, plain)
    assert first == probe_call.remote_command(config_mod.load(path), plain)
    assert "timeout -s KILL 12 python3 -I -S -" in first  # 10 s + the grace
    assert "timeout -s KILL 28 python3 -I -S -" in probe_call.remote_command(config, checked)


def _run_with_path(command: str, bin_dir: Path, stdin: bytes,
                   timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    """The remote command as the host's shell runs it (dash), with only ``bin_dir`` on PATH."""
    return subprocess.run(["/bin/dash", "-c", command], input=stdin, capture_output=True,
                          timeout=timeout, env={"PATH": str(bin_dir)})


@pytest.mark.parametrize("timeout", ["none", "busybox", "old busybox"])
def test_the_probe_runs_with_any_or_no_timeout_on_the_host(sshd: harness.Sshd, tmp_path: Path,
                                                           timeout: str) -> None:
    """A host without ``timeout``, with BusyBox's, or with a BusyBox older than 1.30 whose
    ``timeout`` wants ``-t SECS`` (it exits 127 without reading anything), still answers."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "python3"):
        (bin_dir / tool).symlink_to(f"/usr/bin/{tool}" if tool == "python3" else "/bin/dash")
    if timeout == "busybox":
        (bin_dir / "timeout").symlink_to("/usr/bin/busybox")
    elif timeout == "old busybox":  # what BusyBox 1.29's applet does with the new syntax
        (bin_dir / "timeout").write_text(
            "#!/bin/dash\necho \"timeout: can't execute '$3': No such file or directory\" >&2\n"
            "exit 127\n")
        (bin_dir / "timeout").chmod(0o755)
    config = config_mod.load(sshd.write_hosts_toml(tmp_path / "hosts.toml", ["h"]))
    command = probe_call.remote_command(config, config.hosts[0])
    stdin = probe_call.python_stdin({"cpu_sample_s": 0}, probe_call.load_probe())
    run = _run_with_path(command, bin_dir, stdin)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["probe"] == 1


def _hanging_python(tmp_path: Path, tools: dict[str, str]) -> tuple[Path, Config]:
    """A PATH of ``tools`` (name -> target) whose ``python3`` never reads its input, and a
    host with ``ssh_timeout_s = 1``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool, target in tools.items():
        (bin_dir / tool).symlink_to(target)
    hang = bin_dir / "python3"
    hang.write_text("#!/bin/dash\nexec /bin/sleep 1000\n")
    hang.chmod(0o755)
    path = tmp_path / "hosts.toml"
    path.write_text('[settings]\nssh_timeout_s = 1\nhost_deadline_s = 3\n'
                    '[[hosts]]\nname = "h"\naddress = "192.0.2.1"\nuser = "u"\n')
    return bin_dir, config_mod.load(path)


def test_busybox_timeout_kills_an_interpreter_that_hangs(tmp_path: Path) -> None:
    bin_dir, config = _hanging_python(tmp_path, {"sh": "/bin/dash",
                                                 "timeout": "/usr/bin/busybox"})
    command = probe_call.remote_command(config, config.hosts[0])
    limit = int(re.search(r"timeout -s KILL (\d+) ", command).group(1))
    assert limit == 1 + probe_call.REMOTE_GRACE_S  # ssh_timeout_s, no checks, the grace
    started = time.monotonic()
    run = _run_with_path(command, bin_dir, b"python\n")
    assert run.returncode == 137  # 128 + SIGKILL: killed by timeout, not ended by itself
    assert limit <= time.monotonic() - started < limit + SLACK_S  # not after its 1,000 s


def _resident_run(command: str, bin_dir: Path, stdin: bytes,
                  timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    """The remote command as sshd runs it: a session of its own (its watchdog kills the
    session's process group), dash as the shell, only ``bin_dir`` on PATH."""
    return subprocess.run(["/bin/dash", "-c", command], input=stdin, capture_output=True,
                          timeout=timeout, env={"PATH": str(bin_dir)}, start_new_session=True)


def _resident_bin(tmp_path: Path, sleep: str | None) -> Path:
    """A PATH with dash, python3 and cat, and ``sleep`` from coreutils, BusyBox or none."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool, target in (("sh", "/bin/dash"), ("python3", "/usr/bin/python3"),
                         ("cat", "/bin/cat")):
        (bin_dir / tool).symlink_to(target)
    if sleep is not None:
        (bin_dir / "sleep").symlink_to(sleep)
    return bin_dir


def _read_answer(stream: Any, request_id: int) -> dict[str, Any]:
    head = stream.readline(64).split()
    assert head[:2] == [b"osmon", str(request_id).encode()], head
    return json.loads(stream.read(int(head[2])))


def _request(request_id: int) -> bytes:
    return json.dumps({"id": request_id, "params": {"cpu_sample_s": 0}}).encode() + b"\n"


def _group(pgid: int) -> list[str]:
    """The command names of the processes of process group ``pgid``."""
    names = []
    for entry in os.listdir("/proc"):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except (OSError, ValueError):
            continue
        if entry.isdigit() and int(stat[stat.rindex(")") + 2:].split()[2]) == pgid:
            names.append(stat[stat.index("(") + 1:stat.rindex(")")])
    return names


@pytest.mark.parametrize("sleep", ["/bin/sleep", "/usr/bin/busybox", None],
                         ids=["coreutils", "busybox", "no sleep"])
def test_a_resident_probe_outlives_its_start_up_limit_alone_in_its_session(
        sshd: harness.Sshd, tmp_path: Path, sleep: str | None) -> None:
    """Once the probe serves, the start-up watchdog is gone: the session's process group is
    the probe alone (the shell became it: no shell, no watchdog, no sleep left waiting on
    the host), and it still answers after the start-up limit.  A host without ``sleep`` gets
    no limit, and the probe serves all the same."""
    config = config_mod.load(sshd.write_hosts_toml(tmp_path / "hosts.toml", ["h"]))
    command = probe_call.remote_command(config, config.hosts[0])
    limit = int(re.search(r"sleep (\d+) ", command).group(1))
    started = subprocess.Popen(["/bin/dash", "-c", command], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={"PATH": str(_resident_bin(tmp_path, sleep))},
                               start_new_session=True)
    assert started.stdin is not None and started.stdout is not None
    try:
        started.stdin.write(probe_call.resident_stdin(probe_call.load_probe()) + _request(1))
        started.stdin.flush()
        assert _read_answer(started.stdout, 1)["probe"] == 1
        deadline = time.monotonic() + SLACK_S
        while _group(started.pid) != ["python3"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _group(started.pid) == ["python3"]
        time.sleep(limit + 1)
        started.stdin.write(_request(2))
        started.stdin.flush()
        assert _read_answer(started.stdout, 2)["probe"] == 1
        rest, errors = started.communicate(timeout=30)  # the end of input ends the probe
        assert (started.returncode, rest, errors) == (0, b"", b"")
    finally:
        if started.poll() is None:
            os.killpg(started.pid, signal.SIGKILL)
            started.wait(10)
        for stream in (started.stdin, started.stdout, started.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.parametrize("sleep", ["/bin/sleep", "/usr/bin/busybox"])
def test_the_resident_watchdog_kills_an_interpreter_that_hangs(tmp_path: Path,
                                                               sleep: str) -> None:
    bin_dir, config = _hanging_python(tmp_path, {"sh": "/bin/dash", "sleep": sleep})
    started = time.monotonic()
    run = _resident_run(probe_call.remote_command(config, config.hosts[0]), bin_dir,
                        b"resident\n")
    assert run.returncode == -signal.SIGKILL  # the whole session's process group
    assert time.monotonic() - started < 1 + probe_call.REMOTE_GRACE_S + 3
