"""The data directory's exclusive lock: one pass (or backup, restore, prune) at a time.

``flock`` is held by the open file, so the kernel releases it when the holder dies, even by
SIGKILL: a lock "left" by a killed pass is simply free, and the next pass takes it over
without any stale-pid guessing.  The holder writes its pid and start time into the file so a
refused caller can say who holds it since when.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from types import TracebackType

from collector.errors import DataDirError, LockHeld
from collector.store.space import write_failure


class DataLock:
    """``with DataLock(data_dir, "collect"):`` — raises :class:`LockHeld` when taken."""

    def __init__(self, data_dir: Path, purpose: str, wait_s: float = 0.0) -> None:
        self.path = Path(data_dir) / ".lock"
        self.purpose = purpose
        self.wait_s = wait_s
        self._fd: int | None = None

    def acquire(self) -> None:
        deadline = time.monotonic() + self.wait_s
        while True:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if time.monotonic() >= deadline:
                    raise LockHeld(self._held_message(self.holder())) from None
                time.sleep(0.1)
                continue
            if self._still_current(fd):
                break
            # A restore swapped the data directory while we waited: our file is the old
            # directory's lock, so holding it would let us run beside the new one's holder.
            os.close(fd)
        info = {"pid": os.getpid(), "purpose": self.purpose, "since": time.time()}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
        except OSError as exc:  # a full disk: said as such, not as a traceback
            os.close(fd)
            raise DataDirError(write_failure(self.path.parent, exc)) from None
        self._fd = fd

    def _open(self) -> int:
        """The lock file's descriptor; a data directory osmon cannot use is said plainly."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o640)
        except OSError as exc:
            raise DataDirError(f"cannot use the data directory {self.path.parent}: "
                               f"{exc.strerror or exc}") from None

    def _still_current(self, fd: int) -> bool:
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            return False
        held = os.fstat(fd)
        return (held.st_dev, held.st_ino) == (on_disk.st_dev, on_disk.st_ino)

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def holder(self) -> dict[str, object] | None:
        try:
            info = json.loads(self.path.read_bytes() or b"null")
        except (OSError, ValueError):
            return None
        return info if isinstance(info, dict) else None

    def _held_message(self, holder: dict[str, object] | None) -> str:
        if not holder:
            return f"another osmon process holds {self.path}; try again later"
        since = holder.get("since")
        when = (time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(since))
                if isinstance(since, (int, float)) else "an unknown time")
        return (f"another osmon {holder.get('purpose', 'process')} is running since {when} "
                f"(pid {holder.get('pid')}); {self.purpose} skipped")

    def __enter__(self) -> DataLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def wait_for_flock(fd: int, wait_s: float, poll_s: float = 0.05) -> bool:
    """Take an exclusive ``flock`` on ``fd``, waiting up to ``wait_s``; False if still held.

    For the small locks beside the data directory's own (the muting files, the swap's
    recovery): polled, since ``flock`` has no timeout of its own."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll_s)
