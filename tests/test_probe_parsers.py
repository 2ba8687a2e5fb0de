"""Unit tests of the probe's pure parse functions, on literal strings (odd inputs included)."""

from __future__ import annotations

import json
import os
import struct
from types import SimpleNamespace

import pytest

from remote_probe import probe

# --------------------------------------------------------------------------- cpu


def test_parse_stat_seconds_per_field_and_per_core() -> None:
    text = ("cpu  100 2 30 400 5 0 6 7 8 9\n"
            "cpu0 50 1 15 200 2 0 3 3 4 4\n"
            "cpu1 50 1 15 200 3 0 3 4 4 5\n"
            "intr 1 2 3\nbtime 1700000000\n")
    stat = probe.parse_stat(text, 100)
    assert stat["total"] == {"user": 1.0, "nice": 0.02, "system": 0.3, "idle": 4.0,
                             "iowait": 0.05, "irq": 0.0, "softirq": 0.06, "steal": 0.07}
    assert len(stat["per_core"]) == 2
    assert stat["per_core"][1]["iowait"] == 0.03


def test_parse_stat_old_kernel_missing_fields_are_zero() -> None:
    stat = probe.parse_stat("cpu  10 0 5 100\ncpu0 10 0 5 100\n", 100)  # 2.6.10: no iowait...
    assert stat["total"]["steal"] == 0.0 and stat["total"]["iowait"] == 0.0


@pytest.mark.parametrize("text", [
    "cpu  1 2 3\n",  # too few values
    "cpu  1 2 3 4 5\ncpu0 1 2 3 4",  # ends inside a cpu line: truncated
    "intr 1 2 3\n",  # no aggregate line at all
    "cpu  1 2 x 4\n",  # not a number
])
def test_parse_stat_rejects_damage(text: str) -> None:
    with pytest.raises(ValueError):
        probe.parse_stat(text, 100)


def test_parse_stat_tolerates_a_cut_non_cpu_line() -> None:
    """Our read cap may cut the huge intr line of a big host: the cpu lines still count."""
    stat = probe.parse_stat("cpu  1 2 3 4\ncpu0 1 2 3 4\nintr 1 2 3 4 5", 100)
    assert len(stat["per_core"]) == 1


def test_parse_btime() -> None:
    assert probe.parse_btime("cpu  1 2 3 4\nbtime 1763650000\n") == 1763650000
    assert probe.parse_btime("cpu  1 2 3 4\n") is None


def test_busy_percent_like_psutil() -> None:
    zero = dict.fromkeys(probe.CPU_FIELDS, 0.0)
    after = dict(zero, user=30.0, system=10.0, idle=50.0, iowait=10.0)
    assert probe.busy_percent(zero, after) == 40.0  # iowait counts as idle
    assert probe.busy_percent(zero, zero) is None  # no time elapsed
    # iowait stepping back (NO_HZ) is clamped, not a negative contribution
    before = dict(zero, iowait=5.0)
    assert probe.busy_percent(before, dict(zero, user=10.0, idle=10.0, iowait=4.0)) == 50.0


def test_parse_loadavg() -> None:
    assert probe.parse_loadavg("0.01 0.05 0.15 1/234 5678\n") == [0.01, 0.05, 0.15]
    with pytest.raises(ValueError):
        probe.parse_loadavg("0.01\n")


def test_parse_uptime() -> None:
    assert probe.parse_uptime("350735.47 234388.90\n") == 350735.47


# --------------------------------------------------------------------------- memory


def test_parse_meminfo_units_and_odd_lines() -> None:
    info = probe.parse_meminfo("MemTotal:  1000 kB\nHugePages_Total:   4\nBogus line\n"
                               "Weird: abc kB\nMemFree:\t  10 kB\n")
    assert info == {"MemTotal": 1024000, "HugePages_Total": 4, "MemFree": 10240}


def test_memory_uses_memavailable_when_present() -> None:
    info = probe.parse_meminfo("MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 600 kB\n"
                               "Buffers: 50 kB\nCached: 300 kB\nSReclaimable: 20 kB\n")
    mem = probe.memory_from_meminfo(info)
    assert mem == {"total": 1024000, "available": 614400, "used": 409600, "percent": 40.0,
                   "buffers": 51200, "cached": 327680}


def test_memory_estimate_without_lru_lines_is_free_plus_cached() -> None:
    info = probe.parse_meminfo("MemTotal: 1000 kB\nMemFree: 100 kB\nCached: 300 kB\n")
    assert probe.memory_from_meminfo(info, low_watermark=4096)["available"] == 400 * 1024


def test_memory_estimate_is_clamped_to_total() -> None:
    info = {"MemTotal": 100, "MemFree": 90, "Cached": 90}
    assert probe.memory_from_meminfo(info)["available"] == 100


def test_memory_without_memtotal_is_an_error() -> None:
    with pytest.raises(ValueError, match="MemTotal"):
        probe.memory_from_meminfo(probe.parse_meminfo("garbage\n"))


def test_parse_zoneinfo_low_sums_only_low_lines() -> None:
    text = ("Node 0, zone DMA\n  pages free 3\n        min 1\n        low 5\n"
            "        high 6\n  protection: (0, 1, 2)\nNode 0, zone Normal\n        low 100\n")
    assert probe.parse_zoneinfo_low(text) == 105


def test_swap_percent_and_empty_swap() -> None:
    info = probe.parse_meminfo("SwapTotal: 1000 kB\nSwapFree: 750 kB\n")
    assert probe.swap_from_meminfo(info) == {"total": 1024000, "used": 256000, "percent": 25.0}
    assert probe.swap_from_meminfo({"SwapTotal": 0, "SwapFree": 0})["percent"] == 0.0


# --------------------------------------------------------------------------- disks


@pytest.mark.parametrize("raw,expected", [
    ("/mnt/plain", "/mnt/plain"),
    (r"/mnt/with\040space", "/mnt/with space"),
    (r"/mnt/tab\011and\012newline", "/mnt/tab\tand\nnewline"),
    (r"/mnt/back\134slash", "/mnt/back\\slash"),
    ("/mnt/trailing\\", "/mnt/trailing\\"),  # not an escape: left alone
    (r"/mnt/\9xy", r"/mnt/\9xy"),
])
def test_unescape_mount_field(raw: str, expected: str) -> None:
    assert probe.unescape_mount_field(raw) == expected


def test_parse_mounts_skips_short_lines() -> None:
    text = "/dev/sda1 / ext4 rw 0 0\nbroken\n\n/dev/sdb1 /my\\040data xfs rw 0 0\n"
    assert probe.parse_mounts(text) == [("/dev/sda1", "/", "ext4"),
                                        ("/dev/sdb1", "/my data", "xfs")]


def test_parse_filesystems_keeps_block_types_and_zfs() -> None:
    fs = probe.parse_filesystems("nodev\tsysfs\n\text4\nnodev\tzfs\n\txfs\n")
    assert fs == frozenset({"ext4", "xfs", "zfs"})


def test_select_mounts_policy() -> None:
    mounts = [
        ("/dev/sda1", "/", "ext4"),
        ("tmpfs", "/run", "tmpfs"),
        ("/dev/sda1", "/var/lib/docker/bind", "ext4"),  # bind of the same device
        ("/dev/loop3", "/snap/lxd/1", "squashfs"),
        ("srv:/x", "/mnt/nfs", "nfs"),
        ("sshfs#a@b:/", "/mnt/s", "fuse.sshfs"),
        ("/dev/sdc1", "/media/win", "fuseblk"),
        ("overlay", "/var/lib/docker/overlay2/abc/merged", "overlay"),
        ("rpool/data", "/data", "zfs"),
        ("none", "/weird", "ext4"),
    ]
    block = frozenset({"ext4", "squashfs", "fuseblk", "zfs"})
    assert probe.select_mounts(mounts, block, network_fs=False) == [
        ("/dev/sda1", "/", "ext4", False),
        ("rpool/data", "/data", "zfs", False),
        ("/dev/sdc1", "/media/win", "fuseblk", True),
    ]
    with_net = probe.select_mounts(mounts, block, network_fs=True)
    assert ("srv:/x", "/mnt/nfs", "nfs", True) in with_net
    assert ("sshfs#a@b:/", "/mnt/s", "fuse.sshfs", True) in with_net


def test_select_mounts_without_proc_filesystems_uses_deny_list() -> None:
    mounts = [("/dev/sda1", "/", "btrfs"), ("proc", "/proc", "proc"), ("x", "/y", "cgroup2")]
    assert [m[1] for m in probe.select_mounts(mounts, None, False)] == ["/"]


def test_select_mounts_over_mounted_point_keeps_visible_entry() -> None:
    mounts = [("rootfs", "/", "rootfs"), ("/dev/vda1", "/", "ext4")]
    assert probe.select_mounts(mounts, frozenset({"ext4"}), False) == [
        ("/dev/vda1", "/", "ext4", False)]


def test_usage_from_statvfs_matches_df_arithmetic() -> None:
    st = SimpleNamespace(f_frsize=4096, f_bsize=4096, f_blocks=1000, f_bfree=300, f_bavail=250)
    usage = probe.usage_from_statvfs(st)
    assert usage == {"total": 4096000, "used": 2867200, "free": 1024000,
                     "percent": round(700 / 950 * 100, 1)}
    empty = SimpleNamespace(f_frsize=0, f_bsize=4096, f_blocks=0, f_bfree=0, f_bavail=0)
    assert probe.usage_from_statvfs(empty)["percent"] == 0.0


# --------------------------------------------------------------------------- disk I/O


@pytest.mark.parametrize("name,partition", [
    ("sda", False), ("sda1", True), ("vdb12", True), ("xvda", False), ("xvda1", True),
    ("nvme0n1", False), ("nvme0n1p3", True), ("mmcblk0", False), ("mmcblk0p1", True),
    ("hdc", False),
])
def test_looks_like_partition(name: str, partition: bool) -> None:
    assert probe.looks_like_partition(name) is partition


def test_is_physical_disk_prefers_sys_block() -> None:
    block = frozenset({"sda", "loop0", "dm-0", "md127", "vdz"})
    assert probe.is_physical_disk("sda", block)
    assert not probe.is_physical_disk("sda1", block)
    assert not probe.is_physical_disk("loop0", block)
    assert not probe.is_physical_disk("dm-0", block)
    assert not probe.is_physical_disk("md127", block)
    assert probe.is_physical_disk("vdz", block)
    assert not probe.is_physical_disk("zram0")


def test_parse_diskstats_sectors_are_512_bytes_and_short_lines_skipped() -> None:
    text = ("   8 0 sda 10 0 8 1 20 0 16 2 0 3 3\n"
            "   8 1 sda1 5 40 6 48\n")
    assert probe.parse_diskstats(text) == [{"device": "sda", "read_bytes": 4096,
                                            "write_bytes": 8192, "reads": 10, "writes": 20,
                                            "busy_ms": 3}]


# --------------------------------------------------------------------------- net


def test_parse_net_dev_glued_counter_and_headers() -> None:
    text = ("Inter-|   Receive  |  Transmit\n face |bytes packets|bytes packets\n"
            "  eth0:4294967296 10 1 2 0 0 0 0 99 9 3 4 0 0 0 0\n")
    assert probe.parse_net_dev(text) == [{
        "iface": "eth0", "rx_bytes": 4294967296, "rx_packets": 10, "rx_errors": 1,
        "rx_drops": 2, "tx_bytes": 99, "tx_packets": 9, "tx_errors": 3, "tx_drops": 4}]


def test_parse_net_dev_short_line_is_an_error() -> None:
    with pytest.raises(ValueError, match="eth1"):
        probe.parse_net_dev("  eth1: 1 2 3\n")


# --------------------------------------------------------------------------- processes


def test_parse_pid_stat_comm_with_spaces_and_parens() -> None:
    rest = ["S"] + ["0"] * 10 + ["150", "50"] + ["0"] * 6 + ["12345", "0", "77"] + ["0"] * 10
    text = "42 (a) b (c)) " + " ".join(rest)
    assert probe.parse_pid_stat(text) == ("a) b (c)", 200, 12345, 77)


def test_parse_pid_stat_garbage() -> None:
    with pytest.raises((ValueError, IndexError)):
        probe.parse_pid_stat("42 (cut")


def test_parse_status_uid_is_real_uid() -> None:
    assert probe.parse_status_uid("Name:\tx\nUid:\t1000\t0\t0\t0\n") == 1000
    assert probe.parse_status_uid("Name:\tx\n") is None


def test_parse_passwd_first_entry_wins_and_junk_ignored() -> None:
    text = "root:x:0:0::/root:/bin/sh\ntoor:x:0:0::/:/bin/sh\n+::::::\n#c\nbad\nu:x:abc:1::/:\n"
    assert probe.parse_passwd(text) == {0: "root"}


# --------------------------------------------------------------------------- users

UTMP = struct.Struct("=hxxi32s4s32s256shhiii16s20x")


def utmp_record(ut_type: int, pid: int, line: str, user: str, host: str, sec: int) -> bytes:
    return UTMP.pack(ut_type, pid, line.encode(), b"", user.encode(), host.encode(), 0, 0, 0,
                     sec, 0, b"")


def test_parse_utmp_user_process_only() -> None:
    data = (utmp_record(2, 0, "~", "reboot", "6.1", 1000)
            + utmp_record(7, 10, "pts/3", "dave", "host.example", 1763740000)
            + utmp_record(8, 11, "pts/4", "", "", 1763740000)
            + utmp_record(7, 12, "pts/5", "\u00e9ric", "", 1763740000))
    users = probe.parse_utmp(data)
    assert users == [
        {"name": "dave", "tty": "pts/3", "from": "host.example",
         "since": "2025-11-21T15:46:40Z", "pid": 10},
        {"name": "\u00e9ric", "tty": "pts/5", "from": None, "since": "2025-11-21T15:46:40Z",
         "pid": 12},
    ]


def test_parse_utmp_torn_last_record_and_empty() -> None:
    data = utmp_record(7, 10, "pts/3", "dave", "", 0)
    assert len(probe.parse_utmp(data + b"\x07\x00partial")) == 1
    assert probe.parse_utmp(b"") == []


def test_parse_utmp_wide_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    """aarch64 glibc: 400-byte records with 64-bit session and timeval."""
    wide = struct.Struct("=hxxi32s4s32s256shhqqq16s20x4x")
    assert wide.size == 400
    data = wide.pack(7, 10, b"pts/0", b"", b"erin", b"10.1.1.1", 0, 0, 0, 1763740000, 0, b"")
    fake = SimpleNamespace(machine="aarch64")
    monkeypatch.setattr(probe.os, "uname", lambda: fake)
    assert probe.parse_utmp(data)[0]["name"] == "erin"


def test_iso_utc_out_of_range_is_none() -> None:
    assert probe.iso_utc(0) == "1970-01-01T00:00:00Z"
    assert probe.iso_utc(1e20) is None


# --------------------------------------------------------------------------- params & output


def test_parse_params_defaults_and_bad_values() -> None:
    params, error = probe.parse_params(None)
    assert error is None and params["cpu_sample_s"] == 0.25 and params["top_n"] == 10
    params, error = probe.parse_params(json.dumps({
        "cpu_sample_s": 3600, "top_n": "ten", "network_fs": 1, "checks": [{"name": "x"}],
        "unknown": True}))
    assert params["cpu_sample_s"] == 5.0  # clamped: a bad value cannot stall the probe
    assert params["top_n"] == 10 and params["network_fs"] is False
    assert params["checks"] == [{"name": "x"}]
    assert "top_n" in error and "network_fs" in error


@pytest.mark.parametrize("text", ["not json", "[1, 2]", "NaN"])
def test_parse_params_unusable_json(text: str) -> None:
    params, error = probe.parse_params(text)
    assert error and error.startswith("ValueError") and params["top_n"] == 10


def test_json_safe_removes_nan_and_surrogates() -> None:
    value = {"a": float("nan"), "b": [float("inf"), 1.5], "c": "ok\udcff", "d": (1, 2)}
    safe = probe.json_safe(value)
    assert safe == {"a": None, "b": [None, 1.5], "c": "ok\ufffd", "d": [1, 2]}
    json.dumps(safe, allow_nan=False)


def test_read_bytes_caps_size_and_refuses_symlinks(tmp_path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"x" * 200000)
    assert len(probe.read_bytes(str(big), limit=1000)) == 1000
    link = tmp_path / "link"
    os.symlink("/etc/hostname", link)
    with pytest.raises(OSError):
        probe.read_bytes(str(link))


def test_describe_is_one_line() -> None:
    assert probe.describe(ValueError("a\nb")) == "ValueError: a b"


# --------------------------------------------------------------------------- JSON without `json`


@pytest.mark.parametrize("text", [
    '{"a": [1, 2.5, null, true, false, "x\\u00e9\\n"], "b": {"c": -3e2}}', " {} ", '"s"',
    json.dumps({"cpu_sample_s": 0, "checks": [{"name": "'; rm -rf /"}]})])
def test_json_loads_agrees_with_json(text: str) -> None:
    assert probe.json_loads(text) == json.loads(text)


@pytest.mark.parametrize("text", ["", "{", "{} x", "NaN", "[Infinity]", '{"a":}', "[1,]"])
def test_json_loads_refuses_what_is_not_one_json_value(text: str) -> None:
    with pytest.raises(ValueError):
        probe.json_loads(text)


def test_json_dumps_matches_json_compact_ascii() -> None:
    value = {"s": "caf\u00e9 <script>\"q\"\\\n", "i": -(2**70), "f": [0.1, 1e300, -0.0, 2.0],
             "n": None, "t": True, "e": {}, "l": [], "tu": (1, "x"), 7: "int key"}
    expected = json.dumps(value, separators=(",", ":"))
    assert probe.json_dumps(value) == expected
    assert probe.json_dumps(probe.json_safe({"x": float("nan")})) == '{"x":null}'
    with pytest.raises(TypeError):
        probe.json_dumps({"x": object()})


@pytest.mark.parametrize("value", [
    {"s": "plain <script>\"q\"\\\n\t\x01", "i": -(2**70), "f": [0.1, 1e300, -0.0, 2.0],
     "n": None, "t": True, "e": {}, "l": [], "tu": (1, "x"), 7: "int key"},
    {"c": probe.CounterMap({"12": [3, 4]}), "nested": {"deep": [{"x": [1.5]}]}},
    {"nan": float("nan"), "inf": [float("-inf")]},  # refused by the C encoder: made safe
    {"surrogate": "disk\udcff", "key\udcfe": 1},  # not plain ASCII: made safe
    {"accent": "caf\u00e9", "emoji": "\U0001f600"},  # escaped as json_dumps escapes them
    {"del": "a\x7fb"},  # ASCII the C encoder would write raw: json_dumps escapes it
])
def test_encode_output_is_json_dumps_of_json_safe(value: object) -> None:
    """The fast path writes exactly the text of the safe one, or leaves the tree to it."""
    assert probe.encode_output(value) == probe.json_dumps(probe.json_safe(value))
