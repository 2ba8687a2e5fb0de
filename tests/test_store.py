"""The JSON Lines store and the data lock, under the accidents they exist for: torn lines, a
writer killed by SIGKILL, a lock left by a dead process."""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from collector.errors import LockHeld
from collector.store import samples as store_mod
from collector.store.lock import DataLock
from collector.store.samples import Store
from collector.times import format_ts

T0 = datetime(2026, 11, 21, 22, 41, 0, tzinfo=timezone.utc)
ROOT = Path(__file__).resolve().parent.parent


def sample(host: str, moment: datetime, **extra: Any) -> dict[str, Any]:
    return {"v": 1, "ts": format_ts(moment), "host": host, "ok": True, "error": None,
            "memory": {"percent": 10.0}, **extra}


def test_torn_last_line_is_skipped_and_the_next_append_is_whole(tmp_path: Path) -> None:
    store = Store(tmp_path)
    path = store.append("web1", sample("web1", T0))
    store.append("web1", sample("web1", T0 + timedelta(minutes=1)))
    # A writer killed mid-line: the file ends in the middle of the second line.
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 15])
    assert store.latest("web1")["ts"] == format_ts(T0)
    assert [s["ts"] for s in store.samples("web1", T0)] == [format_ts(T0)]
    store.append("web1", sample("web1", T0 + timedelta(minutes=2)))
    assert store.latest("web1")["ts"] == format_ts(T0 + timedelta(minutes=2))
    assert [s["ts"] for s in store.samples("web1", T0)] == [
        format_ts(T0), format_ts(T0 + timedelta(minutes=2))]
    assert len(path.read_bytes().splitlines()) == 3  # the fragment kept as a line of its own


def test_bad_lines_anywhere_never_crash_a_reader(tmp_path: Path) -> None:
    store = Store(tmp_path)
    path = store.append("web1", sample("web1", T0))
    with open(path, "ab") as fh:
        fh.write(b"\x00\xff garbage\n[1, 2]\n{\"no\": \"ts\"}\n\n")
    store.append("web1", sample("web1", T0 + timedelta(minutes=1)))
    with open(path, "ab") as fh:
        fh.write(b"{\"ts\": \"2026-11-21T22:4")
    assert [s["ts"] for s in store.samples("web1", T0)] == [
        format_ts(T0), format_ts(T0 + timedelta(minutes=1))]
    assert store.latest("web1")["ts"] == format_ts(T0 + timedelta(minutes=1))


def test_latest_finds_a_line_longer_than_the_tail_chunk(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.append("web1", sample("web1", T0))
    big = sample("web1", T0 + timedelta(minutes=1), blob="x" * (3 * store_mod._TAIL_CHUNK))
    store.append("web1", big)
    assert store.latest("web1") == big


def test_latest_reads_only_the_end_of_a_huge_day_file(tmp_path: Path) -> None:
    """A 4 GiB day file (sparse: a hole, then two samples) read by a process allowed 1 GiB
    of memory: reading the whole file would fail, reading its end takes no time."""
    store = Store(tmp_path)
    path = store.append("web1", sample("web1", T0))
    with open(path, "r+b") as fh:
        fh.truncate(4 << 30)
        fh.seek(0, os.SEEK_END)
        fh.write(b"\n" + store_mod.encode_line(sample("web1", T0 + timedelta(minutes=1))))
    code = ("import resource, sys\n"
            "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
            "from collector.store.samples import Store\n"
            "print(Store(sys.argv[1]).latest('web1')['ts'])\n")
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert (run.returncode, run.stdout) == (0, format_ts(T0 + timedelta(minutes=1)) + "\n"), \
        run.stderr


def test_latest_falls_back_to_the_previous_day_and_reads_gzip(tmp_path: Path) -> None:
    store = Store(tmp_path)
    yesterday = store.append("web1", sample("web1", T0 - timedelta(days=1)))
    with gzip.open(yesterday.with_suffix(".jsonl.gz"), "wb") as fh:
        fh.write(yesterday.read_bytes())
    yesterday.unlink()
    today = store.append("web1", sample("web1", T0))
    today.write_bytes(b"{torn")  # today's only line is torn
    assert store.latest("web1")["ts"] == format_ts(T0 - timedelta(days=1))
    assert [s["ts"] for s in store.samples("web1", T0 - timedelta(days=2))] == [
        format_ts(T0 - timedelta(days=1))]


def test_samples_open_only_the_days_in_range(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(tmp_path)
    for days in range(5):
        store.append("web1", sample("web1", T0 - timedelta(days=days)))
    opened: list[str] = []
    real = store_mod._read_lines

    def spy(path: Path) -> list[bytes]:
        opened.append(path.name)
        return real(path)

    monkeypatch.setattr(store_mod, "_read_lines", spy)
    got = list(store.samples("web1", T0 - timedelta(days=2, minutes=1),
                             T0 - timedelta(days=1)))
    assert [s["ts"] for s in got] == [format_ts(T0 - timedelta(days=2)),
                                      format_ts(T0 - timedelta(days=1))]
    assert opened == ["2026-11-19.jsonl", "2026-11-20.jsonl"]


def test_unsafe_host_names_never_become_paths(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Store(tmp_path).append("../../etc", sample("x", T0))
    assert not (tmp_path.parent / "etc").exists() or (tmp_path.parent / "etc").is_dir()


_APPENDER = """
import sys
from datetime import datetime, timedelta, timezone
from collector.store.samples import Store
from collector.times import format_ts
store = Store(sys.argv[1])
t = datetime(2026, 11, 21, tzinfo=timezone.utc)
blob = "y" * 200_000
i = 0
while True:
    store.append("web1", {"v": 1, "ts": format_ts(t + timedelta(seconds=i)), "blob": blob})
    if i == 5:
        print("writing", flush=True)
    i += 1
"""


def test_writer_killed_with_sigkill_leaves_a_readable_log(tmp_path: Path) -> None:
    with subprocess.Popen([sys.executable, "-c", _APPENDER, str(tmp_path)], cwd=ROOT,
                          stdout=subprocess.PIPE, text=True) as writer:
        try:
            assert writer.stdout is not None and writer.stdout.readline() == "writing\n"
        finally:
            os.kill(writer.pid, signal.SIGKILL)
            writer.wait(60)
    store = Store(tmp_path)
    written = list(store.samples("web1", T0 - timedelta(days=1)))
    assert len(written) >= 6
    path = store.day_files("web1")[0].path
    lines = path.read_bytes().split(b"\n")
    assert all(json.loads(line)["v"] == 1 for line in lines[:-2])  # at most the last is torn
    store.append("web1", sample("web1", T0))
    assert store.latest("web1")["ts"] == format_ts(T0)


def test_second_lock_holder_is_refused_with_who_and_since(tmp_path: Path) -> None:
    with DataLock(tmp_path, "collect"):
        with pytest.raises(LockHeld) as info:
            DataLock(tmp_path, "backup").acquire()
        message = str(info.value)
        assert re.match(r"another osmon collect is running since "
                        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC ", message), message
        assert f"UTC (pid {os.getpid()}); backup skipped" in message
        assert info.value.exit_code == 3
    with DataLock(tmp_path, "backup"):  # released on exit
        pass


def test_lock_of_a_process_killed_with_sigkill_is_taken_over(tmp_path: Path) -> None:
    code = ("import sys, time\nfrom collector.store.lock import DataLock\n"
            "DataLock(sys.argv[1], 'collect').acquire()\nprint('held', flush=True)\n"
            "time.sleep(600)\n")
    with subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT,
                          stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "held\n"
            with pytest.raises(LockHeld, match=f"pid {holder.pid}"):
                DataLock(tmp_path, "collect").acquire()
        finally:
            os.kill(holder.pid, signal.SIGKILL)
            holder.wait(60)
    with DataLock(tmp_path, "collect") as lock:
        assert lock.holder()["pid"] == os.getpid()
