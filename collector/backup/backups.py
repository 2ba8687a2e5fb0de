"""Backups of the data directory that can never destroy data (``osmon backup``, ``/backups``).

An archive ``<backup_dir>/osmon-<YYYYmmdd-HHMMSS>.tar.gz`` holds a manifest and every file of
the data directory (format and checks: :mod:`collector.backup.archive`).  Why it is safe:

* It is taken while holding the data lock, so no pass is half-way through a line; every file is
  read twice (once for the manifest, once into the archive) and the second read is checked
  against the first, so an archive never disagrees with its own manifest.
* It is written to a temporary name in the backup directory, fsynced, and published with
  ``link``, which fails instead of overwriting an existing backup (two in one second get
  ``-1``, ``-2``...); any error, a full disk included, removes the temporary file.
* A restore trusts nothing: the name must be one we list; the archive is verified byte for byte
  against its manifest while it is extracted into a temporary directory next to the data; the
  data it replaces is archived and that archive read back; only then is the copy swapped in
  (:mod:`collector.store.swap`: one atomic exchange, so a crash leaves the old data or the new,
  whole).  Until the swap the data directory is not touched.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from collector.backup.archive import (
    BackupError,
    FileChanged,
    build_manifest,
    data_files,
    manifest_hosts,
    read_archive,
    write_archive,
)
from collector.config import Config
from collector.store import swap as backup_swap
from collector.store.lock import DataLock
from collector.store.space import format_size
from collector.store.statefile import atomic_write_bytes, fsync_dir

__all__ = ["BackupError", "BackupInfo", "apply_backup_retention", "create_backup",
           "delete_backup", "format_size", "list_backups", "restore_backup"]

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^osmon-(\d{8}-\d{6})(?:-(\d+))?\.tar\.gz$")
#: Temporary files left by a killed ``create`` are removed once this old.
_STALE_S = 3600
_TMP_PREFIX = ".osmon-"
_TMP_SUFFIX = ".tar.gz.tmp"
#: Kept as they are by a restore: the dashboard's admin password hash and session key
#: (``ADMIN_FILE`` and ``SECRET_FILE`` of web/auth.py; collector never imports web), the
#: host keys accepted with ``accept-new`` (the default ``osmon_known_hosts``), and the
#: silences (``muting_store.SILENCES_FILE``).
KEPT_ON_RESTORE = ("state/web-admin.json", "state/web-secret", "state/known_hosts",
                   "state/silences.json")
#: A file replaced during a backup by a writer that takes no lock: start again, this often.
_ATTEMPTS = 3


@dataclass(frozen=True)
class BackupInfo:
    name: str
    path: Path
    size: int
    created: datetime
    #: Number of hosts with data in the archive, from its manifest (None if unreadable).
    hosts: int | None


# -- public API ------------------------------------------------------------------------------------
def list_backups(config: Config) -> list[BackupInfo]:
    """The backups in ``settings.backup_dir``, newest first; other files there are ignored."""
    backup_dir = config.settings.backup_dir
    try:
        entries = list(os.scandir(backup_dir))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise BackupError(f"cannot read the backup directory {backup_dir}: "
                          f"{exc.strerror}") from None
    found = []
    for entry in entries:
        if NAME_RE.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
            path = Path(entry.path)
            found.append(BackupInfo(name=entry.name, path=path,
                                    size=entry.stat(follow_symlinks=False).st_size,
                                    created=_created_from_name(entry.name),
                                    hosts=manifest_hosts(path)))
    found.sort(key=lambda b: _sort_key(b.name), reverse=True)
    return found


def create_backup(config: Config, *, lock_wait_s: float = 30,
                  now: datetime | None = None) -> BackupInfo:
    """Archive the data directory under its lock; ``now`` names the archive (tests inject it)."""
    data_dir = _data_dir(config)
    backup_swap.recover(data_dir)
    with DataLock(data_dir, "backup", wait_s=lock_wait_s):
        return _create_locked(config, now or datetime.now(timezone.utc))


def restore_backup(config: Config, name: str, *, lock_wait_s: float = 30,
                   now: datetime | None = None) -> BackupInfo:
    """Replace the data directory by backup ``name``; return the backup made of the old data.

    Everything happens under the data lock, so no pass writes into a directory that is about to
    be replaced, and the backup of the replaced data is exactly what the restore threw away.
    Any failure before the swap leaves the data directory untouched and removes the copy.
    """
    archive = _find(config, name)
    data_dir = _data_dir(config)
    moment = now or datetime.now(timezone.utc)
    backup_swap.recover(data_dir)
    with DataLock(data_dir, "restore", wait_s=lock_wait_s):
        real = data_dir.resolve()  # a symlinked data_dir: swap the real directory, keep the link
        _remove_stale(real.parent, f".{glob.escape(real.name)}.restore-*")
        staging = _staging_dir(real)
        swapped = False
        try:
            read_archive(archive, staging)
            _keep_credentials(real, staging)
            os.sync()  # the old data goes once the copy is in place: the copy must be on disk
            safety = _keep_current_data(config, moment)
            with DataLock(staging, "restore"):  # whoever comes after the swap finds it held
                old = backup_swap.swap_in(real, staging, _stamp(moment))
                swapped = True
        except BaseException:
            if not swapped:
                shutil.rmtree(staging, ignore_errors=True)
            raise
    try:
        shutil.rmtree(old)
    except OSError as exc:
        log.warning("restored %s, but could not remove the replaced data %s: %s (it is also in "
                    "backup %s)", name, old, exc.strerror, safety.name)
    return safety


def _keep_credentials(real: Path, staging: Path) -> None:
    """Carry this install's credentials (:data:`KEPT_ON_RESTORE`) into the restored copy.

    They are trust, not monitoring history: a password changed because it leaked must not come
    back with an old backup, and host keys must not go back either: with ``accept-new`` an
    older known_hosts would forget the keys accepted since, and the next pass would trust
    whatever key those hosts (or an attacker in between) present as "first seen"; a key the
    admin removed would come back.  Silences are the admin's instructions of now: a restore
    made during a maintenance window must not end it (and mail everything it holds back),
    nor bring back one that was removed.  Where the install has none yet (a restore onto a
    new machine), the archived ones are used.  The safety backup holds the current ones too.
    """
    for rel in KEPT_ON_RESTORE:
        try:
            atomic_write_bytes(staging / rel, (real / rel).read_bytes(), mode=0o600)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise BackupError(f"cannot keep {rel} across the restore: {exc.strerror}; nothing "
                              "was restored") from None


def _keep_current_data(config: Config, moment: datetime) -> BackupInfo:
    """Archive the data a restore is about to replace, and read the archive back: the data
    is deleted after the swap, so this copy must be whole."""
    try:
        safety = _create_locked(config, moment)
    except BackupError as exc:
        raise BackupError(f"cannot keep the current data as a backup before restoring ({exc}); "
                          "nothing was restored") from None
    try:
        read_archive(safety.path, None)
    except BaseException:
        _unlink_quietly(safety.path)
        raise
    return safety


def _staging_dir(real: Path) -> Path:
    """An empty private directory beside the data: same file system, so the swap is a rename."""
    try:
        return Path(tempfile.mkdtemp(prefix=f".{real.name}.restore-", dir=real.parent))
    except OSError as exc:
        raise BackupError(f"cannot create a temporary directory in {real.parent} (a restore "
                          f"extracts there, beside the data): {exc.strerror}; nothing was "
                          "restored") from None


def delete_backup(config: Config, name: str) -> None:
    """Delete one listed backup; anything that is not exactly a backup's name is refused."""
    path = _find(config, name)
    try:
        os.unlink(path)
    except OSError as exc:
        raise BackupError(f"cannot delete {name}: {exc.strerror}") from None


def apply_backup_retention(config: Config, now: datetime,
                           protect: tuple[str, ...] = ()) -> list[str]:
    """Delete backups beyond the newest ``backup.keep`` or older than ``backup.keep_days``.

    The newest backup is always kept, whatever the settings say: retention must never leave an
    admin with no backup at all.  ``protect`` names backups kept whatever their rank or age:
    the one just made (a backup named by a clock that was ahead outranks it) and a restore's
    safety copy.
    """
    keep = max(1, config.backup.keep)
    oldest_allowed = (now.astimezone(timezone.utc)
                      - timedelta(days=max(0, config.backup.keep_days)))
    deleted = []
    for index, info in enumerate(list_backups(config)):
        if (index == 0 or info.name in protect
                or (index < keep and info.created >= oldest_allowed)):
            continue
        delete_backup(config, info.name)
        deleted.append(info.name)
    return deleted


# -- names -------------------------------------------------------------------------------------
def _created_from_name(name: str) -> datetime:
    m = NAME_RE.fullmatch(name)
    assert m is not None
    return datetime.strptime(m.group(1), "%Y%m%d-%H%M%S").replace(tzinfo=timezone.utc)


def _sort_key(name: str) -> tuple[str, int]:
    m = NAME_RE.fullmatch(name)
    assert m is not None
    return m.group(1), int(m.group(2) or 0)


def _find(config: Config, name: str) -> Path:
    """The path of the listed backup called ``name``.

    The strict name pattern leaves no room for a ``/`` or ``..``, so the path cannot leave the
    backup directory; and it must be a regular file there, exactly what :func:`list_backups`
    would show.
    """
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise BackupError(f"{name!r} is not a backup name (expected osmon-YYYYmmdd-HHMMSS.tar.gz, "
                          "as shown by 'osmon backup list')")
    path = Path(config.settings.backup_dir) / name
    try:
        is_file = stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        is_file = False
    if not is_file:
        raise BackupError(f"no backup named {name} in {config.settings.backup_dir}")
    return path


def _data_dir(config: Config) -> Path:
    """The data directory, refusing a backup directory inside it: a restore would swap the
    backups away together with the data."""
    data_dir = Path(config.settings.data_dir)
    backup_dir = Path(config.settings.backup_dir).resolve()
    real = data_dir.resolve()
    if backup_dir == real or real in backup_dir.parents:
        raise BackupError(f"backup_dir ({config.settings.backup_dir}) must not be inside data_dir "
                          f"({data_dir}): a restore replaces the whole data directory")
    return data_dir


# -- create ------------------------------------------------------------------------------------
def _create_locked(config: Config, now: datetime) -> BackupInfo:
    """Write a backup; the caller holds the data lock."""
    data_dir = Path(config.settings.data_dir)
    backup_dir = Path(config.settings.backup_dir)
    _make_backup_dir(backup_dir)
    _remove_stale(backup_dir, f"{_TMP_PREFIX}*{_TMP_SUFFIX}")
    for _attempt in range(_ATTEMPTS):
        tmp: Path | None = None
        try:
            manifest = build_manifest(data_dir, data_files(data_dir), now)
            fd, tmp_name = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=_TMP_SUFFIX,
                                            dir=backup_dir)
            tmp = Path(tmp_name)
            with os.fdopen(fd, "wb") as fh:
                write_archive(fh, data_dir, manifest)
                fh.flush()
                os.fsync(fh.fileno())
            name = _publish(tmp, backup_dir, now)
            break
        except FileChanged as exc:
            changed = exc.rel
            _unlink_quietly(tmp)
        except OSError as exc:
            _unlink_quietly(tmp)
            where = exc.filename or backup_dir  # a data file we cannot read, or the archive
            raise BackupError(f"cannot create a backup: {where}: {exc.strerror or exc}; nothing "
                              "was written") from None
        except BaseException:
            _unlink_quietly(tmp)
            raise
    else:
        raise BackupError(f"cannot create a backup: {changed} kept changing while it was "
                          "archived; nothing was written, try again")
    path = backup_dir / name
    return BackupInfo(name=name, path=path, size=path.stat().st_size,
                      created=_created_from_name(name), hosts=len(manifest["hosts"]))


def _make_backup_dir(backup_dir: Path) -> None:
    # Archives hold the alert state and the e-mail outbox: only the owner may read them.
    try:
        backup_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"cannot create the backup directory {backup_dir}: "
                          f"{exc.strerror}") from None


def _stamp(now: datetime) -> str:
    return now.astimezone(timezone.utc).strftime("%Y%m%d-%H%M%S")


def _publish(tmp: Path, backup_dir: Path, now: datetime) -> str:
    """Give the finished archive its name; ``link`` never replaces an existing backup, so two
    backups in the same second get ``-1``, ``-2``... instead of one overwriting the other."""
    stamp = _stamp(now)
    suffix = 0
    while True:
        name = f"osmon-{stamp}{f'-{suffix}' if suffix else ''}.tar.gz"
        target = backup_dir / name
        try:
            os.link(tmp, target)
        except FileExistsError:
            suffix += 1
            continue
        except OSError:
            # No hard links on this file system (some network mounts): we hold the data lock,
            # so no other osmon creates a backup between this check and the rename.
            if target.exists():
                suffix += 1
                continue
            os.rename(tmp, target)
        else:
            os.unlink(tmp)
        fsync_dir(backup_dir)
        return name


# -- helpers -----------------------------------------------------------------------------------
def _remove_stale(directory: Path, pattern: str) -> None:
    """Remove what a killed backup or restore left behind (the caller holds the data lock, so
    nothing of ours is in progress; the age check spares anything another install may own)."""
    limit = time.time() - _STALE_S
    for path in directory.glob(pattern):
        try:
            st = path.lstat()
        except FileNotFoundError:
            continue
        if st.st_mtime >= limit:
            continue
        log.info("removing %s, left by an interrupted backup or restore", path)
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path, ignore_errors=True)
        else:
            _unlink_quietly(path)


def _unlink_quietly(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


