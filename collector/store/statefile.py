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


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o640, *,
                       durable: bool = True) -> None:
    """Replace ``path`` by ``data`` at once; ``durable``: on disk before returning (two
    fsyncs, milliseconds), else only as durable as the page cache (the rename alone)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(path.parent)


def atomic_write_json(path: Path, obj: Any, mode: int = 0o640) -> None:
    data = json.dumps(obj, ensure_ascii=False, indent=1, sort_keys=True, allow_nan=False)
    atomic_write_bytes(path, data.encode("utf-8") + b"\n", mode)


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
