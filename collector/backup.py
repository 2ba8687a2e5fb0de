"""Backups of the data directory that can never destroy data.

An archive ``<backup_dir>/osmon-<YYYYmmdd-HHMMSS>.tar.gz`` holds ``MANIFEST.json`` first (osmon and
schema versions, creation time, hosts, every file with its size and sha256), then every file of
the data directory under ``data/``.  Why this shape:

* It is taken while holding the data lock, so no pass is half-way through a line; every file is
  read twice (once for the manifest, once into the archive) and the second read is checked
  against the first, so an archive never disagrees with its own manifest.
* It is written to a temporary name in the backup directory and published with ``link``, which
  fails instead of overwriting an existing backup; any error removes the temporary file.
* A restore trusts nothing in the archive: the name must be one we list, the manifest must
  describe every member exactly, members must be plain files with plain relative paths
  (checked by hand, and by ``tarfile``'s data filter where Python has it), and the content must
  match the checksums.  Only a fully verified copy is swapped in, by two renames, after a backup
  of the data it replaces.  Until the first rename the data directory is untouched; if the second
  fails, the first is undone.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import logging
import os
import posixpath
import re
import shutil
import stat
import tarfile
import tempfile
import time
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any

import collector
from collector.config import Config
from collector.errors import OsmonError
from collector.lock import DataLock
from collector.statefile import fsync_dir

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^osmon-(\d{8}-\d{6})(?:-(\d+))?\.tar\.gz$")
MANIFEST_NAME = "MANIFEST.json"
MANIFEST_FORMAT = 1
#: Members holding data are stored below this prefix, so no data file can clash with the manifest.
DATA_PREFIX = "data/"
#: A manifest is JSON held in memory; real ones are a few MiB at most (one entry per day file).
_MAX_MANIFEST_BYTES = 64 * 1024 * 1024
_CHUNK = 1024 * 1024
#: Temporary files left by a killed ``create`` are removed once this old.
_STALE_S = 3600
_TMP_PREFIX = ".osmon-"
_TMP_SUFFIX = ".tar.gz.tmp"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class BackupError(OsmonError):
    """A backup could not be made, found, verified, restored or deleted."""

    exit_code = 1


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
                                    hosts=_hosts_from_manifest(path)))
    found.sort(key=lambda b: _sort_key(b.name), reverse=True)
    return found


def create_backup(config: Config, *, lock_wait_s: float = 30,
                  now: datetime | None = None) -> BackupInfo:
    """Archive the data directory under its lock; ``now`` names the archive (tests inject it)."""
    data_dir = _data_dir(config)
    with DataLock(data_dir, "backup", wait_s=lock_wait_s):
        return _create_locked(config, now or datetime.now(timezone.utc))


def restore_backup(config: Config, name: str, *, lock_wait_s: float = 30,
                   now: datetime | None = None) -> BackupInfo:
    """Replace the data directory by backup ``name``; return the backup made of the old data.

    Everything happens under the data lock, so no pass writes into a directory that is about to
    be replaced, and the backup of the replaced data is exactly what the restore threw away.
    """
    archive = _find(config, name)
    data_dir = _data_dir(config)
    moment = now or datetime.now(timezone.utc)
    with DataLock(data_dir, "restore", wait_s=lock_wait_s):
        real = data_dir.resolve()  # a symlinked data_dir: swap the real directory, keep the link
        _remove_stale(real.parent, f".{real.name}.restore-*")
        staging = Path(tempfile.mkdtemp(prefix=f".{real.name}.restore-", dir=real.parent))
        try:
            _extract_verified(archive, staging)
            safety = _create_locked(config, moment)
            with DataLock(staging, "restore"):  # whoever comes after the swap finds it held
                old = _swap(real, staging, moment)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    try:
        shutil.rmtree(old)
    except OSError as exc:
        log.warning("restored %s, but could not remove the replaced data %s: %s (it is also in "
                    "backup %s)", name, old, exc.strerror, safety.name)
    return safety


def delete_backup(config: Config, name: str) -> None:
    """Delete one listed backup; anything that is not exactly a backup's name is refused."""
    path = _find(config, name)
    try:
        os.unlink(path)
    except OSError as exc:
        raise BackupError(f"cannot delete {name}: {exc.strerror}") from None


def apply_backup_retention(config: Config, now: datetime) -> list[str]:
    """Delete backups beyond the newest ``backup.keep`` or older than ``backup.keep_days``.

    The newest backup is always kept, whatever the settings say: retention must never leave an
    admin with no backup at all.
    """
    keep = max(1, config.backup.keep)
    oldest_allowed = now.astimezone(timezone.utc) - timedelta(days=config.backup.keep_days)
    deleted = []
    for index, info in enumerate(list_backups(config)):
        if index == 0 or (index < keep and info.created >= oldest_allowed):
            continue
        delete_backup(config, info.name)
        deleted.append(info.name)
    return deleted


def format_size(size: int) -> str:
    """Bytes for people: ``512 B``, ``1.5 KiB``, ``12.0 MiB``."""
    value, unit = float(size), "B"
    for bigger in ("KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"


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
    tmp: Path | None = None
    try:
        manifest = _manifest(data_dir, _data_files(data_dir), now)
        fd, tmp_name = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=_TMP_SUFFIX, dir=backup_dir)
        tmp = Path(tmp_name)
        with os.fdopen(fd, "wb") as fh:
            _write_archive(fh, data_dir, manifest)
            fh.flush()
            os.fsync(fh.fileno())
        name = _publish(tmp, backup_dir, now)
    except OSError as exc:
        if tmp is not None:
            _unlink_quietly(tmp)
        where = exc.filename or backup_dir  # a data file we cannot read, or the archive
        raise BackupError(f"cannot create a backup: {where}: {exc.strerror or exc}; nothing "
                          "was written") from None
    except BaseException:
        if tmp is not None:
            _unlink_quietly(tmp)
        raise
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


def _data_files(data_dir: Path) -> list[str]:
    """Relative POSIX paths of the regular files to back up, sorted.

    Left out: the lock file, temporary files (``*.tmp``: an atomic write or a compression in
    progress) and anything that is not a regular file (a symlink could point anywhere).
    """
    found = []
    for root, dirs, names in os.walk(data_dir):
        dirs.sort()
        rel_root = Path(root).relative_to(data_dir).as_posix()
        for name in sorted(names):
            rel = name if rel_root == "." else f"{rel_root}/{name}"
            if rel == ".lock" or name.endswith(".tmp"):
                continue
            try:
                mode = os.lstat(os.path.join(root, name)).st_mode
            except FileNotFoundError:  # an atomic write by a process that needs no lock
                continue
            if not stat.S_ISREG(mode):
                log.warning("backup: skipping %s: not a regular file", rel)
                continue
            found.append(rel)
    return found


def _manifest(data_dir: Path, files: list[str], now: datetime) -> dict[str, Any]:
    entries = []
    for rel in files:
        digest, size = _hash_file(data_dir / rel)
        entries.append({"path": rel, "size": size, "sha256": digest})
    hosts = sorted({rel.split("/")[1] for rel in files
                    if rel.startswith("hosts/") and rel.count("/") >= 2})
    return {"format": MANIFEST_FORMAT, "osmon_version": collector.__version__,
            "schema_version": collector.SCHEMA_VERSION,
            "created": now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "hosts": hosts, "files": entries}


def _write_archive(fh: IO[bytes], data_dir: Path, manifest: dict[str, Any]) -> None:
    mtime = int(time.time())
    body = json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8") + b"\n"
    # Level 6: most of level 9's ratio on JSON for a fraction of its CPU.
    with tarfile.open(fileobj=fh, mode="w:gz", compresslevel=6) as tar:
        tar.addfile(_member(MANIFEST_NAME, len(body), 0o600, mtime), io.BytesIO(body))
        for entry in manifest["files"]:
            path = data_dir / entry["path"]
            st = os.lstat(path)
            with open(path, "rb") as src:
                reader = _HashingReader(src)
                tar.addfile(_member(DATA_PREFIX + entry["path"], entry["size"],
                                    stat.S_IMODE(st.st_mode), int(st.st_mtime)), reader)
            if reader.hexdigest() != entry["sha256"]:
                raise BackupError(f"{entry['path']} changed while the backup was taken, although "
                                  "the data lock was held; try again")


def _member(name: str, size: int, mode: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = mode
    info.mtime = mtime
    return info


class _HashingReader:
    """A file wrapper that hashes what ``tarfile`` copies out of it."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self._hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._fh.read(size)
        self._hash.update(data)
        return data

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _publish(tmp: Path, backup_dir: Path, now: datetime) -> str:
    """Give the finished archive its name; ``link`` never replaces an existing backup, so two
    backups in the same second get ``-1``, ``-2``... instead of one overwriting the other."""
    stamp = now.astimezone(timezone.utc).strftime("%Y%m%d-%H%M%S")
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


# -- restore -----------------------------------------------------------------------------------
def _extract_verified(archive: Path, staging: Path) -> None:
    """Extract ``archive`` into the empty directory ``staging``, verifying every byte.

    Raises :class:`BackupError` on anything unexpected; the caller removes ``staging``.
    """
    try:
        _extract_all(archive, staging)
    except BackupError as exc:
        raise BackupError(f"{exc}; nothing was restored") from None
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise BackupError(f"{archive.name} is corrupt or truncated ({exc}); nothing was "
                          "restored") from None
    except OSError as exc:
        raise BackupError(f"cannot restore {archive.name}: {exc.strerror or exc}; nothing was "
                          "restored") from None
    os.sync()  # the old data is deleted after the swap: the new copy must be on disk first


def _extract_all(archive: Path, staging: Path) -> None:
    label = archive.name
    with tarfile.open(archive, mode="r:gz") as tar:
        manifest = _read_manifest(tar, label)
        expected = {DATA_PREFIX + f["path"]: f for f in manifest["files"]}
        seen: set[str] = set()
        member = tar.next()
        while member is not None:
            entry = _check_member(member, expected, seen, staging, label)
            _extract_member(tar, member, entry, staging, label)
            seen.add(member.name)
            member = tar.next()
    missing = sorted(set(expected) - seen)
    if missing:
        raise BackupError(f"{label} is incomplete: {len(missing)} file(s) of its manifest are "
                          f"missing, e.g. {missing[0][len(DATA_PREFIX):]}")


def _read_manifest(tar: tarfile.TarFile, label: str) -> dict[str, Any]:
    first = tar.next()
    if first is None or first.name != MANIFEST_NAME or first.type not in _REGULAR:
        raise BackupError(f"{label} has no {MANIFEST_NAME} first: not an osmon backup")
    if first.size > _MAX_MANIFEST_BYTES:
        raise BackupError(f"{label}: {MANIFEST_NAME} is implausibly large")
    fh = tar.extractfile(first)
    assert fh is not None
    try:
        manifest = json.loads(fh.read())
    except (ValueError, UnicodeDecodeError):
        raise BackupError(f"{label}: {MANIFEST_NAME} is not valid JSON") from None
    problem = _manifest_problem(manifest)
    if problem:
        raise BackupError(f"{label}: {MANIFEST_NAME} {problem}")
    return manifest


def _manifest_problem(manifest: Any) -> str | None:
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        return "has an unknown format (made by another program, or a newer osmon)"
    schema = manifest.get("schema_version")
    if not isinstance(schema, int) or schema > collector.SCHEMA_VERSION:
        return (f"says schema version {schema!r}; this osmon reads up to "
                f"{collector.SCHEMA_VERSION}: upgrade osmon before restoring it")
    files = manifest.get("files")
    if not isinstance(files, list):
        return "has no file list"
    paths = set()
    for entry in files:
        if (not isinstance(entry, dict) or not isinstance(entry.get("path"), str)
                or not isinstance(entry.get("size"), int) or entry["size"] < 0
                or not isinstance(entry.get("sha256"), str)
                or not _SHA256.fullmatch(entry["sha256"])):
            return f"has a malformed file entry: {str(entry)[:200]}"
        if _path_problem(entry["path"]) or entry["path"] == ".lock":
            return f"lists an unsafe path: {entry['path']!r}"
        if entry["path"] in paths:
            return f"lists {entry['path']!r} twice"
        paths.add(entry["path"])
    return None


def _path_problem(rel: str) -> str | None:
    """Why ``rel`` is not a plain relative path below the extraction directory, or None."""
    if not rel or "\x00" in rel or "\\" in rel:
        return "empty, or holds a NUL or a backslash"
    if rel.startswith("/"):
        return "an absolute path"
    parts = rel.split("/")
    if any(part in ("", ".", "..") for part in parts) or posixpath.normpath(rel) != rel:
        return "not a plain relative path (holds '..', '.' or an empty component)"
    return None


_REGULAR = (tarfile.REGTYPE, tarfile.AREGTYPE)
_KINDS = {tarfile.SYMTYPE: "a symbolic link", tarfile.LNKTYPE: "a hard link",
          tarfile.CHRTYPE: "a character device", tarfile.BLKTYPE: "a block device",
          tarfile.FIFOTYPE: "a FIFO", tarfile.DIRTYPE: "a directory"}


def _check_member(member: tarfile.TarInfo, expected: dict[str, dict[str, Any]], seen: set[str],
                  staging: Path, label: str) -> dict[str, Any]:
    """Refuse anything but a regular file at a plain relative path that the manifest lists
    with this very size; return its manifest entry."""
    name = member.name
    if member.type not in _REGULAR:
        kind = _KINDS.get(member.type, f"of tar type {member.type!r}")
        raise BackupError(f"{label}: member {name!r} is {kind}; only regular files are allowed")
    problem = _path_problem(name)
    if problem or not name.startswith(DATA_PREFIX):
        raise BackupError(f"{label}: member {name!r} is unsafe ({problem or 'outside data/'})")
    if name not in expected:
        raise BackupError(f"{label}: member {name!r} is not listed in the manifest")
    if name in seen:
        raise BackupError(f"{label}: member {name!r} appears twice")
    entry = expected[name]
    if member.size != entry["size"]:
        raise BackupError(f"{label}: {entry['path']} is {member.size} bytes, the manifest says "
                          f"{entry['size']}")
    data_filter = getattr(tarfile, "data_filter", None)  # Python 3.12+, 3.11.4+, 3.10.12+, 3.9.17+
    if data_filter is not None:
        try:
            data_filter(member, str(staging))
        except tarfile.FilterError as exc:
            raise BackupError(f"{label}: member {name!r} refused ({exc})") from None
    return entry


def _extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, entry: dict[str, Any],
                    staging: Path, label: str) -> None:
    """Copy one checked member into ``staging`` ourselves (never ``tar.extract``: no links, no
    owners, no modes from the archive), hashing it on the way."""
    dest = staging / entry["path"]
    dest.parent.mkdir(parents=True, exist_ok=True)
    src = tar.extractfile(member)
    assert src is not None
    digest = hashlib.sha256()
    # O_EXCL | O_NOFOLLOW: never write through anything that already exists there.
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        while True:
            chunk = src.read(_CHUNK)
            if not chunk:
                break
            digest.update(chunk)
            out.write(chunk)
        os.fchmod(out.fileno(), (stat.S_IMODE(member.mode) & 0o755) | 0o600)
    os.utime(dest, (member.mtime, member.mtime))
    if digest.hexdigest() != entry["sha256"]:
        raise BackupError(f"{label}: checksum mismatch for {entry['path']}: the archive is "
                          "corrupt")


def _swap(real: Path, staging: Path, now: datetime) -> Path:
    """Put ``staging`` in place of ``real`` by renames; return where the old data went."""
    stamp = now.astimezone(timezone.utc).strftime("%Y%m%d-%H%M%S")
    old = real.with_name(f"{real.name}.old-{stamp}")
    suffix = 0
    while old.exists():
        suffix += 1
        old = real.with_name(f"{real.name}.old-{stamp}-{suffix}")
    os.chmod(staging, stat.S_IMODE(real.stat().st_mode))
    try:
        os.rename(real, old)
    except OSError as exc:
        raise BackupError(f"cannot move {real} aside: {exc.strerror}; nothing was "
                          "restored") from None
    try:
        os.rename(staging, real)
    except OSError as exc:
        os.rename(old, real)
        raise BackupError(f"cannot move the restored data into {real}: {exc.strerror}; the data "
                          "was left as it was") from None
    fsync_dir(real.parent)
    return old


# -- helpers -----------------------------------------------------------------------------------
def _hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(_CHUNK)
            if not chunk:
                return digest.hexdigest(), size
            digest.update(chunk)
            size += len(chunk)


def _hosts_from_manifest(path: Path) -> int | None:
    """Host count from an archive's manifest: the first member, so only its start is read."""
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            first = tar.next()
            if (first is None or first.name != MANIFEST_NAME
                    or first.size > _MAX_MANIFEST_BYTES):
                return None
            fh = tar.extractfile(first)
            manifest = json.loads(fh.read()) if fh is not None else None
    except (OSError, tarfile.TarError, EOFError, zlib.error, ValueError):
        return None  # a damaged archive still lists; restore says what is wrong
    hosts = manifest.get("hosts") if isinstance(manifest, dict) else None
    return len(hosts) if isinstance(hosts, list) else None


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


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


