"""``osmon prune``: compression that loses nothing, retention by age and by size, today's file
never touched, and a running pass respected."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from backup_fixtures import NOW, make_config, sample, snapshot

from collector import cli
from collector.config import Config
from collector.errors import LockHeld
from collector.store.retention import prune
from collector.store.samples import Store

ROOT = Path(__file__).resolve().parent.parent
TODAY = NOW.date()


def _day(age: int) -> date:
    return TODAY - timedelta(days=age)


def _fill(cfg: Config, hosts: tuple[str, ...], ages: range, per_day: int = 48) -> Store:
    store = Store(cfg.settings.data_dir)
    for host in hosts:
        for age in ages:
            start = datetime.combine(_day(age), datetime.min.time(), tzinfo=timezone.utc)
            for i in range(per_day):
                moment = min(start + timedelta(minutes=30 * i), NOW)
                store.append(host, sample(host, moment, float(i % 100)))
    return store


def _files(cfg: Config, host: str) -> dict[str, bytes]:
    directory = cfg.settings.data_dir / "hosts" / host
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def _all_samples(store: Store, host: str) -> list[dict]:
    return list(store.samples(host, NOW - timedelta(days=400), NOW + timedelta(days=1)))


def test_closed_days_are_compressed_and_read_back_the_same(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, settings={"compress_after_days": 2})
    store = _fill(cfg, ("web1", "db2"), range(6))
    before = {h: _all_samples(store, h) for h in ("web1", "db2")}
    latest = store.latest_all()
    plain = {h: _files(cfg, h) for h in ("web1", "db2")}

    report = prune(cfg, NOW)

    after = _files(cfg, "web1")
    assert sorted(after) == [f"{_day(a)}.jsonl.gz" for a in (5, 4, 3)] + [
        f"{_day(a)}.jsonl" for a in (2, 1, 0)]
    for age in (5, 4, 3):
        name = f"{_day(age)}.jsonl"
        assert gzip.decompress(after[name + ".gz"]) == plain["web1"][name]
    assert {h: _all_samples(store, h) for h in ("web1", "db2")} == before
    assert store.latest_all() == latest
    assert len(report.compressed) == 6 and report.removed == ()
    assert report.bytes_freed > 0 and report.problems == ()
    assert not list(tmp_path.rglob("*.tmp"))


def test_todays_file_is_never_touched(tmp_path: Path) -> None:
    """Smallest compression age, a size limit today's file alone exceeds: it stays as it is."""
    cfg = make_config(tmp_path, settings={"compress_after_days": 1, "retention_days": 1,
                                          "retention_max_mb": 1})
    store = _fill(cfg, ("web1",), range(4))
    today_file = cfg.settings.data_dir / "hosts" / "web1" / f"{TODAY}.jsonl"
    pad = json.dumps(sample("web1", NOW)).encode() + b"\n"
    with open(today_file, "ab") as fh:
        fh.write(pad * (1_200_000 // len(pad)))
    before = today_file.read_bytes()
    inode = today_file.stat().st_ino
    future = today_file.with_name(f"{TODAY + timedelta(days=1)}.jsonl")  # a clock ahead
    future.write_bytes(pad)

    report = prune(cfg, NOW)

    assert today_file.read_bytes() == before and today_file.stat().st_ino == inode
    assert future.read_bytes() == pad
    assert sorted(_files(cfg, "web1")) == sorted([today_file.name, future.name])
    assert report.total_bytes > 1024 * 1024  # over the limit, but nothing else to remove
    assert store.latest("web1") is not None


def test_yesterday_stays_plain_with_the_smallest_compression_age(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, settings={"compress_after_days": 1})
    _fill(cfg, ("web1",), range(3))
    prune(cfg, NOW)
    assert sorted(_files(cfg, "web1")) == [f"{_day(2)}.jsonl.gz", f"{_day(1)}.jsonl",
                                           f"{TODAY}.jsonl"]


def test_retention_by_age_removes_whole_old_days_and_rollups(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, settings={"retention_days": 30, "compress_after_days": 2})
    store = _fill(cfg, ("web1", "old-host"), range(28, 34), per_day=2)
    _fill(cfg, ("web1",), range(0, 1), per_day=2)
    data = cfg.settings.data_dir
    rollups = data / "rollups" / "web1"
    (rollups / "1h").mkdir(parents=True)
    (rollups / "1d").mkdir(parents=True)
    for name in (f"{_day(31)}.jsonl", f"{_day(30)}.jsonl", "2026-09.jsonl", "2026-10.jsonl",
                 "2026-11.jsonl", "index.json", "2026-13.jsonl"):
        (rollups / ("1d" if len(name) < 15 else "1h") / name).write_text("{}\n")
    history = data / "state" / "alert-history.jsonl"
    history.parent.mkdir()
    history.write_text('{"ts": "2020-01-01T00:00:00Z"}\n')

    report = prune(cfg, NOW)

    kept = [f"{_day(a)}.jsonl.gz" for a in (30, 29, 28)]
    assert sorted(_files(cfg, "web1")) == sorted(kept + [f"{TODAY}.jsonl"])
    assert sorted(_files(cfg, "old-host")) == sorted(kept)
    # 2026-10 ends on 2026-10-31, within 30 days of 2026-11-21; 2026-09 does not.
    assert sorted(p.name for p in (rollups / "1d").iterdir()) == [
        "2026-10.jsonl", "2026-11.jsonl", "2026-13.jsonl", "index.json"]
    assert sorted(p.name for p in (rollups / "1h").iterdir()) == [f"{_day(30)}.jsonl"]
    assert history.read_text() == '{"ts": "2020-01-01T00:00:00Z"}\n'
    assert len(report.removed) == 3 + 3 + 2
    assert all(s["ts"] >= f"{_day(30)}T" for s in _all_samples(store, "web1"))


def test_a_host_whose_days_all_expired_disappears(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, settings={"retention_days": 10})
    store = _fill(cfg, ("gone",), range(20, 22), per_day=2)
    _fill(cfg, ("web1",), range(0, 1), per_day=2)
    prune(cfg, NOW)
    assert store.hosts() == ["web1"]


def test_a_symlinked_host_folder_is_never_pruned_through(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, settings={"retention_days": 10, "compress_after_days": 2})
    _fill(cfg, ("web1",), range(0, 1), per_day=2)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / f"{_day(40)}.jsonl").write_text("precious\n")
    (outside / f"{_day(5)}.jsonl").write_text("precious\n")
    (cfg.settings.data_dir / "hosts" / "evil").symlink_to(outside)

    report = prune(cfg, NOW)

    assert sorted(p.name for p in outside.iterdir()) == [f"{_day(40)}.jsonl", f"{_day(5)}.jsonl"]
    assert report.removed == () and report.compressed == ()


def test_retention_by_size_removes_the_oldest_days_first(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, settings={"retention_max_mb": 1, "compress_after_days": 365})
    data = cfg.settings.data_dir
    line = json.dumps({"ts": "x", "pad": "p" * 1000}).encode() + b"\n"
    sizes = {}
    for host in ("web1", "db2"):
        for age in range(5):
            path = data / "hosts" / host / f"{_day(age)}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(line * 150)  # about 150 KB per file, 1.5 MB in all
            sizes[path] = path.stat().st_size

    report = prune(cfg, NOW)

    left = {p for p in sizes if p.exists()}
    assert sum(sizes[p] for p in left) <= 1024 * 1024
    assert report.total_bytes == sum(sizes[p] for p in left)
    removed_days = sorted(p.name for p in report.removed)
    # The oldest go first, and no more than needed.
    assert max(removed_days) <= min(p.name for p in left)
    assert sum(sizes[p] for p in left) + sizes[report.removed[-1]] > 1024 * 1024
    assert report.bytes_freed == sum(sizes[p] for p in report.removed)


def test_one_host_writing_far_more_pays_for_the_size_limit_itself(tmp_path: Path) -> None:
    """Oldest-first across the fleet let one noisy (or hostile) host erase every other host's
    history while keeping its own; the folder holding most now gives up its oldest days."""
    cfg = make_config(tmp_path, settings={"retention_max_mb": 1, "compress_after_days": 365})
    data = cfg.settings.data_dir
    line = json.dumps({"ts": "x", "pad": "p" * 1000}).encode() + b"\n"
    for host, lines in (("noisy", 300), ("quiet", 20)):
        for age in range(5):
            path = data / "hosts" / host / f"{_day(age)}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(line * lines)  # noisy: about 300 KB a day, quiet: 20 KB

    report = prune(cfg, NOW)

    assert sorted(p.name for p in (data / "hosts" / "quiet").iterdir()) == [
        f"{_day(age)}.jsonl" for age in range(4, -1, -1)]
    assert sorted(str(p.relative_to(data)) for p in report.removed) == [
        f"hosts/noisy/{_day(age)}.jsonl" for age in (4, 3)]
    assert report.total_bytes <= 1024 * 1024


def test_an_interrupted_compression_is_finished_from_the_plain_file(tmp_path: Path) -> None:
    """A prune killed between the rename and the unlink leaves both files; the next one keeps
    every line of the plain file, even if the .gz were short."""
    cfg = make_config(tmp_path, settings={"compress_after_days": 2})
    store = _fill(cfg, ("web1",), range(3, 4))
    plain = cfg.settings.data_dir / "hosts" / "web1" / f"{_day(3)}.jsonl"
    content = plain.read_bytes()
    plain.with_name(plain.name + ".gz").write_bytes(gzip.compress(content[: len(content) // 2]))

    prune(cfg, NOW)

    assert list(_files(cfg, "web1")) == [plain.name + ".gz"]
    assert gzip.decompress(_files(cfg, "web1")[plain.name + ".gz"]) == content
    assert len(_all_samples(store, "web1")) == 48


HOLDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from collector.store.lock import DataLock
    with DataLock(Path(sys.argv[1]), "collect"):
        print("locked", flush=True)
        for line in sys.stdin:  # a late line for a closed day, written under the lock
            with open(sys.argv[2], "ab") as fh:
                fh.write(line.encode())
            break
""")


def _hold_lock(data_dir: Path, append_to: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(data_dir), str(append_to)],
                              cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    return holder


def test_a_file_written_to_while_it_is_compressed_is_left_for_next_time(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, settings={"compress_after_days": 2})
    store = _fill(cfg, ("web1",), range(3, 4))
    plain = cfg.settings.data_dir / "hosts" / "web1" / f"{_day(3)}.jsonl"
    holder = _hold_lock(cfg.settings.data_dir, plain)
    reports: list = []
    pruner = threading.Thread(target=lambda: reports.append(prune(cfg, NOW, lock_wait_s=120)))
    pruner.start()
    try:
        deadline = time.monotonic() + 60
        while not list(plain.parent.glob(".*.tmp")):  # the copy is being made: size noted
            assert time.monotonic() < deadline and pruner.is_alive()
            time.sleep(0.01)
        late = json.dumps(sample("web1", NOW - timedelta(days=3, minutes=-5), 77.0))
        holder.communicate(late + "\n", timeout=60)
    finally:
        if holder.poll() is None:
            holder.kill()
        pruner.join(timeout=120)

    assert reports and reports[0].compressed == ()
    assert list(_files(cfg, "web1")) == [plain.name]
    assert plain.read_bytes().endswith(late.encode() + b"\n")
    assert prune(cfg, NOW).compressed == (plain.with_name(plain.name + ".gz"),)
    assert any(s["cpu"]["percent"] == 77.0 for s in _all_samples(store, "web1"))


def test_prune_respects_a_running_pass(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, settings={"compress_after_days": 2, "retention_days": 5})
    _fill(cfg, ("web1",), range(8), per_day=4)
    data = cfg.settings.data_dir
    before = snapshot(data)
    holder = _hold_lock(data, tmp_path / "unused")
    try:
        with pytest.raises(LockHeld, match="collect is running"):
            prune(cfg, NOW, lock_wait_s=0.3)
    finally:
        holder.communicate(timeout=60)
    assert snapshot(data) == before
    assert not list(tmp_path.rglob("*.tmp"))
    report = prune(cfg, NOW)  # once the pass is over
    assert len(report.removed) == 2 and len(report.compressed) == 3


def test_cli_prune_is_quiet_under_cron_and_talks_with_v(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    cfg = make_config(tmp_path, settings={"compress_after_days": 1, "retention_days": 2})
    now = datetime.now(timezone.utc)
    store = Store(cfg.settings.data_dir)
    for age in range(5):
        store.append("web1", sample("web1", now - timedelta(days=age)))

    assert cli.main(["--config", str(cfg.path), "prune"]) == 0
    assert capsys.readouterr() == ("", "")
    assert len(store.day_files("web1")) == 3

    store.append("web1", sample("web1", now - timedelta(days=3)))
    assert cli.main(["--config", str(cfg.path), "prune", "-v"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("compressed 0 day file(s), removed 1, freed ")
    assert f"removed {cfg.settings.data_dir}/hosts/web1/" in out
    assert os.path.exists(cfg.settings.data_dir / "hosts" / "web1")


KILLED_PRUNE = textwrap.dedent("""
    import gzip, os, signal, sys
    from datetime import datetime
    from collector import config
    from collector.store import retention

    step = sys.argv[2]
    real_unlink, real_write = os.unlink, gzip.GzipFile.write
    def die():
        os.kill(os.getpid(), signal.SIGKILL)
    if step == "compressing":        # the copy is half written
        def write(self, data):
            real_write(self, data[: len(data) // 2])
            die()
        gzip.GzipFile.write = write
    else:                            # the copy took its name; the plain file is still there
        def unlink(path, *args, **kwargs):
            if os.fspath(path).endswith(".jsonl"):
                die()
            real_unlink(path, *args, **kwargs)
        os.unlink = unlink
    retention.prune(config.load(sys.argv[1]), datetime.fromisoformat(sys.argv[3]))
""")


@pytest.mark.parametrize("step", ["compressing", "renamed"])
def test_a_prune_killed_while_compressing_loses_no_line(tmp_path: Path, step: str) -> None:
    """Never neither: a day is readable whole at every moment; when both files exist readers
    count it once; the next prune finishes the job and clears what the killed one left."""
    cfg = make_config(tmp_path, settings={"compress_after_days": 2})
    store = _fill(cfg, ("web1",), range(3, 4))
    plain = cfg.settings.data_dir / "hosts" / "web1" / f"{_day(3)}.jsonl"
    content, samples = plain.read_bytes(), _all_samples(store, "web1")
    child = subprocess.run([sys.executable, "-c", KILLED_PRUNE, str(cfg.path), step,
                            NOW.isoformat()], cwd=ROOT, capture_output=True, text=True,
                           timeout=120)
    assert child.returncode == -9, child.stderr

    left = sorted(p.name for p in plain.parent.iterdir())
    if step == "compressing":
        assert left[1:] == [plain.name] and left[0].endswith(".tmp")  # hidden, ignored
    else:
        assert left == [plain.name, plain.name + ".gz"]
    assert plain.read_bytes() == content
    assert _all_samples(store, "web1") == samples  # every line, once

    old = time.time() - 7200
    for path in plain.parent.glob(".*.tmp"):
        os.utime(path, (old, old))
    prune(cfg, NOW)
    assert sorted(p.name for p in plain.parent.iterdir()) == [plain.name + ".gz"]
    assert gzip.decompress((plain.parent / (plain.name + ".gz")).read_bytes()) == content
    assert _all_samples(store, "web1") == samples


def test_a_day_both_compressed_and_plain_is_merged_never_replaced(tmp_path: Path) -> None:
    """The clock went back across days: the collector appended to a day prune had already
    compressed.  Readers see both files' lines, prune merges them, and a merge killed after
    its rename (both files again) keeps each line once."""
    cfg = make_config(tmp_path, settings={"compress_after_days": 2})
    store = _fill(cfg, ("web1",), range(3, 4))
    prune(cfg, NOW)
    day = _day(3)
    directory = cfg.settings.data_dir / "hosts" / "web1"
    packed = directory / f"{day}.jsonl.gz"
    original = gzip.decompress(packed.read_bytes())
    start = datetime.combine(day, datetime.min.time(), tzinfo=timezone.utc)
    for i in range(5):
        store.append("web1", sample("web1", start + timedelta(minutes=15 + 30 * i), 99.0))
    plain = directory / f"{day}.jsonl"
    late = plain.read_bytes()
    seen_before_prune = len(_all_samples(store, "web1"))

    report = prune(cfg, NOW)

    assert report.compressed == (packed,)
    assert sorted(_files(cfg, "web1")) == [packed.name]
    assert gzip.decompress(packed.read_bytes()) == original + late
    assert seen_before_prune == len(_all_samples(store, "web1")) == 53
    # A merge killed between its rename and the removal of the plain file:
    plain.write_bytes(late)
    assert len(_all_samples(store, "web1")) == 53
    prune(cfg, NOW)
    assert sorted(_files(cfg, "web1")) == [packed.name]
    assert gzip.decompress(packed.read_bytes()) == original + late


def test_the_state_of_a_host_gone_from_hosts_toml_goes_when_its_data_would(
        tmp_path: Path) -> None:
    """Process counters, disk trend and probe choice of a host removed from hosts.toml are
    removed once untouched for retention_days; those of a configured host, or of a removed
    one seen recently (it may come back), stay."""
    cfg = make_config(tmp_path, settings={"retention_days": 10})
    _fill(cfg, ("central",), range(0, 1), per_day=2)
    old, recent = NOW.timestamp() - 11 * 86400, NOW.timestamp() - 2 * 86400
    files = {}
    for folder in ("proc-counters", "disk-trend", "probe-choice"):
        (cfg.state_dir / folder).mkdir(parents=True, exist_ok=True)
        for host, mtime in (("gone", old), ("central", old), ("paused", recent)):
            path = cfg.state_dir / folder / f"{host}.json"
            path.write_text("{}")
            os.utime(path, (mtime, mtime))
            files[(folder, host)] = path
    report = prune(cfg, NOW)
    assert {(f, h) for (f, h), path in files.items() if not path.exists()} == {
        (folder, "gone") for folder in ("proc-counters", "disk-trend", "probe-choice")}
    assert sorted(p.name for p in report.removed if p.parent.parent == cfg.state_dir) == [
        "gone.json"] * 3
