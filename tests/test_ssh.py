"""The SSH transport against a real sshd: healthy hosts and every way a host can let us down.

Each test runs a real pass (``collect.run_pass``) and reads what the store holds, because the
stored line is what the user sees; the error kind and the words of its message are the contract.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import paramiko
import sshd as harness

from collector import config as config_mod
from collector.config import Config, Host
from collector.passes import collect, probe_call

NOW = datetime(2026, 11, 21, 22, 41, 0, tzinfo=timezone.utc)
ROOT = Path(__file__).resolve().parent.parent
Inventory = Callable[..., Config]


def stored(config: Config, host: str) -> list[dict[str, Any]]:
    """Every line of the host's day file, each of which must be valid JSON."""
    path = config.settings.data_dir / "hosts" / host / f"{NOW.date().isoformat()}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def only_line(config: Config, host: str) -> dict[str, Any]:
    lines = stored(config, host)
    assert len(lines) == 1, lines
    return lines[0]


def error_of(config: Config, host: str) -> tuple[str, str]:
    line = only_line(config, host)
    assert line["ok"] is False
    assert line["error"]["kind"] in ("unreachable", "timeout", "auth", "hostkey", "probe",
                                     "invalid-output")
    return line["error"]["kind"], line["error"]["message"]


def test_healthy_hosts_each_get_a_full_sample(inventory: Inventory) -> None:
    config = inventory(["web1", "web2", "db1"])
    result = collect.run_pass(config, now=NOW)
    assert (result.ok, result.failed) == (3, 0)
    for name in ("web1", "web2", "db1"):
        line = only_line(config, name)
        assert line["v"] == 1 and line["ts"] == "2026-11-21T22:41:00Z" and line["host"] == name
        assert line["ok"] is True and line["error"] is None
        assert line["collect"]["transport"] == "ssh"
        assert 0 < line["collect"]["connect_s"] <= line["collect"]["duration_s"]
        assert abs(line["collect"]["epoch"] - time.time()) < 120
        assert line["system"]["python"].startswith("3.")
        assert 0 <= line["cpu"]["percent"] <= 100  # first pass: measured inside the probe
        assert line["memory"]["total"] > 0 and line["disks"]
        assert "probe" not in line  # only the documented sections reach the log


def test_second_pass_rates_over_the_interval_between_passes(inventory: Inventory) -> None:
    config = inventory(["web1"])
    collect.run_pass(config, now=NOW)
    first = only_line(config, "web1")
    params = probe_call.probe_params(config, config.hosts[0], first)
    assert params["cpu_sample_s"] == 0  # the stored counters serve as the first reading
    collect.run_pass(config, now=NOW.replace(second=30))
    second = stored(config, "web1")[1]
    assert second["cpu"]["percent_source"] == "interval"
    assert all(isinstance(n["rx_bps"], float) for n in second["net"])


def test_refused_port_is_unreachable(inventory: Inventory, refused_port: int) -> None:
    config = inventory(["down"], hosts={"down": {"port": refused_port}})
    collect.run_pass(config, now=NOW)
    kind, message = error_of(config, "down")
    assert kind == "unreachable"
    assert message == f"connection refused on 127.0.0.1:{refused_port}"


def test_unresolvable_name_is_unreachable(inventory: Inventory) -> None:
    config = inventory(["typo"], hosts={"typo": {"address": "no-such-host.invalid"}})
    collect.run_pass(config, now=NOW)
    kind, message = error_of(config, "typo")
    assert kind == "unreachable" and "cannot resolve no-such-host.invalid" in message


def test_silent_listener_times_out_within_the_ssh_timeout(inventory: Inventory,
                                                          silent_port: int) -> None:
    config = inventory(["hung", "fine"], settings={"ssh_timeout_s": 1.5},
                       hosts={"hung": {"port": silent_port}})
    result = collect.run_pass(config, now=NOW)
    kind, message = error_of(config, "hung")
    assert kind == "timeout"
    assert "SSH banner" in message or "1.5 s" in message
    assert only_line(config, "fine")["ok"] is True
    assert result.duration_s < 25  # bounded by the step timeout, not by the silent host


def test_hard_host_deadline_applies_when_paramiko_would_wait(inventory: Inventory,
                                                             silent_port: int) -> None:
    """With paramiko's own timeouts far away, the host deadline alone ends the wait."""
    config = inventory(["hung", "fine"], settings={"ssh_timeout_s": 120, "host_deadline_s": 2},
                       hosts={"hung": {"port": silent_port}})
    result = collect.run_pass(config, now=NOW)
    kind, message = error_of(config, "hung")
    assert kind == "timeout"
    assert message == "no answer within 2 s (host deadline, during SSH handshake)"
    assert only_line(config, "fine")["ok"] is True
    assert result.duration_s < 60


def test_command_step_has_its_own_timeout_stretched_by_the_host_checks(
        inventory: Inventory, sshd: harness.Sshd) -> None:
    """A probe that never finishes is cut at ``ssh_timeout_s``; one that runs custom checks
    may take as long as its checks are allowed to (they run inside the same command)."""
    mute = sshd.script("mute.sh", "cat >/dev/null\nexec >&- 2>&-\nsleep 20\n")
    slow = sshd.script("slow_checks.sh", "sleep 4\nexec python3 -\n")
    config = inventory(
        ["mute", "checked"], settings={"ssh_timeout_s": 3, "host_deadline_s": 30},
        hosts={"mute": {"python": str(mute)}, "checked": {"python": str(slow)}},
        extra='[[checks]]\nname = "true"\ncommand = ["/bin/true"]\ntimeout_s = 5\n'
              'hosts = ["checked"]\n')
    collect.run_pass(config, now=NOW)
    assert error_of(config, "mute") == ("timeout", "no answer within 3 s (command)")
    assert only_line(config, "checked")["ok"] is True  # 4 s > 3 s, but within 3 + 5 s


def test_hard_host_deadline_applies_while_the_command_runs(inventory: Inventory,
                                                           sshd: harness.Sshd) -> None:
    mute = sshd.script("mute_long.sh", "cat >/dev/null\nexec >&- 2>&-\nsleep 20\n")
    config = inventory(["mute"], settings={"ssh_timeout_s": 120, "host_deadline_s": 3},
                       hosts={"mute": {"python": str(mute)}})
    result = collect.run_pass(config, now=NOW)
    assert error_of(config, "mute") == (
        "timeout", "no answer within 3 s (host deadline, during command)")
    assert result.duration_s < 60


def test_remote_command_quotes_the_interpreter_through_a_shell(inventory: Inventory,
                                                               tmp_path: Path) -> None:
    """Config validation refuses such a value; the quoting is the second line of defence:
    through a real shell, the value is one word that names no interpreter."""
    marker = tmp_path / "pwned"
    command = probe_call.remote_command(inventory(["a"]),
                                        Host(name="a", python=f"python3; touch {marker}"))
    done = subprocess.run(["sh", "-c", command], input=b"python\n", capture_output=True,
                          timeout=30)
    assert done.returncode == 127 and not marker.exists()
    assert f"python3; touch {marker}".encode() in done.stderr  # named whole, as one word


def test_remote_command_is_one_fixed_string_per_host(inventory: Inventory) -> None:
    """What varies per pass (the probe, its language, the parameters) is on stdin: the command
    of a host is the same for the Python and the shell probe, and only its interpreter
    changes it."""
    config = inventory(["web"])
    web = Host(name="web", python="/usr/bin/python3")
    assert probe_call.remote_command(config, web) == probe_call.remote_command(
        config, Host(name="web", python="/usr/bin/python3", probe="sh", tags=("x",)))
    assert "/usr/bin/python3 -I -S -" in probe_call.remote_command(config, web)
    done = subprocess.run(["sh", "-c", probe_call.remote_command(config, web)], input=b"perl\n",
                          capture_output=True, timeout=30)
    assert done.returncode == 2 and b"unknown probe language" in done.stderr


def test_remote_command_quotes_the_interpreter(inventory: Inventory) -> None:
    """Config validation refuses such a value; the quoting is the second line of defence."""
    config = inventory(["a"])
    command = probe_call.remote_command(config, Host(name="a", python="/usr/bin/python3"))
    assert shlex.split(command)[:3] == ["exec", "sh", "-c"]
    assert "exec /usr/bin/python3 -I -S -" in shlex.split(command)[3]
    hostile = probe_call.remote_command(config, Host(name="a", python="python3; reboot"))
    inner = shlex.split(hostile)[3]
    assert "exec python3\\;\\ reboot -I -S -" in inner
    assert "; reboot -I" not in inner and '"' not in hostile


def test_pass_deadline_records_every_unfinished_host(inventory: Inventory,
                                                     silent_port: int) -> None:
    names = ["hung1", "hung2", "hung3"]
    config = inventory(names, settings={"ssh_timeout_s": 120, "host_deadline_s": 100,
                                        "pass_deadline_s": 2, "concurrency": 1},
                       hosts={n: {"port": silent_port} for n in names})
    result = collect.run_pass(config, now=NOW)
    assert result.duration_s < 60
    assert error_of(config, "hung1") == (
        "timeout", "pass deadline of 2 s reached (during SSH handshake)")
    for name in ("hung2", "hung3"):
        kind, message = error_of(config, name)
        assert kind == "timeout" and message.startswith("not tried: pass deadline of 2 s")


def test_a_hung_host_does_not_keep_osmon_collect_alive(sshd: harness.Sshd, tmp_path: Path,
                                                       silent_port: int) -> None:
    """The abandoned worker is a daemon thread: the process exits when the pass is over."""
    path = sshd.write_hosts_toml(tmp_path / "hosts.toml", ["hung", "fine"],
                                 settings={"ssh_timeout_s": 300, "host_deadline_s": 2},
                                 hosts={"hung": {"port": silent_port}})
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "collector", "--config", str(path),
                             "collect"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 60
    assert result.stdout == "hung: timeout: no answer within 2 s (host deadline, during SSH " \
                            "handshake)\n"


def test_changed_host_key_is_refused_and_never_added(inventory: Inventory,
                                                     tmp_path: Path) -> None:
    impostor_key = harness.generate_key(tmp_path / "impostor")
    config = inventory(["web1"], settings={"host_key_policy": "accept-new"})
    # The user's known_hosts holds another key for this host:port: a changed key.
    known = Path(str(config.settings.known_hosts))
    impostor = paramiko.PKey.from_path(str(impostor_key))
    known.write_text(f"[127.0.0.1]:{config.hosts[0].port} {impostor.get_name()} "
                     f"{impostor.get_base64()}\n", encoding="ascii")
    before = known.read_bytes()
    collect.run_pass(config, now=NOW)
    kind, message = error_of(config, "web1")
    assert kind == "hostkey"
    assert "host key for web1" in message and "changed" in message
    assert "possible attack" in message and "ssh-keygen -R" in message
    assert known.read_bytes() == before
    osmon_known = config.settings.osmon_known_hosts
    assert osmon_known is not None
    assert not osmon_known.exists() or osmon_known.read_text() == ""


def test_unknown_host_key_is_refused_under_strict(inventory: Inventory) -> None:
    config = inventory(["web1"])
    Path(str(config.settings.known_hosts)).write_text("", encoding="ascii")
    collect.run_pass(config, now=NOW)
    kind, message = error_of(config, "web1")
    assert kind == "hostkey"
    assert "is not in" in message and "ssh-keyscan -p" in message and "accept-new" in message


def test_accept_new_records_the_key_once_then_is_strict(inventory: Inventory,
                                                        sshd: harness.Sshd,
                                                        tmp_path: Path) -> None:
    names = [f"alias{i}" for i in range(8)]  # same host:port, accepted by 8 threads at once
    config = inventory(names, settings={"host_key_policy": "accept-new"})
    Path(str(config.settings.known_hosts)).write_text("", encoding="ascii")
    result = collect.run_pass(config, now=NOW)
    assert result.failed == 0
    osmon_known = config.settings.osmon_known_hosts
    assert osmon_known is not None
    assert osmon_known.read_text(encoding="ascii").splitlines() == \
        [sshd.known_hosts_line().strip()]
    # Now recorded, the key is enforced: a strict pass with the same files succeeds ...
    strict = inventory(names, settings={"host_key_policy": "strict",
                                        "known_hosts": str(config.settings.known_hosts),
                                        "osmon_known_hosts": str(osmon_known)})
    Path(str(strict.settings.known_hosts)).write_text("", encoding="ascii")
    assert collect.run_pass(strict, now=NOW.replace(minute=42)).failed == 0
    # ... and once osmon's file holds another key, accept-new refuses and keeps the file.
    impostor = paramiko.PKey.from_path(str(harness.generate_key(tmp_path / "impostor")))
    osmon_known.write_text(sshd.known_hosts_line(impostor), encoding="ascii")
    before = osmon_known.read_bytes()
    config = inventory(["alias0"], settings={"host_key_policy": "accept-new",
                                             "osmon_known_hosts": str(osmon_known)})
    Path(str(config.settings.known_hosts)).write_text("", encoding="ascii")
    result = collect.run_pass(config, now=NOW.replace(minute=43))
    assert result.outcomes[0].error["kind"] == "hostkey"  # type: ignore[index]
    assert "changed" in result.outcomes[0].error["message"]  # type: ignore[index]
    assert osmon_known.read_bytes() == before


def test_accept_new_without_a_writable_known_hosts_refuses(inventory: Inventory) -> None:
    """A key osmon cannot record is not trusted.  /proc: readable (no such file) and not
    writable even by root, which the suite may run as."""
    target = Path("/proc/osmon-test-known_hosts")
    config = inventory(["web1"], settings={"host_key_policy": "accept-new",
                                           "osmon_known_hosts": str(target)})
    Path(str(config.settings.known_hosts)).write_text("", encoding="ascii")
    collect.run_pass(config, now=NOW)
    kind, message = error_of(config, "web1")
    assert kind == "hostkey"
    assert message.startswith(f"cannot record the new host key of "
                              f"[127.0.0.1]:{config.hosts[0].port} in {target}: ")


def test_wrong_client_key_is_auth(inventory: Inventory, tmp_path: Path) -> None:
    stranger = harness.generate_key(tmp_path / "stranger")
    config = inventory(["web1"], hosts={"web1": {"identity_file": str(stranger)}})
    collect.run_pass(config, now=NOW)
    kind, message = error_of(config, "web1")
    assert kind == "auth"
    assert "refused the key" in message and str(stranger) in message
    assert "authorized_keys" in message


def test_missing_identity_file_is_auth(inventory: Inventory, tmp_path: Path) -> None:
    config = inventory(["web1"], hosts={"web1": {"identity_file": str(tmp_path / "nope")}})
    collect.run_pass(config, now=NOW)
    assert error_of(config, "web1") == ("auth", f"identity file {tmp_path / 'nope'} does not "
                                                f"exist")


def test_missing_remote_interpreter_is_probe(inventory: Inventory) -> None:
    # Several at once: the shell may exit before the probe is sent, which must not matter.
    # probe = "python": with "auto" (the default) such a host gets the shell probe instead
    # (tests/test_probe_sh_live.py).
    names = [f"bare{i}" for i in range(6)]
    config = inventory(names, hosts={n: {"python": "/nonexistent/python3", "probe": "python"}
                                     for n in names})
    collect.run_pass(config, now=NOW)
    for name in names:
        kind, message = error_of(config, name)
        assert kind == "probe"
        assert message.startswith("/nonexistent/python3 not found on the host (exit 127): ")
        assert message.endswith("not found")  # the shell's own words


def test_failing_interpreter_is_probe_with_its_first_stderr_line(inventory: Inventory,
                                                                 sshd: harness.Sshd) -> None:
    failing = sshd.script("failing.sh", "cat >/dev/null\necho 'boom: \033[31mbad\n' >&2\n"
                                        "exit 3\n")
    config = inventory(["web1"], hosts={"web1": {"python": str(failing)}})
    collect.run_pass(config, now=NOW)
    assert error_of(config, "web1") == ("probe", "the probe failed with exit status 3: "
                                                 "boom:  [31mbad")


def test_garbage_output_is_invalid_output_and_never_stored(inventory: Inventory,
                                                           sshd: harness.Sshd) -> None:
    garbage = sshd.script("garbage.sh", "cat >/dev/null\necho '<script>GARBAGE{'\n")
    wrong = sshd.script("wrong_shape.sh",
                        "cat >/dev/null\necho '{\"probe\": 1, \"cpu\": \"SHAPELESS\"}'\n")
    config = inventory(["junk", "shape"], hosts={"junk": {"python": str(garbage)},
                                                 "shape": {"python": str(wrong)}})
    collect.run_pass(config, now=NOW)
    kind, message = error_of(config, "junk")
    assert kind == "invalid-output" and message.startswith("not JSON")
    kind, message = error_of(config, "shape")
    assert kind == "invalid-output" and message.startswith("wrong shape")
    data = b"".join(p.read_bytes() for p in config.settings.data_dir.glob("hosts/*/*.jsonl"))
    assert b"GARBAGE" not in data and b"SHAPELESS" not in data


def test_a_bad_probe_version_is_not_quoted_into_the_log(inventory: Inventory,
                                                        sshd: harness.Sshd) -> None:
    liar = sshd.script("liar.sh", "cat >/dev/null\necho '{\"probe\": \"LEAKED<b>\"}'\n")
    config = inventory(["liar"], hosts={"liar": {"python": str(liar)}})
    collect.run_pass(config, now=NOW)
    kind, message = error_of(config, "liar")
    assert kind == "invalid-output"
    assert "LEAKED" not in message


def test_hundred_mib_of_output_is_cut_and_memory_stays_bounded(sshd: harness.Sshd,
                                                               tmp_path: Path) -> None:
    flood = sshd.script("flood.sh", "cat >/dev/null\nhead -c 104857600 /dev/zero\n")
    path = sshd.write_hosts_toml(tmp_path / "hosts.toml", ["flood", "fine"],
                                 hosts={"flood": {"python": str(flood)}})
    # A separate process, so its peak RSS measures this pass alone.
    code = (
        "import json, resource, sys\n"
        "from collector import config\nfrom collector.passes import collect\n"
        "cfg = config.load(sys.argv[1])\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "result = collect.run_pass(cfg)\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(json.dumps({'growth_kib': peak - base,\n"
        "                  'errors': {o.host: o.sample['error'] for o in result.outcomes}}))\n")
    run = subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["errors"]["flood"] == {"kind": "invalid-output",
                                         "message": "more than 4 MiB of output; stopped reading"}
    assert report["errors"]["fine"] is None
    assert report["growth_kib"] < 40 * 1024, report


def test_endless_stderr_is_invalid_output(inventory: Inventory, sshd: harness.Sshd) -> None:
    shouter = sshd.script("shouter.sh", "cat >/dev/null\nhead -c 5000000 /dev/zero >&2\n")
    config = inventory(["web1"], hosts={"web1": {"python": str(shouter)}})
    collect.run_pass(config, now=NOW)
    assert error_of(config, "web1") == ("invalid-output", "more than 1 MiB on stderr")


def test_stderr_noise_does_not_spoil_a_good_answer(inventory: Inventory,
                                                   sshd: harness.Sshd) -> None:
    """A chatty interpreter (warnings on stderr) still gives a sample: stderr is read apart."""
    noisy = sshd.script("noisy.sh", "head -c 300000 /dev/zero | tr '\\0' x >&2\n"
                                    "exec python3 -\n")
    config = inventory(["web1"], hosts={"web1": {"python": str(noisy)}})
    collect.run_pass(config, now=NOW)
    assert only_line(config, "web1")["ok"] is True


def test_collect_hosts_alone_stores_nothing(inventory: Inventory, refused_port: int) -> None:
    """What ``osmon check`` uses: outcomes in config order, nothing written."""
    config = inventory(["web1", "down"], hosts={"down": {"port": refused_port}})
    outcomes = collect.collect_hosts(config, config.hosts, store=None, started=NOW,
                                     deadline=time.monotonic() + 60)
    assert [(o.host, o.ok) for o in outcomes] == [("web1", True), ("down", False)]
    assert not config.settings.data_dir.exists()


def test_passes_do_not_leak_file_descriptors(inventory: Inventory, refused_port: int) -> None:
    """``osmon run`` makes a pass a minute for months: sockets and pipes must all be closed."""
    config = inventory(["web1", "web2", "down"], hosts={"down": {"port": refused_port}})
    collect.run_pass(config, now=NOW)
    before = len(os.listdir("/proc/self/fd"))
    for minute in range(42, 45):
        collect.run_pass(config, now=NOW.replace(minute=minute))
    assert len(os.listdir("/proc/self/fd")) <= before


def _doctored_probe(sshd: harness.Sshd, name: str, edit: str) -> Path:
    """A host whose real probe answer is altered by ``edit`` (Python acting on the dict ``d``)
    before it reaches us: a compromised host, well-formed enough to pass the schema."""
    return sshd.script(name, "python3 -I -S - | python3 -c '" + (
        "import json, sys\n"
        "d = json.load(sys.stdin)\n" + edit + "\n"
        "sys.stdout.write(json.dumps(d))\n") + "'\n")


def test_lone_surrogates_and_escape_codes_from_a_host_cost_nothing(
        inventory: Inventory, sshd: harness.Sshd) -> None:
    """A lone surrogate once made the store raise and ended the whole pass; control characters
    made the charts ill-formed XML. Both are replaced by U+FFFD and both hosts are stored."""
    evil = _doctored_probe(sshd, "surrogates.sh", (
        'd["system"]["hostname"] = "\\ud800evil\\x1b[31m"\n'
        'd["errors"]["\\udcff\\x07"] = "bell \\x07 and \\ud800"'))
    config = inventory(["evil", "good"], hosts={"evil": {"python": str(evil)}})
    result = collect.run_pass(config, now=NOW)
    assert (result.ok, result.failed) == (2, 0)
    line = only_line(config, "evil")
    assert line["system"]["hostname"] == "\ufffdevil\ufffd[31m"
    assert line["errors"] == {"\ufffd\ufffd": "bell \ufffd and \ufffd"}
    assert only_line(config, "good")["ok"] is True


def test_a_host_sending_a_huge_sample_gets_a_failure_line_not_the_store(
        inventory: Inventory, sshd: harness.Sshd) -> None:
    """Each string within its cap, but 3,000 of them: over 512 KiB a line, every minute,
    which the total-size retention would pay for with every other host's history."""
    evil = _doctored_probe(sshd, "huge.sh", (
        'd["users"] = [{"name": "u" * 64, "tty": "t" * 64, "from": "f" * 256, '
        '"since": None} for _ in range(3000)]'))
    config = inventory(["evil", "good"], hosts={"evil": {"python": str(evil)}})
    collect.run_pass(config, now=NOW)
    kind, message = error_of(config, "evil")
    assert kind == "invalid-output"
    assert re.fullmatch(r"a sample of \d+ KiB, over the 512 KiB a line may hold", message)
    day_file = config.settings.data_dir / "hosts" / "evil" / f"{NOW:%Y-%m-%d}.jsonl"
    assert day_file.stat().st_size < 4096
    assert only_line(config, "good")["ok"] is True


def test_the_unknown_key_hint_works_where_no_ssh_directory_exists_yet(
        inventory: Inventory, tmp_path: Path) -> None:
    """A new admin copies the hint into a shell: it must work on a machine where ``~/.ssh``
    was never made, and make it private (mode 700) as ssh wants it."""
    home = tmp_path / "home"
    home.mkdir()
    config = inventory(["web1"], settings={"known_hosts": str(home / ".ssh" / "known_hosts")})
    collect.run_pass(config, now=NOW)
    kind, message = error_of(config, "web1")
    assert kind == "hostkey"
    command = message.split("add it with: ", 1)[1].split(" (or set host_key_policy", 1)[0]
    ran = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True,
                         timeout=60, env=dict(os.environ, HOME=str(home)))
    assert ran.returncode == 0, (command, ran.stderr)
    assert (home / ".ssh").stat().st_mode & 0o777 == 0o700
    again = collect.run_pass(config, now=NOW.replace(minute=42))
    assert again.ok == 1, again.failures()[0].describe() if again.failures() else ""


def test_a_login_the_account_refuses_reports_the_line_that_explains(tmp_path: Path) -> None:
    """A service account (shell nologin, home /nonexistent): sshd first says it cannot chdir
    home, then nologin says why nothing runs.  The stored error must carry nologin's line."""
    if os.geteuid() == 0:
        user: str | None = harness.ensure_nologin_account()
        options: dict[str, Any] = {"extra_users": [user]}
    else:  # sshd cannot log in another account: the same refusal through ForceCommand
        user, options = None, {"force_command": harness.NOLOGIN_SHELL}
    with harness.running_sshd(**options) as server:
        path = server.write_hosts_toml(tmp_path / "hosts.toml", ["svc"],
                                       hosts={"svc": {"user": user}} if user else None)
        config = config_mod.load(path)
        collect.run_pass(config, now=NOW)
    kind, message = error_of(config, "svc")
    assert kind == "probe"
    assert message.startswith("the probe failed with exit status 1: "
                              "This account is currently not available."), message
    if user is not None:  # sshd's line is still said, after it
        assert message.endswith("(also said: Could not chdir to home directory /nonexistent: "
                                "No such file or directory)"), message


def test_long_output_is_reported_by_its_last_line() -> None:
    from collector.transport.host_text import failure_output

    traceback = (b"Traceback (most recent call last):\n  File \"<stdin>\", line 3, in <module>\n"
                 b"    import json\n\nModuleNotFoundError: No module named 'json'\n")
    assert failure_output(traceback) == "ModuleNotFoundError: No module named 'json'"
    assert failure_output(b"\n  one line only \n\n") == "one line only"
    assert failure_output(b"first\n", b"second\n") == "second (also said: first)"
    assert failure_output(b"oops\n", b'{"partial": ') == "oops"  # the probe's JSON is no reason
    assert failure_output(b"") == ""
    assert "\x1b" not in failure_output(b"\x1b[2Jbad\n")  # a host's escapes stay out
    assert len(failure_output(b"x" * 5000)) <= 301
