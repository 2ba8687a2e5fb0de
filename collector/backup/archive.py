"""The backup archive: write one from the data directory, and read one back trusting nothing.

An archive is a gzipped tar holding ``MANIFEST.json`` first (format, osmon and schema versions,
creation time, hosts, every file with its size and sha256), then every file of the data
directory under ``data/``.  The manifest comes first so a reader knows what to expect before it
writes a single byte, and so ``osmon backup list`` reads only the start of each archive.

Reading (:func:`read_archive`) refuses anything the manifest does not describe exactly, and
anything but regular files at plain relative paths: the checks are made by hand, and again by
``tarfile``'s data filter where this Python has it.  Members are copied out by us, never by
``tar.extract``: no links, owners or devices can come from an archive.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import os
import posixpath
import re
import stat
import tarfile
import time
import zlib
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import collector
from collector.errors import BackupError

log = logging.getLogger(__name__)

MANIFEST_NAME = "MANIFEST.json"
MANIFEST_FORMAT = 1
#: Members holding data are stored below this prefix, so no data file can clash with the manifest.
DATA_PREFIX = "data/"
#: A manifest is JSON held in memory; real ones are a few MiB at most (one entry per day file).
_MAX_MANIFEST_BYTES = 64 * 1024 * 1024
_CHUNK = 1024 * 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
#: What a damaged archive raises from ``tarfile`` and ``gzip``.
CORRUPT = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile)


class FileChanged(Exception):
    """A data file changed between the manifest and the archive (a writer that takes no lock,
    such as ``osmon set-password``, replaced it): the caller starts the archive again."""

    def __init__(self, rel: str) -> None:
        super().__init__(rel)
        self.rel = rel


#: ``web/auth.py``'s SECRET_FILE under ``state/`` (collector never imports web).
_NEVER_ARCHIVED = (".lock", "state/web-secret")


# -- writing -----------------------------------------------------------------------------------
def data_files(data_dir: Path) -> list[str]:
    """Relative POSIX paths of the regular files to back up, sorted.

    Left out: the lock file, temporary files (``*.tmp``: an atomic write or a compression in
    progress), anything that is not a regular file (a symlink could point anywhere), and the
    dashboard's session signing key: whoever reads an archive copied off the server could sign
    an admin cookie with it, and a missing key is simply made anew (everyone logs in again).
    """
    found = []
    for root, dirs, names in os.walk(data_dir):
        dirs.sort()
        rel_root = Path(root).relative_to(data_dir).as_posix()
        for name in sorted(names):
            rel = name if rel_root == "." else f"{rel_root}/{name}"
            if rel in _NEVER_ARCHIVED or name.endswith(".tmp"):
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


def build_manifest(data_dir: Path, files: list[str], now: datetime) -> dict[str, Any]:
    entries = []
    for rel in files:
        try:
            digest, size = _hash_file(data_dir / rel)
        except FileNotFoundError:  # gone since it was listed: a temporary file of someone else
            continue
        entries.append({"path": rel, "size": size, "sha256": digest})
    hosts = sorted({e["path"].split("/")[1] for e in entries
                    if e["path"].startswith("hosts/") and e["path"].count("/") >= 2})
    return {"format": MANIFEST_FORMAT, "osmon_version": collector.__version__,
            "schema_version": collector.SCHEMA_VERSION,
            "created": now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "hosts": hosts, "files": entries}


def write_archive(fh: IO[bytes], data_dir: Path, manifest: dict[str, Any]) -> None:
    """Write the archive of ``manifest`` to ``fh``; raise :class:`FileChanged` if a file no
    longer matches its entry (the archive would disagree with its own manifest)."""
    mtime = int(time.time())
    body = json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8") + b"\n"
    # Level 6: most of level 9's ratio on JSON for a fraction of its CPU.
    with tarfile.open(fileobj=fh, mode="w:gz", compresslevel=6) as tar:
        tar.addfile(_member(MANIFEST_NAME, len(body), 0o600, mtime), io.BytesIO(body))
        for entry in manifest["files"]:
            try:
                src = open(data_dir / entry["path"], "rb")  # noqa: SIM115 (closed below)
            except FileNotFoundError:
                raise FileChanged(entry["path"]) from None
            with src:
                st = os.fstat(src.fileno())
                if st.st_size < entry["size"]:  # replaced by a shorter file
                    raise FileChanged(entry["path"])
                reader = _HashingReader(src)
                # Exactly ``size`` bytes are copied: the manifest's view of the file.
                tar.addfile(_member(DATA_PREFIX + entry["path"], entry["size"],
                                    stat.S_IMODE(st.st_mode), int(st.st_mtime)), reader)
            if reader.hexdigest() != entry["sha256"]:
                raise FileChanged(entry["path"])


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


# -- reading -----------------------------------------------------------------------------------
def read_archive(archive: Path, staging: Path | None) -> dict[str, Any]:
    """Verify every byte of ``archive`` against its manifest; return the manifest.

    With ``staging`` (an empty directory) the files are also extracted there; without it the
    archive is only checked (the safety copy of a restore is read back this way).  Raises
    :class:`BackupError` ending in "nothing was restored"; the caller removes ``staging``.
    """
    label = archive.name
    try:
        manifest = _read_all(archive, staging, label)
    except BackupError as exc:
        raise BackupError(f"{exc}; nothing was restored") from None
    except CORRUPT as exc:
        raise BackupError(f"{label} is corrupt or truncated ({exc}); nothing was "
                          "restored") from None
    except OSError as exc:
        raise BackupError(f"cannot restore {label}: {exc.strerror or exc}; nothing was "
                          "restored") from None
    return manifest


def _read_all(archive: Path, staging: Path | None, label: str) -> dict[str, Any]:
    with tarfile.open(archive, mode="r:gz") as tar:
        manifest = _read_manifest(tar, label)
        expected = {DATA_PREFIX + f["path"]: f for f in manifest["files"]}
        seen: set[str] = set()
        member = tar.next()
        while member is not None:
            entry = _check_member(member, expected, seen, staging, label)
            _copy_member(tar, member, entry, staging, label)
            seen.add(member.name)
            member = tar.next()
    missing = sorted(set(expected) - seen)
    if missing:
        raise BackupError(f"{label} is incomplete: {len(missing)} file(s) of its manifest are "
                          f"missing, e.g. {missing[0][len(DATA_PREFIX):]}")
    return manifest


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
        if path_problem(entry["path"]) or entry["path"] == ".lock":
            return f"lists an unsafe path: {entry['path']!r}"
        if entry["path"] in paths:
            return f"lists {entry['path']!r} twice"
        paths.add(entry["path"])
    return None


def path_problem(rel: str) -> str | None:
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
                  staging: Path | None, label: str) -> dict[str, Any]:
    """Refuse anything but a regular file at a plain relative path that the manifest lists
    with this very size; return its manifest entry."""
    name = member.name
    if member.type not in _REGULAR:
        kind = _KINDS.get(member.type, f"of tar type {member.type!r}")
        raise BackupError(f"{label}: member {name!r} is {kind}; only regular files are allowed")
    problem = path_problem(name)
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
            data_filter(member, str(staging or "/nonexistent/osmon-check"))
        except tarfile.FilterError as exc:
            raise BackupError(f"{label}: member {name!r} refused ({exc})") from None
    return entry


def _copy_member(tar: tarfile.TarFile, member: tarfile.TarInfo, entry: dict[str, Any],
                 staging: Path | None, label: str) -> None:
    """Hash one checked member and, with ``staging``, write it there ourselves: no links, no
    owners, no modes from the archive beyond the permission bits."""
    src = tar.extractfile(member)
    assert src is not None
    digest = hashlib.sha256()
    out: IO[bytes] | None = None
    dest = None
    if staging is not None:
        dest = staging / entry["path"]
        dest.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL | O_NOFOLLOW: never write through anything that already exists there.
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        out = os.fdopen(fd, "wb")
    try:
        while True:
            chunk = src.read(_CHUNK)
            if not chunk:
                break
            digest.update(chunk)
            if out is not None:
                out.write(chunk)
        if out is not None:
            os.fchmod(out.fileno(), (stat.S_IMODE(member.mode) & 0o755) | 0o600)
    finally:
        if out is not None:
            out.close()
    if dest is not None:
        os.utime(dest, (member.mtime, member.mtime))
    if digest.hexdigest() != entry["sha256"]:
        raise BackupError(f"{label}: checksum mismatch for {entry['path']}: the archive is "
                          "corrupt")


def manifest_hosts(path: Path) -> int | None:
    """Host count from an archive's manifest: the first member, so only its start is read."""
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            first = tar.next()
            if (first is None or first.name != MANIFEST_NAME
                    or first.size > _MAX_MANIFEST_BYTES):
                return None
            fh = tar.extractfile(first)
            manifest = json.loads(fh.read()) if fh is not None else None
    except (OSError, ValueError, *CORRUPT):
        return None  # a damaged archive still lists; restore says what is wrong
    hosts = manifest.get("hosts") if isinstance(manifest, dict) else None
    return len(hosts) if isinstance(hosts, list) else None
