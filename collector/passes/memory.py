"""What ``osmon run`` keeps in memory from one pass to the next instead of reading back what it
wrote itself (docs/architecture.md, "Resident sessions"): each host's last stored sample (for
its rates and "last seen") and its disk trend (for the forecasts).

Reading them back cost every host a file read and a JSON parse a pass, more than a tenth of
the collector's whole share at a 10 s interval.  What is kept is exactly what the files hold:
only the pass's coordinator writes them, and it updates the memory with them (a sample that
could not be stored is not kept, a trend that could not be written is forgotten); another
data directory (a restore swaps it in: another inode) forgets everything.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Collection
from pathlib import Path
from typing import Any

#: :meth:`PassMemory.trend` of a host whose trend file was not read yet.
UNKNOWN = object()


class PassMemory:
    """The kept samples and disk trends of one ``osmon run``; workers read, the coordinator
    writes (a lock makes both safe)."""

    def __init__(self) -> None:
        self._samples: dict[str, dict[str, Any]] = {}
        self._trends: dict[str, Any] = {}
        self._data_dir: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def begin_pass(self, data_dir: Path, hosts: Collection[str]) -> None:
        """Before a pass: drop the hosts gone from the inventory, and everything when the data
        directory is another one than last pass's."""
        try:
            stat = os.stat(data_dir)
            identity: tuple[int, int] | None = (stat.st_dev, stat.st_ino)
        except OSError:
            identity = None
        with self._lock:
            if identity is None or identity != self._data_dir:
                self._samples, self._trends = {}, {}
            else:
                self._samples = {h: s for h, s in self._samples.items() if h in hosts}
                self._trends = {h: t for h, t in self._trends.items() if h in hosts}
            self._data_dir = identity

    def sample(self, host: str) -> dict[str, Any] | None:
        """The host's newest stored line (None: not kept, read it from the store)."""
        with self._lock:
            return self._samples.get(host)

    def keep_sample(self, host: str, sample: dict[str, Any]) -> None:
        with self._lock:
            self._samples[host] = sample

    def trend(self, host: str) -> Any:
        """The host's disk trend as its file holds it (None: no file), or :data:`UNKNOWN`."""
        with self._lock:
            return self._trends.get(host, UNKNOWN)

    def keep_trend(self, host: str, state: Any) -> None:
        """``state`` is what the host's trend file holds now (read, or just written)."""
        with self._lock:
            self._trends[host] = state

    def forget_trend(self, host: str) -> None:
        """Writing the host's trend failed: read the file again next pass."""
        with self._lock:
            self._trends.pop(host, None)
