"""Backups: create, list, restore round trips, names, permissions, retention and the CLI."""

from __future__ import annotations

import json
import os
import stat
import tarfile
import time
from datetime import timedelta
from pathlib import Path

import pytest
from backup_fixtures import NOW, fill_store, make_config, sample, snapshot, tree
from werkzeug.security import check_password_hash

import collector.backup.backups as backup_module
from collector import SCHEMA_VERSION, __version__, cli
from collector.alerts import muting_store
from collector.alerts.muting_input import SilenceRequest
from collector.alerts.muting_store import ACKS_FILE, SILENCES_FILE
from collector.backup.backups import (
    KEPT_ON_RESTORE,
    BackupError,
    apply_backup_retention,
    create_backup,
    delete_backup,
    format_size,
    list_backups,
    restore_backup,
)
from collector.config import Config
from collector.store.samples import Store
from collector.store.statefile import atomic_write_json
from web.auth import (
    ADMIN_FILE,
    SECRET_FILE,
    load_secret_key,
    read_admin_hash,
    write_admin_password,
)


def test_round_trip_restores_the_data_byte_for_byte(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    store = fill_store(cfg)
    before = snapshot(cfg.settings.data_dir)
    made = create_backup(cfg, now=NOW)

    # Life goes on: new samples, a lost day file, changed alert state.
    store.append("web1", sample("web1", NOW + timedelta(minutes=1), 99.0))
    (cfg.settings.data_dir / "hosts" / "db2" / f"{NOW.date()}.jsonl").unlink()
    (cfg.state_dir / "alerts.json").write_text('{"version": 1, "active": {}}\n')
    changed = snapshot(cfg.settings.data_dir)

    safety = restore_backup(cfg, made.name, now=NOW + timedelta(hours=1))

    assert snapshot(cfg.settings.data_dir) == before
    assert Store(cfg.settings.data_dir).latest("web1")["cpu"]["percent"] != 99.0
    # The replaced data was kept as a backup of its own, and restoring it brings it back.
    assert [b.name for b in list_backups(cfg)] == [safety.name, made.name]
    restore_backup(cfg, safety.name, now=NOW + timedelta(hours=2))
    assert snapshot(cfg.settings.data_dir) == changed
    # No leftovers next to the data: no old copy, no staging directory.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backups", "data", "hosts.toml"]


def test_restore_onto_a_new_machine_without_data(tmp_path: Path) -> None:
    """Disaster recovery: the archive is copied into an empty install's backup directory."""
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    old = make_config(tmp_path / "old")
    fill_store(old)
    made = create_backup(old, now=NOW)
    new = make_config(tmp_path / "new")
    new.settings.backup_dir.mkdir(mode=0o700)
    (new.settings.backup_dir / made.name).write_bytes(made.path.read_bytes())
    assert not new.settings.data_dir.exists()

    restore_backup(new, made.name, now=NOW + timedelta(days=1))
    assert snapshot(new.settings.data_dir) == snapshot(old.settings.data_dir)


def test_restore_through_a_symlinked_data_dir_keeps_the_link(tmp_path: Path) -> None:
    real = tmp_path / "disk2" / "osmon-data"
    real.mkdir(parents=True)
    (tmp_path / "data").symlink_to(real)
    cfg = make_config(tmp_path)
    fill_store(cfg)
    before = snapshot(real)
    made = create_backup(cfg, now=NOW)
    (real / "state" / "outbox.json").unlink()

    restore_backup(cfg, made.name, now=NOW + timedelta(minutes=5))

    assert (tmp_path / "data").is_symlink()
    assert snapshot(real) == before
    assert sorted(p.name for p in real.parent.iterdir()) == ["osmon-data"]


def test_archive_holds_manifest_first_and_every_data_file(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    fill_store(cfg)
    data = cfg.settings.data_dir
    (data / "state" / ".alerts.json.x1y2.tmp").write_text("half written")
    (data / ".lock").write_text("")
    made = create_backup(cfg, now=NOW)

    assert made.name == "osmon-20261121-224100.tar.gz"
    assert made.hosts == 3 and made.size == made.path.stat().st_size
    with tarfile.open(made.path) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("MANIFEST.json").read())
    assert names[0] == "MANIFEST.json"
    assert manifest["osmon_version"] == __version__
    assert manifest["schema_version"] == SCHEMA_VERSION
    assert manifest["created"] == "2026-11-21T22:41:00Z"
    expected = snapshot(data)
    del expected["state/.alerts.json.x1y2.tmp"]
    assert {f["path"] for f in manifest["files"]} == set(expected)
    assert sorted(names[1:]) == sorted(f"data/{p}" for p in expected)
    assert all(f["size"] == len(expected[f["path"]]) for f in manifest["files"])


def test_backups_are_private_to_their_owner(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    fill_store(cfg)
    made = create_backup(cfg, now=NOW)
    assert stat.S_IMODE(cfg.settings.backup_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(made.path.stat().st_mode) == 0o600


def test_two_backups_in_the_same_second_never_overwrite(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    store = fill_store(cfg)
    first = create_backup(cfg, now=NOW)
    first_bytes = first.path.read_bytes()
    store.append("web1", sample("web1", NOW, 50.0))
    second = create_backup(cfg, now=NOW)
    third = create_backup(cfg, now=NOW)

    assert (second.name, third.name) == ("osmon-20261121-224100-1.tar.gz",
                                         "osmon-20261121-224100-2.tar.gz")
    assert first.path.read_bytes() == first_bytes
    assert [b.name for b in list_backups(cfg)] == [third.name, second.name, first.name]


def test_without_hard_links_the_name_is_still_never_reused(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = make_config(tmp_path)
    fill_store(cfg)
    first = create_backup(cfg, now=NOW)

    def no_links(src: object, dst: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    second = create_backup(cfg, now=NOW)
    assert second.name == "osmon-20261121-224100-1.tar.gz"
    assert {p.name for p in cfg.settings.backup_dir.iterdir()} == {first.name, second.name}


def test_temporary_files_of_a_killed_backup_are_cleaned_up_later(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    fill_store(cfg)
    backups = cfg.settings.backup_dir
    backups.mkdir(mode=0o700)
    stale = backups / ".osmon-abc123.tar.gz.tmp"
    stale.write_bytes(b"half an archive")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    fresh = backups / ".osmon-def456.tar.gz.tmp"  # may be another install's backup in progress
    fresh.write_bytes(b"in progress")

    made = create_backup(cfg, now=NOW)
    assert {p.name for p in backups.iterdir()} == {made.name, fresh.name}


def test_list_shows_only_backups_newest_first(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    fill_store(cfg)
    older = create_backup(cfg, now=NOW - timedelta(days=1))
    newer = create_backup(cfg, now=NOW)
    backups = cfg.settings.backup_dir
    (backups / "notes.txt").write_text("mine")
    (backups / "osmon-20261121-224100.tar.gz.bak").write_text("copy")
    (backups / "osmon-20991231-000000.tar.gz").symlink_to(tmp_path / "hosts.toml")
    (backups / "osmon-20991230-000000.tar.gz").write_bytes(b"damaged")

    infos = list_backups(cfg)
    assert [i.name for i in infos] == ["osmon-20991230-000000.tar.gz", newer.name, older.name]
    assert infos[0].hosts is None  # unreadable manifest: listed, restore will say what is wrong
    assert infos[1].created == NOW and infos[1].hosts == 3


def test_list_of_a_missing_backup_dir_is_empty(tmp_path: Path) -> None:
    assert list_backups(make_config(tmp_path)) == []


@pytest.mark.parametrize("name", ["../hosts.toml", "/etc/passwd", "x/../y", "",
                                  "osmon-20261121-224100.tar.gz/../../hosts.toml",
                                  "../backups/osmon-20261121-224100.tar.gz",
                                  "osmon-20261121-224100.tar.gz\x00", "osmon-*.tar.gz",
                                  "osmon-20261121-224100.tar.gz\n"])
def test_delete_refuses_anything_but_a_backup_name(tmp_path: Path, name: str) -> None:
    cfg = make_config(tmp_path)
    fill_store(cfg)
    create_backup(cfg, now=NOW)
    before = tree(tmp_path)

    with pytest.raises(BackupError, match="not a backup name"):
        delete_backup(cfg, name)
    assert tree(tmp_path) == before
    assert (tmp_path / "hosts.toml").is_file()


def test_delete_and_restore_refuse_a_symlink_dressed_as_a_backup(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    fill_store(cfg)
    cfg.settings.backup_dir.mkdir()
    fake = cfg.settings.backup_dir / "osmon-20261121-224100.tar.gz"
    fake.symlink_to(tmp_path / "hosts.toml")

    with pytest.raises(BackupError, match="no backup named"):
        delete_backup(cfg, fake.name)
    with pytest.raises(BackupError, match="no backup named"):
        restore_backup(cfg, fake.name)
    assert (tmp_path / "hosts.toml").is_file() and fake.is_symlink()


def test_delete_removes_one_backup(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    fill_store(cfg)
    keep = create_backup(cfg, now=NOW - timedelta(hours=1))
    gone = create_backup(cfg, now=NOW)
    delete_backup(cfg, gone.name)
    assert [b.name for b in list_backups(cfg)] == [keep.name]
    with pytest.raises(BackupError, match="no backup named"):
        delete_backup(cfg, gone.name)


def test_a_backup_dir_inside_the_data_dir_is_refused(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, settings={"backup_dir": "data/backups"})
    fill_store(cfg)
    with pytest.raises(BackupError, match="must not be inside data_dir"):
        create_backup(cfg, now=NOW)


def test_a_restore_keeps_the_current_dashboard_password_and_session_key(tmp_path: Path) -> None:
    """A password changed because it leaked must not come back with an old backup; where the
    install has none (a new machine), the archived one is restored."""
    cfg = make_config(tmp_path)
    fill_store(cfg, days=1, per_day=2)
    write_admin_password(cfg.state_dir, "old leaked password")
    key = load_secret_key(cfg.state_dir)
    made = create_backup(cfg, now=NOW)
    write_admin_password(cfg.state_dir, "new password")
    (cfg.state_dir / SECRET_FILE).write_bytes(b"k" * 32)

    safety = restore_backup(cfg, made.name, now=NOW + timedelta(minutes=1))
    assert check_password_hash(read_admin_hash(cfg.state_dir), "new password")
    assert load_secret_key(cfg.state_dir) == b"k" * 32
    assert {rel.split("/")[1] for rel in KEPT_ON_RESTORE} == {ADMIN_FILE, SECRET_FILE,
                                                               "known_hosts", SILENCES_FILE}

    (cfg.state_dir / ADMIN_FILE).unlink()
    (cfg.state_dir / SECRET_FILE).unlink()
    restore_backup(cfg, made.name, now=NOW + timedelta(minutes=2))
    assert check_password_hash(read_admin_hash(cfg.state_dir), "old leaked password")
    # The session signing key is never archived: a new one is made, everyone logs in again.
    assert not (cfg.state_dir / SECRET_FILE).exists()
    assert len(load_secret_key(cfg.state_dir)) == 32 and load_secret_key(cfg.state_dir) != key
    with tarfile.open(made.path) as archive:
        names = archive.getnames()
    assert f"data/state/{ADMIN_FILE}" in names and f"data/state/{SECRET_FILE}" not in names
    assert safety.name in {b.name for b in list_backups(cfg)}


def test_a_restore_keeps_the_host_keys_accepted_since_the_backup(tmp_path: Path) -> None:
    """With accept-new, an older known_hosts would forget keys accepted since: the next pass
    would trust whatever those hosts present as "first seen"."""
    cfg = make_config(tmp_path)
    fill_store(cfg, days=1, per_day=2)
    known = cfg.settings.osmon_known_hosts
    assert known == cfg.state_dir / "known_hosts"
    known.write_text("web1 ssh-ed25519 AAAAold\n", encoding="utf-8")
    made = create_backup(cfg, now=NOW)
    known.write_text("web1 ssh-ed25519 AAAAold\nweb2 ssh-ed25519 AAAAnew\n", encoding="utf-8")
    restore_backup(cfg, made.name, now=NOW + timedelta(minutes=1))
    assert known.read_text(encoding="utf-8").splitlines() == [
        "web1 ssh-ed25519 AAAAold", "web2 ssh-ed25519 AAAAnew"]


def test_silences_and_acks_are_archived_and_a_restore_keeps_the_silences_of_now(
        tmp_path: Path) -> None:
    """Both files are in every backup.  A restore brings back the acknowledgements with the
    alert state they belong to, but keeps the silences in force: a restore made during a
    maintenance window must not end it; onto a new machine, the archived ones come back."""
    cfg = make_config(tmp_path)
    fill_store(cfg, days=1, per_day=2)
    old = muting_store.add_silence(cfg, SilenceRequest(host="central", duration="1d",
                                                       reason="old window"),
                                   author="alice", now=NOW, zone=None)
    (cfg.state_dir / ACKS_FILE).write_text('{"version": 1, "acks": []}\n')
    made = create_backup(cfg, now=NOW)
    with tarfile.open(made.path) as archive:
        names = archive.getnames()
    assert f"data/state/{SILENCES_FILE}" in names and f"data/state/{ACKS_FILE}" in names
    muting_store.remove_silence(cfg, old.id, author="bob", now=NOW)
    now = muting_store.add_silence(cfg, SilenceRequest(host="central", duration="2h",
                                                       reason="kernel upgrade"),
                                   author="bob", now=NOW, zone=None)
    (cfg.state_dir / ACKS_FILE).unlink()
    restore_backup(cfg, made.name, now=NOW + timedelta(minutes=1))
    assert [s.id for s in muting_store.read(cfg.state_dir)[0].silences] == [now.id]
    assert (cfg.state_dir / ACKS_FILE).exists()
    (cfg.state_dir / SILENCES_FILE).unlink()  # a new machine: nothing of its own
    restore_backup(cfg, made.name, now=NOW + timedelta(minutes=2))
    assert [s.id for s in muting_store.read(cfg.state_dir)[0].silences] == [old.id]


# -- retention ---------------------------------------------------------------------------------
def _backups_at(cfg: Config, ages_days: list[float]) -> list[str]:
    return [create_backup(cfg, now=NOW - timedelta(days=age)).name for age in ages_days]


def test_retention_keeps_the_newest_count(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, backup={"keep": 3, "keep_days": 30})
    fill_store(cfg, days=1, per_day=2)
    names = _backups_at(cfg, [4, 3, 2, 1, 0])
    assert apply_backup_retention(cfg, NOW) == [names[1], names[0]]
    assert [b.name for b in list_backups(cfg)] == names[:1:-1]


def test_retention_drops_backups_older_than_keep_days(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, backup={"keep": 14, "keep_days": 30})
    fill_store(cfg, days=1, per_day=2)
    names = _backups_at(cfg, [40, 31, 30, 29, 0])
    assert sorted(apply_backup_retention(cfg, NOW)) == sorted(names[:2])
    assert {b.name for b in list_backups(cfg)} == set(names[2:])


def test_retention_never_deletes_the_newest_backup(tmp_path: Path) -> None:
    # Both are older than keep_days: age alone would delete them both.
    cfg = make_config(tmp_path, backup={"keep": 1, "keep_days": 1})
    fill_store(cfg, days=1, per_day=2)
    names = _backups_at(cfg, [200, 100])
    assert apply_backup_retention(cfg, NOW) == [names[0]]
    assert [b.name for b in list_backups(cfg)] == [names[1]]
    assert apply_backup_retention(cfg, NOW) == []


def test_retention_never_deletes_the_backup_just_made(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A backup named by a clock that was ahead (or copied from another machine) sorts first;
    ``osmon backup create`` with keep = 1 must still keep the one it has just written."""
    cfg = make_config(tmp_path, backup={"keep": 1, "keep_days": 30})
    fill_store(cfg, days=1, per_day=2)
    ahead = create_backup(cfg, now=NOW.replace(year=2099))
    assert cli.main(["--config", str(cfg.path), "backup", "create"]) == 0
    made = capsys.readouterr().out.strip()
    assert {b.name for b in list_backups(cfg)} == {ahead.name, made}
    # Without the protection the same settings would delete it: the test can fail.
    assert apply_backup_retention(cfg, NOW) == [made]


def test_a_restore_keeps_its_safety_copy_whatever_the_retention(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = make_config(tmp_path, backup={"keep": 1, "keep_days": 1})
    fill_store(cfg, days=1, per_day=2)
    old = create_backup(cfg, now=NOW - timedelta(days=10))
    assert cli.main(["--config", str(cfg.path), "backup", "restore", old.name]) == 0
    safety = capsys.readouterr().out.strip().rsplit(" ", 1)[1]
    assert [b.name for b in list_backups(cfg)] == [safety, old.name]


def test_a_file_replaced_during_a_backup_restarts_the_archive(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``osmon set-password`` and the dashboard's session key are written without the data
    lock (atomically): replaced between the manifest and the archive, the file would make the
    archive disagree with its manifest; the backup starts again instead."""
    cfg = make_config(tmp_path)
    fill_store(cfg, days=1, per_day=2)
    secret = cfg.state_dir / "web-admin.json"
    atomic_write_json(secret, {"version": 1, "hash": "first"})
    real_build = backup_module.build_manifest
    builds: list[int] = []

    def build_then_replace(*args: object, **kwargs: object) -> dict:
        manifest = real_build(*args, **kwargs)
        builds.append(1)
        if len(builds) == 1:  # a lockless writer, right after the file was hashed
            atomic_write_json(secret, {"version": 1, "hash": "second"})
        return manifest

    monkeypatch.setattr(backup_module, "build_manifest", build_then_replace)
    made = create_backup(cfg, now=NOW)
    assert len(builds) == 2
    secret.unlink()
    restore_backup(cfg, made.name, now=NOW + timedelta(minutes=1))
    assert json.loads(secret.read_text())["hash"] == "second"


def test_a_file_that_never_stops_changing_fails_cleanly(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = make_config(tmp_path)
    fill_store(cfg, days=1, per_day=2)
    real_build = backup_module.build_manifest

    def build_then_replace(*args: object, **kwargs: object) -> dict:
        manifest = real_build(*args, **kwargs)
        atomic_write_json(cfg.state_dir / "alerts.json", {"version": 1, "n": time.time_ns()})
        return manifest

    monkeypatch.setattr(backup_module, "build_manifest", build_then_replace)
    with pytest.raises(BackupError, match="state/alerts.json kept changing .* nothing was "
                                          "written"):
        create_backup(cfg, now=NOW)
    assert sorted(p.name for p in cfg.settings.backup_dir.iterdir()) == []


# -- CLI -----------------------------------------------------------------------------------------
def test_cli_create_list_restore_delete(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = make_config(tmp_path, backup={"keep": 2, "keep_days": 3650})
    fill_store(cfg)
    config_arg = ["--config", str(cfg.path)]
    names = []
    for _ in range(3):
        assert cli.main([*config_arg, "backup", "create"]) == 0
        names.append(capsys.readouterr().out.strip())
        assert names[-1] == list_backups(cfg)[0].name
    assert len(set(names)) == 3  # names may share a second: the suffix keeps them apart
    assert len(list_backups(cfg)) == 2  # retention applied after create

    assert cli.main([*config_arg, "backup", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "CREATED", "(UTC)", "SIZE", "HOSTS"]
    assert [line.split()[0] for line in lines[1:]] == names[:0:-1]
    assert len({len(line) for line in lines}) == 1  # aligned columns
    assert all(line.rstrip().endswith("3") and " KiB " in line for line in lines[1:])

    assert cli.main([*config_arg, "backup", "restore", names[2]]) == 0
    assert capsys.readouterr().out.startswith(f"restored {names[2]}; the data it replaced is kept")

    assert cli.main([*config_arg, "backup", "delete", names[1]]) == 0
    assert names[1] not in {b.name for b in list_backups(cfg)}


def test_cli_create_quiet_prints_nothing(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    cfg = make_config(tmp_path)
    fill_store(cfg, days=1, per_day=2)
    assert cli.main(["--config", str(cfg.path), "backup", "create", "--quiet"]) == 0
    assert capsys.readouterr() == ("", "")
    assert len(list_backups(cfg)) == 1


@pytest.mark.parametrize("args", [["delete", "../hosts.toml"], ["restore", "/etc/passwd"],
                                  ["restore", "osmon-20000101-000000.tar.gz"]])
def test_cli_errors_are_one_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            args: list[str]) -> None:
    cfg = make_config(tmp_path)
    assert cli.main(["--config", str(cfg.path), "backup", *args]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("osmon backup: ") and err.count("\n") == 1
    assert (tmp_path / "hosts.toml").is_file()


def test_cli_list_without_backups(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = make_config(tmp_path)
    assert cli.main(["--config", str(cfg.path), "backup", "list"]) == 0
    assert capsys.readouterr().out == f"no backups in {cfg.settings.backup_dir}\n"


@pytest.mark.parametrize("size, text", [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"),
                                        (5 * 1024**3, "5.0 GiB"), (3 * 1024**4, "3.0 TiB")])
def test_sizes_read_like_people_write_them(size: int, text: str) -> None:
    assert format_size(size) == text
