"""Restore never destroys data: hostile, damaged or lying archives are refused with the data
untouched and nothing written anywhere; a running pass is waited for, or refused."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import textwrap
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from backup_fixtures import (
    NOW,
    craft_archive,
    fill_store,
    in_private_tmpfs,
    make_config,
    regular,
    snapshot,
    special,
    tree,
)

from collector.backup.backups import BackupError, create_backup, list_backups, restore_backup
from collector.config import Config
from collector.errors import LockHeld
from collector.store.lock import DataLock
from collector.store.samples import encode_line

ROOT = Path(__file__).resolve().parent.parent
HOSTILE_NAME = "osmon-20261121-000000.tar.gz"
GOOD = b'{"v": 1, "ts": "2026-11-21T00:00:00Z", "host": "web1", "ok": true}\n'


@pytest.fixture()
def cfg(tmp_path: Path) -> Config:
    config = make_config(tmp_path)
    fill_store(config)
    config.settings.backup_dir.mkdir(mode=0o700)
    return config


def _refused(cfg: Config, name: str, match: str) -> None:
    """Restore ``name``: it must fail with ``match``, leave the data exactly as it was, and
    write nothing anywhere (no new backup, no staging directory, no file outside)."""
    root = cfg.path.parent
    data_before = snapshot(cfg.settings.data_dir)
    tree_before = tree(root)
    with pytest.raises(BackupError, match=match):
        restore_backup(cfg, name, now=NOW + timedelta(hours=1))
    assert snapshot(cfg.settings.data_dir) == data_before
    assert tree(root) == tree_before


def _hostile_members(root: Path) -> dict[str, list]:
    outside = root / "outside"
    return {
        "dot-dot": [regular("data/../../x", b"pwned\n")],
        "dot-dot-bare": [regular("../../x", b"pwned\n")],
        "absolute": [regular(str(root / "evil"), b"pwned\n")],
        "symlink-out": [special("data/hosts/web1/link", tarfile.SYMTYPE, str(outside)),
                        regular("data/hosts/web1/link/evil", b"pwned\n")],
        "symlink-relative": [special("data/state", tarfile.SYMTYPE, "../../outside")],
        "hardlink": [special("data/hosts/web1/hl", tarfile.LNKTYPE, str(root / "hosts.toml"))],
        "char-device": [special("data/hosts/web1/null", tarfile.CHRTYPE)],
        "block-device": [special("data/hosts/web1/sda", tarfile.BLKTYPE)],
        "fifo": [special("data/hosts/web1/pipe", tarfile.FIFOTYPE)],
        "directory": [special("data/hosts/web2", tarfile.DIRTYPE)],
    }


@pytest.mark.parametrize("with_data_filter", [True, False], ids=["data-filter", "by-hand-only"])
@pytest.mark.parametrize("innocent_manifest", [False, True], ids=["honest", "innocent"])
@pytest.mark.parametrize("case", sorted(_hostile_members(Path("/r"))))
def test_hostile_archives_are_refused(cfg: Config, monkeypatch: pytest.MonkeyPatch, case: str,
                                      innocent_manifest: bool, with_data_filter: bool) -> None:
    """Each hostile member comes after a good one; the manifest either lists the members as they
    are, or claims innocent files with the right sizes and checksums (a careful forger)."""
    root = cfg.path.parent
    (root / "outside").mkdir()
    if not with_data_filter:  # what an older Python without tarfile.data_filter does
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    members = [regular("data/hosts/web1/2026-11-21.jsonl", GOOD)] + _hostile_members(root)[case]
    files = None
    if innocent_manifest:
        files = [{"path": f"hosts/web1/f{i}.jsonl", "size": len(data or b""),
                  "sha256": hashlib.sha256(data or b"").hexdigest()}
                 for i, (_info, data) in enumerate(members)]
        files[0]["path"] = "hosts/web1/2026-11-21.jsonl"
    craft_archive(cfg.settings.backup_dir / HOSTILE_NAME, members, manifest_files=files)

    _refused(cfg, HOSTILE_NAME, "nothing was restored")
    assert not (root / "x").exists() and not (root.parent / "x").exists()
    assert list((root / "outside").iterdir()) == []


def test_a_truncated_archive_is_refused(cfg: Config) -> None:
    made = create_backup(cfg, now=NOW - timedelta(days=1))
    data = made.path.read_bytes()
    made.path.write_bytes(data[: len(data) * 2 // 3])
    _refused(cfg, made.name, "corrupt or truncated")


def test_a_file_that_is_not_gzip_is_refused(cfg: Config) -> None:
    (cfg.settings.backup_dir / HOSTILE_NAME).write_bytes(b"this is not an archive\n" * 10)
    _refused(cfg, HOSTILE_NAME, "corrupt or truncated")


def test_a_checksum_mismatch_discovered_late_leaves_everything_as_it_was(cfg: Config) -> None:
    """The damaged member is the last one: many files were already extracted when it is found."""
    members = [regular(f"data/hosts/web1/2026-11-{day:02d}.jsonl", GOOD) for day in range(1, 20)]
    files = [{"path": info.name[5:], "size": len(GOOD), "sha256": hashlib.sha256(GOOD).hexdigest()}
             for info, _data in members]
    members[-1] = regular(members[-1][0].name, GOOD.replace(b"web1", b"webX"))
    craft_archive(cfg.settings.backup_dir / HOSTILE_NAME, members, manifest_files=files)
    _refused(cfg, HOSTILE_NAME, "checksum mismatch for hosts/web1/2026-11-19.jsonl")


@pytest.mark.parametrize("problem, match", [
    ("missing", "incomplete"),
    ("extra", "not listed in the manifest"),
    ("size", "the manifest says"),
    ("duplicate", "appears twice"),
    ("newer-schema", "upgrade osmon"),
    ("no-manifest", "not an osmon backup"),
    ("lock-file", "unsafe path"),
])
def test_archives_that_disagree_with_their_manifest_are_refused(cfg: Config, problem: str,
                                                                match: str) -> None:
    members = [regular("data/hosts/web1/a.jsonl", GOOD), regular("data/hosts/web1/b.jsonl", GOOD)]
    files = [{"path": p, "size": len(GOOD), "sha256": hashlib.sha256(GOOD).hexdigest()}
             for p in ("hosts/web1/a.jsonl", "hosts/web1/b.jsonl")]
    path = cfg.settings.backup_dir / HOSTILE_NAME
    if problem == "missing":
        files.append({**files[0], "path": "hosts/web1/c.jsonl"})
    elif problem == "extra":
        files.pop()
    elif problem == "size":
        files[1]["size"] += 1
    elif problem == "duplicate":
        members.append(regular("data/hosts/web1/a.jsonl", GOOD))
    elif problem == "lock-file":
        files.append({**files[0], "path": ".lock"})
        members.append(regular("data/.lock", GOOD))
    if problem == "newer-schema":
        craft_archive(path, members, manifest_files=files)
        _rewrite_manifest(path, schema_version=99)
    elif problem == "no-manifest":
        with tarfile.open(path, "w:gz") as tar:
            tar.add(cfg.state_dir / "alerts.json", arcname="data/state/alerts.json")
    else:
        craft_archive(path, members, manifest_files=files)
    _refused(cfg, HOSTILE_NAME, match)


def _rewrite_manifest(path: Path, **changes: object) -> None:
    with tarfile.open(path) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    manifest = json.loads(members[0][1])
    manifest.update(changes)
    members[0] = (members[0][0], json.dumps(manifest).encode())
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


# -- the data lock -------------------------------------------------------------------------------
HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from collector.store.lock import DataLock
    with DataLock(Path(sys.argv[1]), "collect"):
        print("locked", flush=True)
        if sys.argv[2] == "until-stdin-closes":
            sys.stdin.read()
        else:
            time.sleep(float(sys.argv[2]))
""")


def _hold_lock(data_dir: Path, how: str) -> subprocess.Popen[str]:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(data_dir), how], cwd=ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    return holder


def test_restore_while_a_pass_holds_the_lock_refuses_and_changes_nothing(cfg: Config) -> None:
    made = create_backup(cfg, now=NOW - timedelta(days=1))
    (cfg.state_dir / "alerts.json").write_text('{"version": 1, "active": {}}\n')
    before, names = snapshot(cfg.settings.data_dir), tree(cfg.path.parent)
    holder = _hold_lock(cfg.settings.data_dir, "until-stdin-closes")
    try:
        with pytest.raises(LockHeld, match=r"another osmon collect is running since .* restore"):
            restore_backup(cfg, made.name, lock_wait_s=0.3)
        with pytest.raises(LockHeld):
            create_backup(cfg, lock_wait_s=0.3)
    finally:
        holder.communicate(timeout=60)
    assert snapshot(cfg.settings.data_dir) == before
    assert tree(cfg.path.parent) == names


def test_restore_waits_for_a_running_pass_to_finish(cfg: Config) -> None:
    made = create_backup(cfg, now=NOW - timedelta(days=1))
    before = snapshot(cfg.settings.data_dir)
    (cfg.state_dir / "alerts.json").write_text('{"version": 1, "active": {}}\n')
    holder = _hold_lock(cfg.settings.data_dir, "1.0")
    restore_backup(cfg, made.name, lock_wait_s=120)
    assert holder.poll() is not None, "restore went ahead while the pass held the lock"
    holder.communicate(timeout=60)
    assert snapshot(cfg.settings.data_dir) == before


def test_cli_restore_under_a_held_lock_exits_3(cfg: Config,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from collector import cli

    made = create_backup(cfg, now=NOW - timedelta(days=1))
    holder = _hold_lock(cfg.settings.data_dir, "until-stdin-closes")
    try:
        code = cli.main(["--config", str(cfg.path), "backup", "restore", made.name,
                         "--wait", "0.2"])
    finally:
        holder.communicate(timeout=60)
    err = capsys.readouterr().err
    assert code == 3 and err.startswith("osmon backup: another osmon collect is running")


def test_a_backup_taken_during_passes_holds_only_whole_lines(cfg: Config) -> None:
    """A fake pass appends to every host's file in two writes per line (as a slow disk or a
    signal could split them), holding the data lock per pass like the real one."""
    data_dir = cfg.settings.data_dir
    hosts = [f"h{i}" for i in range(8)]
    stop, passes = threading.Event(), []

    def pass_loop() -> None:
        n = 0
        while not stop.is_set():
            with DataLock(data_dir, "collect", wait_s=60):
                for host in hosts:
                    line = encode_line({"ts": "2026-11-21T22:41:00Z", "host": host, "n": n,
                                        "pad": "x" * 2000})
                    directory = data_dir / "hosts" / host
                    directory.mkdir(parents=True, exist_ok=True)
                    fd = os.open(directory / "2026-11-21.jsonl",
                                 os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
                    try:
                        os.write(fd, line[:1000])
                        stop.wait(0.001)
                        os.write(fd, line[1000:])
                    finally:
                        os.close(fd)
            n += 1
            passes.append(n)
            stop.wait(0.01)

    writer = threading.Thread(target=pass_loop)
    writer.start()
    try:
        made = []
        while len(made) < 4:
            if passes:
                made.append(create_backup(cfg, lock_wait_s=60,
                                          now=NOW + timedelta(seconds=len(made))))
    finally:
        stop.set()
        writer.join(timeout=60)
    assert len(passes) >= 2
    for info in made:
        with tarfile.open(info.path) as tar:
            for member in tar.getmembers():
                if not member.name.startswith("data/hosts/h"):
                    continue
                content = tar.extractfile(member).read()
                assert content.endswith(b"\n"), f"{info.name}: {member.name} ends mid-line"
                for line in content.splitlines():
                    assert json.loads(line)["host"] in hosts


def test_disk_full_while_writing_leaves_nothing_behind(cfg: Config) -> None:
    """A real ENOSPC: the backup directory is a 64 KiB tmpfs (in a private mount namespace) and
    the data does not compress."""
    (cfg.state_dir / "random.bin").write_bytes(os.urandom(512 * 1024))
    script = textwrap.dedent("""
        import json, os, sys
        from collector import config
        from collector.backup.backups import BackupError, create_backup
        cfg = config.load(sys.argv[1])
        try:
            create_backup(cfg)
            result = {"error": None}
        except BackupError as exc:
            result = {"error": str(exc)}
        result["left"] = sorted(os.listdir(cfg.settings.backup_dir))
        print(json.dumps(result))
    """)
    outcome = in_private_tmpfs(cfg.settings.backup_dir, "64k", script, str(cfg.path))
    assert outcome["error"] and "No space left on device" in outcome["error"]
    assert "nothing was written" in outcome["error"]
    assert outcome["left"] == []
    assert list_backups(cfg) == []
