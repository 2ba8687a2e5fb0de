"""The shell probe (remote_probe/probe.sh) against probe.py, under BusyBox, dash and bash --posix.

Every /proc fixture tree of tests/fixtures/proc/ is read by both probes and every field both
read from /proc is compared (one cross-check, run on every tree and every shell): probe.py is
the reference, already tested against the captured trees and psutil.  Disk sizes come from a
fake `df` answering the tree's harness.json, as probe.py's tests fake statvfs.  Then what only
a real host shows: this machine against psutil, hostile process names and mount points, a hung
network mount, parameters that try to be code, and checks run as argv lists.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from process_fixtures import SLACK_S, is_dead, wait_for
from sh_fixtures import SCRIPT, SHELLS, applets, busybox, fake_df, run_sh_probe, shell_command
from test_probe_fixtures import FIXTURES, case_params, fake_statvfs

from collector.metrics.families.checks import derive_checks
from collector.metrics.gate import validate_probe_output
from collector.metrics.nagios import OK, UNKNOWN, WARNING
from collector.passes.sh_probe import sh_probe_stdin
from remote_probe import probe

CASES = sorted(path.name for path in FIXTURES.iterdir() if path.is_dir())
#: The sections both probes read from /proc the same way (and, with the fake df, disks).
COMPARED = ("cpu", "memory", "swap", "disks", "disk_io", "net", "pressure", "processes", "users")


def python_answer(case_dir: Path, **overrides: Any) -> dict[str, Any]:
    harness = json.loads((case_dir / "harness.json").read_text())
    out = probe.collect(case_params(case_dir, **overrides),
                        statvfs=fake_statvfs(harness["statvfs"]), now=lambda: harness["now"],
                        platform="linux")
    return json.loads(probe.json_dumps(probe.json_safe(out)))


def shell_answer(shell: str, case_dir: Path, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    harness = json.loads((case_dir / "harness.json").read_text())
    tools = fake_df(tmp_path / "tools", harness["statvfs"])
    return run_sh_probe(shell, case_params(case_dir, **overrides), path_prefix=tools)


def cross_check(sh: dict[str, Any], py: dict[str, Any], boot_time: bool = True) -> None:
    """The shell probe's answer says what probe.py's says, field for field, and the
    collector's gate takes it.  ``boot_time`` False: /proc/stat has no btime, both probes
    derive it from their own clock."""
    validate_probe_output(json.loads(json.dumps(sh)))
    assert sh["probe"] == 1
    assert set(sh["errors"]) == set(py["errors"]), (sh["errors"], py["errors"])
    assert ("system" in sh) == ("system" in py)
    if "system" in py:
        mine, theirs = dict(sh["system"]), dict(py["system"])
        assert mine.pop("python") is None and theirs.pop("python")
        if not boot_time:  # from the clock: probe.py's is the fixture's, ours the real one
            theirs.pop("boot_time")
            assert abs(mine.pop("boot_time") - (time.time() - mine["uptime_s"])) < 5
        assert mine == theirs
    for section in COMPARED:
        assert sh.get(section) == py.get(section), section


def both(shell: str, case_dir: Path, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """Run both probes on a tree, cross-check them, return the shell probe's answer."""
    stat = case_dir / "stat"
    has_btime = stat.exists() and "\nbtime " in stat.read_text(errors="replace")
    sh = shell_answer(shell, case_dir, tmp_path, **overrides)
    cross_check(sh, python_answer(case_dir, **overrides), boot_time=has_btime)
    return sh


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("case", CASES)
def test_every_fixture_reads_like_probe_py(case: str, shell: str, tmp_path: Path) -> None:
    sh = both(shell, FIXTURES / case, tmp_path)
    assert "counters" in sh["processes"] or "processes" in sh["errors"]


@pytest.mark.parametrize("shell", SHELLS)
def test_interval_cpu_percent_from_the_previous_counters(shell: str, tmp_path: Path) -> None:
    """proc_prev as the collector sends it back: the interval percent of a pid whose start
    time matches, the lifetime average of a reused pid, none for a different boot."""
    case = tmp_path / "case"
    shutil.copytree(FIXTURES / "normal-multicore", case)
    (case / "sys" / "kernel" / "random").mkdir()
    (case / "sys" / "kernel" / "random" / "boot_id").write_text("4f3c-this-boot\n")
    current = python_answer(case)["processes"]["counters"]
    assert current["boot_id"] == "4f3c-this-boot"
    ticks = {pid: [start, max(0, value - 1000)] for pid, (start, value) in
             current["ticks"].items()}
    ticks["1500"] = [ticks["1500"][0] + 1, ticks["1500"][1]]  # pid 1500 was another process
    prev = {"uptime": current["uptime"] - 20.0, "boot_id": current["boot_id"], "ticks": ticks}
    sh = both(shell, case, tmp_path, proc_prev=prev)
    assert sh["processes"]["cpu_basis"] == "interval"
    top = {p["pid"]: p["cpu_percent"] for p in sh["processes"]["top_cpu"]}
    assert top[2200] == 50.0  # 1000 ticks in 20 s at 100 Hz: half a CPU
    other_boot = dict(prev, boot_id="another-boot")
    sh = both(shell, case, tmp_path, proc_prev=other_boot)
    assert sh["processes"]["cpu_basis"] == "lifetime"


@pytest.mark.parametrize("shell", SHELLS)
def test_caps_keep_the_same_entries(shell: str, tmp_path: Path) -> None:
    """5,000 interfaces keep the busiest 1,024; a process scan cut at max_processes."""
    case = tmp_path / "case"
    shutil.copytree(FIXTURES / "normal-multicore", case)
    head = ("Inter-|   Receive                                                |  Transmit\n"
            " face |bytes    packets errs drop fifo frame compressed multicast|bytes    "
            "packets errs drop fifo colls carrier compressed\n")
    rows = "".join(f"veth{i}: {(5000 - i) * 7 % 9973} 1 0 0 0 0 0 0 5 1 0 0 0 0 0 0\n"
                   for i in range(5000))
    (case / "net" / "dev").write_text(head + rows)
    sh = both(shell, case, tmp_path, max_processes=3)
    assert len(sh["net"]) == 1024 and sh["errors"]["net:truncated"].startswith("truncated")
    assert (sh["processes"]["count"], sh["processes"]["scanned"]) == (9, 3)


HOSTILE_COMMS = {
    7001: b"$(reboot)",
    7002: b'\\"; rm -rf /',
    7003: b"two\nlines",
    7004: b"\x1b[31mred\x1b[0m",
    7005: b"bad\xff\xfeutf8",
    7006: b"a) R 1 2 3 4 5",
    7007: b"caf\xc3\xa9\t\\x",
}
HOSTILE_CMDLINES = {
    7001: b"/bin/sh\0-c\0$(reboot); `id`\0",
    7002: b'\\"; rm -rf / \0"\0\'\0',
    7003: b"two\nlines\0\0arg with \r CR\0",
    7004: b"\x1b]0;title\x07\0\x1b[2J\0",
    7005: b"/usr/bin/bad\xff\xfeutf8-and-more-than-fifteen\0\xe2\x82\0\xf0\x9f\x98\x80\0",
    7006: b"\0\0  \xc2\xa0 leading-space\0",
    7007: b"caf\xc3\xa9\t\\x" + b"\0" + b"x" * 5000,
}
HOSTILE_MOUNTS = (
    ("/dev/sdx1", b"/mnt/quote\\042and\\134back"),
    ("/dev/sdx2", b"/mnt/line\\012break"),
    ("/dev/sdx3", b"/mnt/esc\\033[31m"),
    ("/dev/sdx4", b"/mnt/bad\xff\xfe"),
    ("/dev/sdx5", b"/mnt/$(reboot);`id`"),
)


def hostile_tree(tmp_path: Path) -> Path:
    """normal-multicore plus processes with hostile names and command lines (the most busy
    ones, so they are in both top lists) and mount points a user could create."""
    case = tmp_path / "hostile"
    shutil.copytree(FIXTURES / "normal-multicore", case)
    template = (case / "1500" / "stat").read_bytes()
    rest = template[template.rindex(b")") + 1:]
    for pid, comm in HOSTILE_COMMS.items():
        (case / str(pid)).mkdir()
        fields = rest.split(b" ")
        fields[14] = str(5000000 + pid).encode()  # utime: busier than every other process
        fields[24] = str(900000 + pid).encode()  # rss pages: larger than every other one
        (case / str(pid) / "stat").write_bytes(str(pid).encode() + b" (" + comm + b")"
                                               + b" ".join(fields))
        (case / str(pid) / "status").write_bytes(b"Name:\tx\nUid:\t1000\t1000\t1000\t1000\n")
        (case / str(pid) / "cmdline").write_bytes(HOSTILE_CMDLINES[pid])
    harness = json.loads((case / "harness.json").read_text())
    with open(case / "self" / "mounts", "ab") as mounts:
        for device, mount in HOSTILE_MOUNTS:
            mounts.write(device.encode() + b" " + mount + b" ext4 rw 0 0\n")
    for _device, mount in HOSTILE_MOUNTS:
        decoded = probe.unescape_mount_field(mount.decode("utf-8", "replace"))
        if "\ufffd" not in decoded:  # no df can be told a name that is not the mount's
            harness["statvfs"][decoded] = [4096, 1000, 500, 400]
    harness["params"]["top_n"] = 10
    (case / "harness.json").write_text(json.dumps(harness))
    return case


@pytest.mark.parametrize("shell", SHELLS)
def test_hostile_names_and_mount_points_stay_data(shell: str, tmp_path: Path) -> None:
    """Quotes, backslashes, $(...), line breaks, escape sequences and bytes that are not
    UTF-8, in process names, command lines and mount points: the same strings as probe.py
    (U+FFFD for what is not UTF-8, as its decode does), in valid JSON."""
    case = hostile_tree(tmp_path)
    raw = both(shell, case, tmp_path)
    assert "disks:/mnt/bad\ufffd\ufffd" in raw["errors"]  # no such mount in the fake df
    names = {p["pid"]: p["name"] for p in raw["processes"]["top_mem"]}
    assert names[7001] == "$(reboot)" and names[7002] == '\\"; rm -rf /'
    assert names[7003] == "two\nlines" and names[7004] == "\x1b[31mred\x1b[0m"
    assert names[7005] == "bad\ufffd\ufffdutf8"
    mounts = [d["mount"] for d in raw["disks"]]
    assert '/mnt/quote"and\\back' in mounts and "/mnt/line\nbreak" in mounts
    assert "/mnt/$(reboot);`id`" in mounts



@pytest.mark.parametrize("shell", SHELLS)
def test_a_control_byte_before_a_digit_in_a_real_mount_point(shell: str, tmp_path: Path) -> None:
    """A real file system mounted at ``x<newline>7`` (``x\\0127`` in /proc/self/mounts): the
    probe tells df that very path, so the sizes are that file system's.  Read as ``\\0127``
    (octal 127, "W"), the path would be ``xW``, which exists here on another file system: its
    sizes would be stored under the hostile name.  A loop-mounted ext2 image, in a private
    mount namespace (nothing else on this machine sees it)."""
    image = tmp_path / "disk.img"
    with open(image, "wb") as fh:
        fh.truncate(4 << 20)
    subprocess.run(["mkfs.ext2", "-q", "-F", str(image)], check=True, capture_output=True,
                   timeout=60)
    mount_point = tmp_path / "x\n7"
    mount_point.mkdir()
    (tmp_path / "xW").mkdir()  # what the path would be read as
    sizes = tmp_path / "sizes"
    argv, env = shell_command(shell)
    setup = ('/bin/mount -o loop "$1" "$2" || exit 77; '
             '/usr/bin/stat -f -c "%S %b %a" "$2" >"$3" || exit 78; shift 3; exec "$@"')
    done = subprocess.run(["unshare", "-m", "--propagation", "private", "/bin/sh", "-c", setup,
                           "sh", str(image), str(mount_point), str(sizes), *argv],
                          input=sh_probe_stdin({}, SCRIPT), capture_output=True, env=env,
                          timeout=60, cwd="/")
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    out = json.loads(done.stdout)
    frsize, blocks, avail = (int(v) for v in sizes.read_text().split())
    [disk] = [d for d in out["disks"] if d["mount"] == str(mount_point)]
    assert (disk["total"], disk["free"]) == (blocks * frsize, avail * frsize)
    assert str(tmp_path / "xW") not in [d["mount"] for d in out["disks"]]
    assert not any(key.startswith("disks:") for key in out["errors"]), out["errors"]

#: Command lines and what leaves the host of them: probe.py's mask_command_line (issue 11)
#: gives the same for each, word by word.
SECRETS = {
    b"python3\0app.py\0--password=hunter2\0--db\0postgres://app:s3cr3t@db/main\0--token\0"
    b"abc123\0API_KEY=k-9\0--verbose\0":
        "python3 app.py --password=[hidden] --db postgres://app:[hidden]@db/main --token "
        "[hidden] API_KEY=[hidden] --verbose",
    b"mysql\0-uroot\0-pS3cret\0db\0": "mysql -uroot -p[hidden] db",
    b"curl\0-H\0Authorization: Bearer xyz.abc\0https://u:p@h/x?token=t&x=1\0":
        "curl -H Authorization: Bearer [hidden] https://u:[hidden]@h/x?token=[hidden]&x=1",
    b"x\0--auth\0Basic\0dXNlcg==\0-v\0": "x --auth Basic [hidden] -v",
    b"app\0PGPASSWORD=pw;other=1\0dbpass=z\0a=b=c\0":
        "app PGPASSWORD=[hidden];other=1 dbpass=[hidden] a=b=c",
}

#: The corner cases of those rules, as argv words.
MASKED_WORDS = [
    (['mysqldump', '-pX', '--password', 'y', '-p'],
     'mysqldump -p[hidden] --password [hidden] -p'),
    (['app', '--db-password', 's', '--db-password=t'],
     'app --db-password [hidden] --db-password=[hidden]'),
    (['x', 'token=a&secret=b', 'url=http://a:b@c:80/p?pass=q#f', "k='pwd=1'"],
     "x token=[hidden]&secret=[hidden] url=http://a:[hidden]@c:80/p?pass=q#f k='pwd=[hidden]'"),
    (['x', 'Authorization:', 'Bearer', 'tok'], 'x Authorization: Bearer [hidden]'),
    (['x', '--auth', '-v', 'v'], 'x --auth -v v'),
    (['x', '--passphrase', '--other'], 'x --passphrase --other'),
    (['x', 'a.b.password=z', 'x=y password=z'], 'x a.b.password=[hidden] x=y password=[hidden]'),
    (['x', 'ftp://user:@host', 'ftp://:pw@host', 's3://k:s@b/p', 'a://b@c', '://x:y@z'],
     'x ftp://user:@host ftp://:[hidden]@host s3://k:[hidden]@b/p a://b@c ://x:[hidden]@z'),
    (['x', 'BASIC  abc', 'basic abc def', 'bearer', 'BEARER', 'zz'],
     'x BASIC  abc basic [hidden] def bearer BEARER [hidden]'),
    (['x', '--API-KEY', 'v', '-X_AUTH_TOKEN=abc'], 'x --API-KEY [hidden] -X_AUTH_TOKEN=[hidden]'),
    (['/usr/sbin/mariadb', '-p', '-pw'], '/usr/sbin/mariadb -p -p[hidden]'),
    (['x', 'pass=', '=pass', 'pass=a,b c', 'cookie=x;y'],
     'x pass= =pass pass=[hidden],b c cookie=[hidden];y'),
    (['x', 'a=1=2=3 pwd=4'], 'x a=1=2=3 pwd=[hidden]'),
    (['x', 'sessionid:abc', 'auth:', 't'], 'x sessionid:abc auth: [hidden]'),
    (['x', 'Proxy-Authorization: basic Zm9v bar'], 'x Proxy-Authorization: basic [hidden] bar'),
]
SECRETS.update({b"\0".join(w.encode() for w in words) + b"\0": shown
                for words, shown in MASKED_WORDS})


@pytest.mark.parametrize("shell", SHELLS)
def test_secrets_in_command_lines_are_masked_on_the_host(shell: str, tmp_path: Path) -> None:
    case = tmp_path / "case"
    shutil.copytree(FIXTURES / "normal-multicore", case)
    harness = json.loads((case / "harness.json").read_text())
    tools = fake_df(tmp_path / "tools", harness["statvfs"])
    masker = getattr(probe, "mask_command_line", None)  # probe.py's, once it masks
    for raw, shown in SECRETS.items():
        (case / "2200" / "cmdline").write_bytes(raw)
        out = run_sh_probe(shell, case_params(case), path_prefix=tools)
        [entry] = [p for p in out["processes"]["top_cpu"] if p["pid"] == 2200]
        assert entry["cmdline"] == shown
        if masker is not None:
            words = [w.decode() for w in raw.rstrip(b"\0").split(b"\0")]
            assert " ".join(masker(words)).strip() == shown
    out = run_sh_probe(shell, case_params(case, command_lines=False), path_prefix=tools)
    [entry] = [p for p in out["processes"]["top_cpu"] if p["pid"] == 2200]
    assert (entry["cmdline"], entry["name"]) == ("", "python3")  # not even read


@pytest.mark.parametrize("shell", SHELLS)
def test_a_hung_network_mount_costs_its_timeout_only(shell: str, tmp_path: Path) -> None:
    """network_fs: network and FUSE mounts are measured in the background, each within
    statvfs_timeout_s; a dead NFS server's mount is reported, the rest is intact."""
    case = FIXTURES / "stale-nfs-mount"
    harness = json.loads((case / "harness.json").read_text())
    tools = fake_df(tmp_path / "tools", harness["statvfs"], hang=("/mnt/nfs",))
    started = time.monotonic()
    out = run_sh_probe(shell, case_params(case, network_fs=True, statvfs_timeout_s=0.5),
                       path_prefix=tools)
    assert time.monotonic() - started < 0.5 + SLACK_S  # not the hung df's 60 s
    assert out["errors"]["disks:/mnt/nfs"] == (
        "TimeoutError: statvfs did not answer within 0.5 s (nfs4)")
    assert [d["mount"] for d in out["disks"]] == ["/", "/media/usb", "/mnt/ssh", "/mnt/win"]
    py = python_answer(case, network_fs=True)
    assert out["disks"] == py["disks"]
    hung = int((tools / "hung.pid").read_text())
    wait_for(lambda: is_dead(hung), f"the hung df {hung} to be killed")


@pytest.mark.parametrize("shell", SHELLS)
def test_this_machine_agrees_with_psutil(shell: str) -> None:
    out = run_sh_probe(shell, {})
    validate_probe_output(json.loads(json.dumps(out)))
    assert out["memory"]["total"] == psutil.virtual_memory().total
    assert out["swap"]["total"] == psutil.swap_memory().total
    assert out["cpu"]["count"] == psutil.cpu_count()
    [root] = [d for d in out["disks"] if d["mount"] == "/"]
    assert root["total"] == psutil.disk_usage("/").total
    # other test suites start and stop processes meanwhile: no count to compare, but this
    # very process is in the scan, with its start time
    own = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    assert out["processes"]["counters"]["ticks"][str(os.getpid())][0] == int(own[19])
    assert out["system"]["hostname"] == os.uname().nodename
    assert out["errors"] == {}


def test_run_from_a_file_uses_the_defaults(tmp_path: Path) -> None:
    """`sh probe.sh` on a host: no parameters, a local look."""
    script = tmp_path / "probe.sh"
    script.write_bytes(SCRIPT)
    done = subprocess.run([busybox(), "sh", str(script)], capture_output=True, timeout=60,
                          env={"PATH": str(applets())})
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    validate_probe_output(out)
    assert out["processes"]["count"] > 1 and len(out["processes"]["top_cpu"]) == 10


@pytest.mark.parametrize("shell", SHELLS)
def test_parameters_are_data_not_code(shell: str, tmp_path: Path) -> None:
    """A value that would run a command if a shell re-read it is only ever a value; bad
    values are reported and replaced by defaults, as probe.py does."""
    marker = tmp_path / "pwned"
    hostile = f"/nonexistent/$(touch {marker})`touch {marker}`;touch {marker}"
    out = run_sh_probe(shell, {"proc_root": hostile, "etc_root": hostile, "top_n": "ten",
                               "include_loopback": "yes", "max_processes": 1e9})
    assert not marker.exists()
    _params, message = probe.parse_params(json.dumps(
        {"top_n": "ten", "include_loopback": "yes", "max_processes": 1e9}))
    assert out["errors"]["params"] == message == (
        "ValueError: top_n must be a number; include_loopback must be true or false")
    py = probe.collect({"proc_root": hostile, "cpu_sample_s": 0}, platform="linux")
    assert set(out["errors"]) - {"params"} == set(py["errors"]) - {"params"}


def plugin(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(0o755)
    return str(path)


ARGS = ["two words", "it's", 'say "hi"', "$(touch /tmp/osmon-pwned)", "; reboot",
        "line\nbreak", "back\\slash", "`id`", "*", "-n", "\t", "ünï ★"]


@pytest.mark.parametrize("shell", SHELLS)
def test_check_arguments_reach_the_plugin_as_they_are(shell: str, tmp_path: Path) -> None:
    """argv, "$@"-style: each argument one word, never re-read by a shell."""
    echo = plugin(tmp_path, "check_args", 'for a in "$@"; do printf "[%s]\\n" "$a"; done\n'
                                          'echo "OK - $# arguments"; exit 0\n')
    out = run_sh_probe(shell, {"checks": [{"name": "args", "command": [echo, *ARGS],
                                           "timeout_s": 10, "max_output": 65536}]})
    answer = out["checks"]["args"]
    assert answer["exit"] == 0 and "error" not in answer
    assert answer["output"] == "".join(f"[{a}]\n" for a in ARGS) + f"OK - {len(ARGS)} arguments\n"
    assert not Path("/tmp/osmon-pwned").exists()


@pytest.mark.parametrize("shell", SHELLS)
def test_checks_answer_like_probe_py(shell: str, tmp_path: Path) -> None:
    """Exit codes, output caps, a missing and a not executable plugin, a timeout that kills
    the plugin and its child: what the collector stores is the same as from probe.py."""
    not_exec = tmp_path / "check_noexec"
    not_exec.write_text("#!/bin/sh\necho never\n")
    specs = [
        {"name": "ok", "command": [plugin(tmp_path, "c0", "echo 'OK - fine | v=1'\n")]},
        {"name": "warn", "command": [plugin(tmp_path, "c1", "echo 'WARN - hot'\nexit 1\n")]},
        {"name": "quiet", "command": [plugin(tmp_path, "c2", "echo oops >&2\nexit 2\n")]},
        {"name": "flood", "max_output": 4096,
         "command": [plugin(tmp_path, "c3", "echo 'OK - lots'\nhead -c 100000 /dev/zero "
                                            "| tr '\\0' x\nexit 0\n")]},
        {"name": "missing", "command": [str(tmp_path / "check_nope")]},
        {"name": "noexec", "command": [str(not_exec)]},
        {"name": "bare", "command": ["check_osmon_not_on_path"]},
        {"name": "bad", "command": []},
        {"name": "hang", "timeout_s": 1, "command": [plugin(
            tmp_path, "c4", f"sleep 300 &\necho $! > {tmp_path}/child\necho 'about to hang'\n"
                            "wait\n")]},
    ]
    for spec in specs:
        spec.setdefault("timeout_s", 10)
        spec.setdefault("max_output", 65536)
    started = time.monotonic()
    out = run_sh_probe(shell, {"checks": specs})
    assert time.monotonic() - started < 1 + SLACK_S  # the hang costs its timeout, not 300 s
    answers = out["checks"]
    assert list(answers) == [s["name"] for s in specs]
    expected = probe.run_checks(specs)[0]
    for name in answers:
        mine, theirs = dict(answers[name]), dict(expected[name])
        mine.pop("duration_s"), theirs.pop("duration_s")
        if name == "flood":  # what the killed pipeline said on stderr depends on when it died
            mine.pop("stderr", None), theirs.pop("stderr", None)
        assert mine == theirs, name
    stored = derive_checks(answers, specs)
    assert [stored[n]["state"] for n in ("ok", "warn", "quiet", "flood", "hang")] == [
        OK, WARNING, 2, UNKNOWN, UNKNOWN]
    assert stored["hang"]["output"] == "timed out after 1 s, killed (output: about to hang)"
    assert 1.0 <= answers["hang"]["duration_s"] < 1 + SLACK_S
    child = int((tmp_path / "child").read_text())
    wait_for(lambda: is_dead(child), f"the hung plugin's child {child} to die")
    assert len(answers["flood"]["output"]) == 4096
    assert answers["missing"]["error"] == f"command not found: {tmp_path / 'check_nope'}"


@pytest.mark.parametrize("shell", SHELLS)
def test_a_check_does_not_outlive_a_shell_probe_that_was_killed(shell: str,
                                                                 tmp_path: Path) -> None:
    """The host-side limit of the remote command kills the probe's whole process group; the
    check, in a session of its own, and its watchdog, in another, live on: the watchdog still
    kills the check and its children at the check's timeout, not 300 s later."""
    hang = plugin(tmp_path, "check_hang", f"sleep 300 &\necho $! > {tmp_path}/child\n"
                                          f"echo $$ > {tmp_path}/leader.tmp\n"
                                          f"mv {tmp_path}/leader.tmp {tmp_path}/leader\nwait\n")
    params = {"checks": [{"name": "hang", "command": [hang], "timeout_s": 3,
                          "max_output": 65536}]}
    argv, env = shell_command(shell)
    probe_process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, env=env, cwd="/",
                                     start_new_session=True)  # as sshd starts a session
    try:
        assert probe_process.stdin is not None
        probe_process.stdin.write(sh_probe_stdin(params, SCRIPT))
        probe_process.stdin.close()
        wait_for(lambda: (tmp_path / "leader").exists(), "the check to start")
    finally:
        os.killpg(probe_process.pid, 9)  # what `timeout -s KILL` does to the probe's group
        probe_process.wait(timeout=10)
    leader = int((tmp_path / "leader").read_text())
    child = int((tmp_path / "child").read_text())
    wait_for(lambda: is_dead(leader) and is_dead(child), "the orphaned check to be killed",
             timeout=3 + SLACK_S)


def test_a_busybox_without_some_applets_still_answers(tmp_path: Path) -> None:
    """A minimal BusyBox (OpenWrt leaves applets out): without od the command lines are not
    read and without df the mounts say why; without awk nothing can be read, which the
    collector reports in words."""
    from collector.config import Host
    from collector.passes.probe_call import decode_answer
    from collector.passes.sh_probe import sh_probe_stdin
    from collector.transport.ssh import CommandResult, SshFailure

    def path_without(*missing: str) -> Path:
        folder = tmp_path / "-".join(missing)
        folder.mkdir()
        for applet in applets().iterdir():
            if applet.name not in missing:
                (folder / applet.name).symlink_to(applet.resolve())
        return folder

    done = subprocess.run([busybox(), "sh", "-s"], input=sh_probe_stdin({}, SCRIPT),
                          capture_output=True, timeout=60,
                          env={"PATH": str(path_without("od", "df"))})
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    validate_probe_output(out)
    assert out["disks"] == [] and out["errors"]["disks:/"].endswith("df: not found")
    top = out["processes"]["top_cpu"]
    assert len(top) == 10 and all(p["name"] for p in top)  # processes are read...
    assert [p["cmdline"] for p in top] == [""] * 10  # ...but not their command lines
    assert out["memory"]["total"] == psutil.virtual_memory().total  # the rest is intact

    done = subprocess.run([busybox(), "sh", "-s"], input=sh_probe_stdin({}, SCRIPT),
                          capture_output=True, timeout=60, env={"PATH": str(path_without("awk"))})
    assert done.returncode == 69 and done.stdout == b""
    with pytest.raises(SshFailure) as failure:
        decode_answer(Host(name="tiny"), CommandResult(done.stdout, done.stderr, 69, 0.1, 0.0),
                      "sh")
    assert (failure.value.kind, failure.value.message) == (
        "probe", "the probe failed with exit status 69: osmon probe.sh: awk not found on this "
                 "host")
