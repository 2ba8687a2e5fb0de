"""Small JSON state files (alert state, CERT-FR state, outbox), written atomically.

A crash or a full disk must never leave half a state file: we write a temporary file in the
same directory, fsync it, and rename it over the old one (the way munin saves its state).  A
``version`` field lets a newer osmon recognise, and migrate or rebuild, an older file.  A file
that is disposable (rebuilt when lost, like a disk trend) may skip the fsyncs
(``durable=False``): still never half a file for a reader, but a crash of the machine may
lose the last version, or leave an empty one, which its reader rebuilds.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


#: What tells a file changed: inode (an editor's rename, a restore), size, modification time.
FileIdentity = tuple[int, int, int]


def file_identity(path: Path | str) -> FileIdentity | None:
    """``path``'s :data:`FileIdentity`, None when it cannot be stat'ed (missing): what the
    caches of ``osmon run`` compare before trusting what they read from a file earlier."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_ino, info.st_size, info.st_mtime_ns)


class StateFileUnusable(Exception):
    """A state file that exists but must not be rebuilt: it cannot be read (no permission, an
    I/O error: maybe only for now) or a newer osmon wrote it.  Setting it aside would lose
    what it holds, and writing would overwrite the newer file: the caller leaves it alone."""

    def __init__(self, message: str, newer: bool) -> None:
        super().__init__(message)
        self.newer = newer


def read_for_update(path: Path, version: int) -> tuple[Any | None, str | None]:
    """What a writer reads before it changes or rebuilds a versioned file: ``(value, None)``;
    ``(None, None)`` for a missing file; ``(None, problem)`` for a corrupt one (not JSON, not
    an object of this version, an older one), which the caller may set aside and rebuild.
    Raises :class:`StateFileUnusable` for a file that cannot be read or is newer."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        raise StateFileUnusable(f"{path}: cannot read it ({exc.strerror or exc})",
                                newer=False) from None
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"{path}: corrupt ({exc}); it will be rebuilt"
    found = value.get("version") if isinstance(value, dict) else None
    if isinstance(found, int) and not isinstance(found, bool) and found > version:
        raise StateFileUnusable(f"{path} was written by a newer osmon (state version {found}, "
                                f"this one reads {version})", newer=True)
    if found != version:
        return None, f"{path}: unexpected format or version; it will be rebuilt"
    return value, None


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o640, *,
                       durable: bool = True, dir_owner: bool = False) -> None:
    """Replace ``path`` by ``data`` at once; ``durable``: on disk before returning (two
    fsyncs, milliseconds), else only as durable as the page cache (the rename alone).
    ``dir_owner``: when run as root, the file gets its directory's owner (files that
    ``sudo osmon ...`` writes for the collector's own user)."""
    make_dirs(path.parent, dir_owner)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        if dir_owner:
            give_to_dir_owner(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(path.parent)


def atomic_write_json(path: Path, obj: Any, mode: int = 0o640, dir_owner: bool = False, *,
                      durable: bool = True) -> None:
    """``obj`` as compact JSON: the alert state is written every pass, and ``indent`` would
    send the encoding through the json module's Python encoder, five times slower (``jq .``
    shows such a file indented).  Keys sorted: a diff of two copies says what changed."""
    data = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True,
                      allow_nan=False)
    atomic_write_bytes(path, data.encode("utf-8") + b"\n", mode, durable=durable,
                       dir_owner=dir_owner)


def give_to_dir_owner(path: Path) -> None:
    """Run as root, give ``path`` the owner and group of its directory: ``sudo osmon silence
    add`` must not leave a root-owned file that the collector, running as its own user,
    cannot read or replace.  Not root: nothing (nobody else may give files away)."""
    if os.geteuid() != 0:
        return
    try:
        folder, own = os.stat(path.parent), os.stat(path)
        if (own.st_uid, own.st_gid) != (folder.st_uid, folder.st_gid):
            os.chown(path, folder.st_uid, folder.st_gid)
    except OSError as exc:
        log.warning("could not give %s to the owner of its directory: %s", path, exc)


def make_dirs(folder: Path, dir_owner: bool = False) -> None:
    """``mkdir -p``; with ``dir_owner``, each folder made gets its parent's owner (as root)."""
    missing = []
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    folder.mkdir(parents=True, exist_ok=True)
    if dir_owner:
        for made in reversed(missing):
            give_to_dir_owner(made)


def read_json(path: Path, version: int | None = None) -> tuple[Any | None, str | None]:
    """Return ``(value, problem)``: a missing file is ``(None, None)``; a corrupt or
    wrong-version file is ``(None, reason)`` so the caller can report it and rebuild."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"{path}: cannot read: {exc.strerror}"
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"{path}: corrupt ({exc}); it will be rebuilt"
    if version is not None and (not isinstance(value, dict) or value.get("version") != version):
        return None, f"{path}: unexpected format or version; it will be rebuilt"
    return value, None


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable: without it a crash may forget the new name."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
