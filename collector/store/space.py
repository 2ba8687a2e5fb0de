"""How full the data directory is, said plainly when a write fails for lack of space.

A full disk is the commonest reason a monitor stops recording, and ``[Errno 28] No space
left on device`` in a traceback does not say which disk or how full.  Every store writer that
reports a failed write goes through :func:`write_failure`, so the admin reads the data
directory's path and its free space, and the CLI can tell "full" from "not writable".
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

#: The errors that mean "no room": a full file system, or the account's quota spent.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in NO_SPACE


def free_bytes(path: Path) -> int | None:
    """Bytes an unprivileged writer may still use on ``path``'s file system (None: unknown)."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def write_failure(data_dir: Path, exc: OSError) -> str:
    """One sentence for a write under ``data_dir`` that failed with ``exc``."""
    if is_full(exc):
        free = free_bytes(data_dir)
        room = "free space unknown" if free is None else f"{format_size(free)} free"
        return f"the data directory {data_dir} is full ({room})"
    return f"cannot write in the data directory {data_dir}: {exc.strerror or exc}"


def format_size(size: int) -> str:
    """Bytes for people: ``512 B``, ``1.5 KiB``, ``12.0 MiB`` (free space, backups, prune)."""
    value, unit = float(size), "B"
    for bigger in ("KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
