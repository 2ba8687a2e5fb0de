"""A restore killed at any step, a full disk, a data directory that cannot be renamed: the data
is always whole (the old or the restored), and the old data is never lost.

The crashes are real: a restore runs in a child process that sends itself SIGKILL at a chosen
step (the step is found by wrapping one of our functions in the child), and the parent looks
at what is left on disk, exactly as the next cron run would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import pytest
from backup_fixtures import (
    NOW,
    ROOT,
    fill_store,
    in_private_tmpfs,
    make_config,
    sample,
    snapshot,
)

from collector.backup.backups import BackupError, create_backup, list_backups, restore_backup
from collector.config import Config
from collector.store import swap as backup_swap
from collector.store.samples import Store


class Scene:
    """A store, a backup of it, then a day of changes: ``before`` is the data a restore
    replaces, ``archived`` the data it brings back."""

    def __init__(self, root: Path) -> None:
        self.cfg = make_config(root)
        store = fill_store(self.cfg)
        self.archived = snapshot(self.cfg.settings.data_dir)
        self.name = create_backup(self.cfg, now=NOW - timedelta(days=1)).name
        store.append("web1", sample("web1", NOW + timedelta(minutes=1), 99.0))
        (self.cfg.state_dir / "alerts.json").write_text('{"version": 1, "active": {}}\n')
        self.before = snapshot(self.cfg.settings.data_dir)
        assert self.before != self.archived

    @property
    def data(self) -> dict[str, bytes]:
        return snapshot(self.cfg.settings.data_dir)


@pytest.fixture()
def scene(tmp_path: Path) -> Scene:
    return Scene(tmp_path)


@pytest.fixture()
def no_exchange(monkeypatch: pytest.MonkeyPatch) -> None:
    """A system whose C library has no ``renameat2`` (or whose file system cannot exchange):
    restore falls back to two renames."""
    monkeypatch.setattr(backup_swap, "_renameat2", lambda: None)


def test_restore_without_an_atomic_exchange_still_round_trips(scene: Scene,
                                                              no_exchange: None) -> None:
    safety = restore_backup(scene.cfg, scene.name, now=NOW + timedelta(hours=1))
    assert scene.data == scene.archived
    restore_backup(scene.cfg, safety.name, now=NOW + timedelta(hours=2))
    assert scene.data == scene.before
    assert sorted(p.name for p in scene.cfg.path.parent.iterdir()) == [
        "backups", "data", "hosts.toml"]


def test_a_failed_second_rename_puts_the_data_back(scene: Scene, no_exchange: None,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    real_rename = os.rename

    def rename(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if ".restore-" in os.fspath(src):
            raise OSError(28, "No space left on device")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(BackupError, match="the data was left as it was"):
        restore_backup(scene.cfg, scene.name, now=NOW)
    assert scene.data == scene.before
    assert sorted(p.name for p in scene.cfg.path.parent.iterdir()) == [
        "backups", "data", "hosts.toml"]


# -- kill -9 at every step -------------------------------------------------------------------------
KILLER = textwrap.dedent("""
    import os, shutil, signal, sys
    from collector import config
    from collector.backup import backups as backup
    from collector.backup import archive as backup_archive
    from collector.store import swap as backup_swap

    cfg_path, step, name = sys.argv[1:4]
    calls = []

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    def on_call(module, attr, when, nth=1):
        real = getattr(module, attr)
        def wrapper(*args, **kwargs):
            calls.append(attr)
            if when == "before" and calls.count(attr) == nth:
                die()
            result = real(*args, **kwargs)
            if when == "after" and calls.count(attr) == nth:
                die()
            return result
        setattr(module, attr, wrapper)

    if step == "extracting":            # the third file of the archive is written out
        on_call(backup_archive, "_copy_member", "after", nth=3)
    elif step == "writing-safety-copy":  # the backup of the current data is half written
        on_call(backup_archive._HashingReader, "read", "after", nth=4)
    elif step == "verifying-safety-copy":
        on_call(backup, "read_archive", "before", nth=2)
    elif step == "before-swap":
        on_call(backup_swap, "exchange", "before")
    elif step == "after-swap":
        on_call(backup_swap, "exchange", "after")
    elif step == "removing-old-data":    # half of the replaced data is deleted
        real_rmtree = shutil.rmtree
        def rmtree(path, *args, **kwargs):
            first = sorted(p for p in os.listdir(path) if not p.startswith("."))[0]
            real_rmtree(os.path.join(path, first))
            die()
        backup.shutil.rmtree = rmtree
    elif step == "between-renames":      # no atomic exchange here: two renames
        backup_swap._renameat2 = lambda: None
        real_rename = os.rename
        def rename(src, dst):
            if ".restore-" in os.fspath(src):
                die()
            real_rename(src, dst)
        os.rename = rename
    else:
        raise SystemExit("unknown step " + step)
    backup.restore_backup(config.load(cfg_path), name)
    print("not killed")
""")

BEFORE_SWAP = ["extracting", "writing-safety-copy", "verifying-safety-copy", "before-swap"]
AFTER_SWAP = ["after-swap", "removing-old-data"]


def _killed_restore(scene: Scene, step: str) -> None:
    child = subprocess.run([sys.executable, "-c", KILLER, str(scene.cfg.path), step, scene.name],
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert child.returncode == -signal.SIGKILL, (child.stdout, child.stderr)


def _age_leftovers(root: Path) -> list[Path]:
    """Hidden leftovers beside the data and in the backup directory, made two hours old."""
    found = [p for p in root.iterdir() if p.name.startswith(".")]
    found += [p for p in (root / "backups").iterdir() if p.name.startswith(".")]
    old = time.time() - 7200
    for path in found:
        os.utime(path, (old, old))
    return found


@pytest.mark.parametrize("step", BEFORE_SWAP + AFTER_SWAP)
def test_a_restore_killed_at_any_step_loses_nothing(scene: Scene, step: str) -> None:
    names_before = [b.name for b in list_backups(scene.cfg)]
    _killed_restore(scene, step)

    listed = [b.name for b in list_backups(scene.cfg)]
    if step in BEFORE_SWAP:
        assert scene.data == scene.before  # not touched
    else:
        assert scene.data == scene.archived  # the restore happened, whole
        # ... and the data it replaced is in the backup made just before the swap.
        [safety] = set(listed) - set(names_before)
        restore_backup(scene.cfg, safety, now=NOW + timedelta(hours=1))
        assert scene.data == scene.before
    assert all(not name.startswith(".") for name in listed)  # half-written files stay hidden

    # The next restore works, and cleans up once the leftovers are old enough to be no one's.
    leftovers = _age_leftovers(scene.cfg.path.parent)
    restore_backup(scene.cfg, scene.name, now=NOW + timedelta(hours=2))
    assert scene.data == scene.archived
    assert not any(p.exists() for p in leftovers)
    assert sorted(p.name for p in scene.cfg.path.parent.iterdir()) == [
        "backups", "data", "hosts.toml"]


def test_a_restore_killed_between_two_renames_is_undone_by_the_next_run(scene: Scene) -> None:
    data_dir = scene.cfg.settings.data_dir
    _killed_restore(scene, "between-renames")
    assert not data_dir.exists()  # the one moment the fallback has no data directory
    [aside] = [p for p in data_dir.parent.iterdir() if ".aside-" in p.name]
    assert snapshot(aside) == scene.before

    # The next backup (the daily cron line) puts the data back before anything else.
    made = create_backup(scene.cfg, now=NOW + timedelta(hours=1))
    assert scene.data == scene.before and not aside.exists()
    assert Store(data_dir).latest("web1")["cpu"]["percent"] == 99.0
    restore_backup(scene.cfg, scene.name, now=NOW + timedelta(hours=2))
    restore_backup(scene.cfg, made.name, now=NOW + timedelta(hours=3))
    assert scene.data == scene.before


def test_an_aside_copy_beside_new_data_is_never_deleted(scene: Scene,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """If something created a new data directory after the crash, both stay: osmon cannot know
    which one the admin wants, and says so."""
    data_dir = scene.cfg.settings.data_dir
    _killed_restore(scene, "between-renames")
    Store(data_dir).append("web1", sample("web1", NOW + timedelta(minutes=2), 5.0))
    [aside] = [p for p in data_dir.parent.iterdir() if ".aside-" in p.name]

    create_backup(scene.cfg, now=NOW + timedelta(hours=1))
    restore_backup(scene.cfg, scene.name, now=NOW + timedelta(hours=2))
    assert snapshot(aside) == scene.before
    assert "left alone" in caplog.text and aside.name in caplog.text


# -- real file systems saying no -------------------------------------------------------------------
RESTORE_IN_NAMESPACE = textwrap.dedent("""
    import json, os, shutil, sys
    from pathlib import Path
    from collector import config
    from collector.backup.backups import BackupError, list_backups, restore_backup

    cfg = config.load(sys.argv[1])
    data, backups = cfg.settings.data_dir, cfg.settings.backup_dir
    seed_data, seed_backups = Path(sys.argv[2]), Path(sys.argv[3])
    # The tmpfs starts empty: put the data and the backups on it as they were.
    for target, seed in ((data, seed_data), (backups, seed_backups)):
        if not target.is_dir() or not any(target.iterdir()):
            shutil.copytree(seed, target, dirs_exist_ok=True)

    def files(root):
        return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*")
                if p.is_file() and p.name != ".lock"}

    before, backups_before = files(data), sorted(os.listdir(backups))
    try:
        restore_backup(cfg, sys.argv[4])
        error = None
    except BackupError as exc:
        error = str(exc)
    hidden = [n for n in os.listdir(data.parent) if n.startswith(".")]
    print(json.dumps({"error": error, "data_untouched": files(data) == before,
                      "hidden_beside_data": hidden,
                      "backups_unchanged": sorted(os.listdir(backups)) == backups_before,
                      "listed": [b.name for b in list_backups(cfg)]}))
""")


def _seed(tmp_path: Path, data_dir: str, big: str) -> tuple[Config, str, Path, Path]:
    """A config with ``data_dir``, a backup holding ``big`` incompressible data (in the backup:
    "archive", in the current data: "current"), and seed copies of both directories."""
    import shutil

    cfg = make_config(tmp_path, settings={"data_dir": data_dir})
    fill_store(cfg, days=1, per_day=4)
    noise = cfg.state_dir / "noise.bin"
    noise.write_bytes(os.urandom(512 * 1024) if big == "archive" else b"small\n")
    name = create_backup(cfg, now=NOW - timedelta(days=1)).name
    noise.write_bytes(os.urandom(512 * 1024) if big == "current" else b"small\n")
    seeds = tmp_path / "seeds"
    shutil.copytree(cfg.settings.data_dir, seeds / "data")
    shutil.copytree(cfg.settings.backup_dir, seeds / "backups")
    return cfg, name, seeds / "data", seeds / "backups"


def test_disk_full_while_extracting_leaves_the_data_as_it_was(tmp_path: Path) -> None:
    """The data lives on a 384 KiB file system; the archive holds 512 KiB that do not compress."""
    cfg, name, seed_data, seed_backups = _seed(tmp_path, "vol/data", big="archive")
    outcome = in_private_tmpfs(tmp_path / "vol", "384k", RESTORE_IN_NAMESPACE, str(cfg.path),
                               str(seed_data), str(seed_backups), name)
    assert "No space left on device" in outcome["error"]
    assert outcome["error"].endswith("nothing was restored")
    assert outcome["data_untouched"] and outcome["hidden_beside_data"] == []
    assert outcome["backups_unchanged"]


def test_disk_full_while_keeping_the_current_data_leaves_it_as_it_was(tmp_path: Path) -> None:
    """The backups live on a small file system with room for the archive but not for a backup
    of the current (incompressible) data."""
    cfg, name, seed_data, seed_backups = _seed(tmp_path, "data", big="current")
    outcome = in_private_tmpfs(cfg.settings.backup_dir, "384k", RESTORE_IN_NAMESPACE,
                               str(cfg.path), str(seed_data), str(seed_backups), name)
    assert outcome["error"].startswith("cannot keep the current data as a backup before "
                                       "restoring")
    assert "No space left on device" in outcome["error"]
    assert outcome["data_untouched"] and outcome["hidden_beside_data"] == []
    assert outcome["backups_unchanged"] and outcome["listed"] == [name]


def test_a_data_dir_that_is_a_mount_point_is_refused_with_a_hint(tmp_path: Path) -> None:
    cfg, name, seed_data, seed_backups = _seed(tmp_path, "data", big="none")
    outcome = in_private_tmpfs(cfg.settings.data_dir, "4m", RESTORE_IN_NAMESPACE,
                               str(cfg.path), str(seed_data), str(seed_backups), name)
    assert "is it a mount point?" in outcome["error"]
    assert outcome["error"].endswith("nothing was restored")
    assert outcome["data_untouched"] and outcome["hidden_beside_data"] == []
    # The backup of the data that was not replaced stays: it is a good backup like any other.
    assert len(outcome["listed"]) == 2
