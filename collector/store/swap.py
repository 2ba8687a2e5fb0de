"""Putting a restored copy in place of the data directory, so that no crash can lose either.

Linux swaps two directories in one step (``renameat2`` with ``RENAME_EXCHANGE``, kernel 3.15,
ext4, xfs, btrfs, tmpfs...): before the call the old data is in place, after it the new; a
``kill -9`` or a power cut at any moment leaves one of the two whole, never a missing data
directory.  Where the kernel, the C library or the file system cannot (NFS, some FUSE), two
renames are used instead: the old data goes to ``.<name>.aside-<stamp>``, then the copy takes
its name.  A crash between them leaves no data directory at all; :func:`recover` (run by every
backup, restore and prune before it takes the lock) notices and puts the old data back.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import glob
import logging
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from collector.errors import BackupError, LockHeld
from collector.store.lock import wait_for_flock
from collector.store.statefile import fsync_dir

log = logging.getLogger(__name__)

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
#: errno values meaning "this system cannot exchange", as opposed to a real failure.
_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP}
#: errno values meaning the data directory cannot be renamed at all: it is a mount point.
_MOUNT_POINT = {errno.EBUSY, errno.EXDEV}


def aside_glob(real: Path) -> str:
    return f".{glob.escape(real.name)}.aside-*"


@functools.lru_cache(maxsize=1)
def _renameat2() -> Callable[..., int] | None:
    try:
        func = ctypes.CDLL(None, use_errno=True).renameat2  # glibc 2.28+, musl 1.2.3+
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                     ctypes.c_uint]
    func.restype = ctypes.c_int
    return func


def exchange(a: Path, b: Path) -> bool:
    """Swap the directories ``a`` and ``b`` atomically; False where this system cannot."""
    func = _renameat2()
    if func is None:
        return False
    if func(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in _UNSUPPORTED:
        return False
    raise OSError(err, os.strerror(err), str(a))


def swap_in(real: Path, staging: Path, stamp: str) -> Path:
    """Put ``staging`` in place of ``real``; return where the replaced data now is.

    On failure the data is left where it was and :class:`BackupError` is raised.
    """
    os.chmod(staging, stat.S_IMODE(real.stat().st_mode))
    try:
        swapped = exchange(real, staging)
    except OSError as exc:
        raise BackupError(_cannot_move(real, exc)) from None
    if swapped:
        fsync_dir(real.parent)
        return staging
    aside = real.with_name(f".{real.name}.aside-{stamp}")
    suffix = 0
    while os.path.lexists(aside):
        suffix += 1
        aside = real.with_name(f".{real.name}.aside-{stamp}-{suffix}")
    try:
        os.rename(real, aside)
    except OSError as exc:
        raise BackupError(_cannot_move(real, exc)) from None
    try:
        os.rename(staging, real)
    except OSError as exc:
        os.rename(aside, real)
        raise BackupError(f"cannot move the restored data into {real}: {exc.strerror}; the data "
                          "was left as it was") from None
    fsync_dir(real.parent)
    # Renamed to the staging pattern, which a later restore cleans up: the swap is complete.
    done = staging.with_name(staging.name + "-replaced")
    try:
        os.rename(aside, done)
    except OSError:
        return aside
    return done


@contextlib.contextmanager
def _locked(directory: Path, wait_s: float = 30) -> Iterator[None]:
    """Hold the lock file inside ``directory`` without creating anything (``DataLock`` would
    create the directory and the file).  The killed restore's lock moved with the data: taking
    it waits for a restore still in progress, whose directory is then back in place."""
    try:
        fd = os.open(directory / ".lock", os.O_RDWR)
    except FileNotFoundError:
        if not directory.is_dir():
            raise
        yield  # no lock file to wait on: nobody can be holding it
        return
    try:
        if not wait_for_flock(fd, wait_s, poll_s=0.1):
            raise LockHeld(f"{directory} is in use; not recovering it now")
        yield
    finally:
        os.close(fd)


def _cannot_move(real: Path, exc: OSError) -> str:
    hint = ""
    if exc.errno in _MOUNT_POINT:
        hint = (" (is it a mount point? restore replaces the data directory by a rename: "
                "point data_dir at a directory inside the mount)")
    return f"cannot move {real} aside: {exc.strerror}{hint}; nothing was restored"


def recover(data_dir: Path) -> str | None:
    """Undo a restore killed between its two renames; return what was done, or None.

    Only then is the data directory missing while ``.<name>.aside-*`` exists.  If the data
    directory exists beside an aside copy, something wrote a new one meanwhile: both are kept
    and a warning names them (the aside data is also in the restore's safety backup).
    """
    real = Path(data_dir).resolve()
    asides = sorted(real.parent.glob(aside_glob(real)))
    if not asides:
        return None
    if os.path.lexists(real):
        log.warning("%s holds data moved aside by an interrupted restore (also in the backup "
                    "made before that restore); it was left alone: remove it once you have "
                    "checked %s", asides[-1], real)
        return None
    newest = asides[-1]
    try:
        with _locked(newest):
            if os.path.lexists(real) or not newest.is_dir():
                return None
            os.rename(newest, real)
    except (FileNotFoundError, LockHeld):
        return None  # another process moved it, or is still busy with it
    fsync_dir(real.parent)
    message = (f"a restore was interrupted while swapping directories: the data it was "
               f"replacing was put back from {newest.name} into {real}")
    log.warning("%s", message)
    return message
