"""A real, small tmpfs for tests of a full or nearly full data directory.

Why a real file system and not a patched ``os.write``: what matters is what the kernel does
when space runs out (a short write, then ``ENOSPC``; room left in a file's last page), and
only a real one does exactly that.  Mounting needs root, which the suite has in CI (see
``tests/sshd.py``); without it the fixture fails with a message, it never skips.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

PAGE = 4096


@contextlib.contextmanager
def small_tmpfs(path: Path, size_kib: int) -> Iterator[Path]:
    """``path`` (created) with a tmpfs of ``size_kib`` KiB mounted on it, unmounted after."""
    if os.geteuid() != 0:
        raise RuntimeError("the full-disk tests mount a tmpfs and must run as root")
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0755", "tmpfs",
                    str(path)], check=True, capture_output=True, timeout=30)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


def fill(directory: Path, leave_bytes: int = 0, name: str = "filler") -> Path:
    """Write a file in ``directory`` until at most ``leave_bytes`` are free; return it."""
    filler = directory / name
    with open(filler, "ab") as fh:
        while True:
            free = free_bytes(directory)
            if free <= leave_bytes:
                break
            try:
                fh.write(b"\0" * min(free - leave_bytes, 1 << 20))
                fh.flush()
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
    return filler


def free_bytes(directory: Path) -> int:
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize
