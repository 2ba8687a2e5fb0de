"""Rollup records a chart needs but the files lack, built from raw samples once, in bounded
memory, and never written (readers never write; passes write rollup files).

Rollup files are written by the passes (:func:`collector.store.rollup.on_pass`), a few days
per pass when a host's history arrives without them: after an upgrade, a restored backup,
passes too short to catch up.  Until then a 30-day chart read every raw sample of the range
at once (about 1 GB and 4 s for a host of 4 KiB samples), in every request, for every chart
of the page.  Here the missing records are built a day at a time, each line reduced to its
numbers as it is read (:func:`collector.store.rollup.day_records`), and kept per host,
resolution and day while that day's files are unchanged: the cpu chart builds a host's
month, the memory, disk and net charts of the same page reuse it.  Requests for one host
wait for each other rather than build the same days twice (one lock per host).

Bounded: at most ``max_records`` records are kept (the least recently used days go first);
``max_records=0`` keeps nothing and still builds in bounded memory (``osmon charts`` without
a cache, tests).
"""

from __future__ import annotations

import gzip
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from datetime import datetime, time, timezone
from pathlib import Path
from typing import Any

from collector.metrics import series
from collector.store import rollup
from collector.store.samples import Store, day_lines

DAY_S = 86400
#: About 5 KiB each in memory: 8,000 records are a month of hourly buckets for 11 hosts.
DEFAULT_MAX_RECORDS = 8000

_Key = tuple[str, str, str, float, tuple[tuple[str, int, int, int], ...]]


class BuiltRollups:
    def __init__(self, max_records: int = DEFAULT_MAX_RECORDS) -> None:
        self.max_records = max_records
        self._days: OrderedDict[_Key, list[dict[str, Any]]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self._host_locks: dict[tuple[str, str], threading.Lock] = {}
        #: Days built (not found kept): what a test or a benchmark can count.
        self.builds = 0

    def records(self, store: Store, host: str, res: str, start: float, stop: float
                ) -> list[dict[str, Any]]:
        """Records of the ``res`` buckets starting in ``[start, stop)``, oldest first, built
        from ``host``'s raw day files (``stop`` must not be past the open bucket)."""
        wanted: list[dict[str, Any]] = []
        with self._host_lock(str(store.data_dir), host):
            for day_start, paths in _days(store, host, start, stop):
                key = (str(store.data_dir), host, res, day_start, _identity(paths))
                built = self._get(key)
                if built is None:
                    built = rollup.day_records(_lines(paths), res, day_start)
                    self.builds += 1
                    self._put(key, built)
                wanted.extend(r for r in built if start <= _time(r) < stop)
        return wanted

    def _host_lock(self, data_dir: str, host: str) -> threading.Lock:
        with self._lock:
            return self._host_locks.setdefault((data_dir, host), threading.Lock())

    def _get(self, key: _Key) -> list[dict[str, Any]] | None:
        with self._lock:
            found = self._days.get(key)
            if found is not None:
                self._days.move_to_end(key)
            return found

    def _put(self, key: _Key, records: list[dict[str, Any]]) -> None:
        if len(records) > self.max_records:
            return
        with self._lock:
            stale = [k for k in self._days if k[:4] == key[:4]]  # the day's older versions
            for old in stale:
                self._size -= len(self._days.pop(old))
            self._days[key] = records
            self._size += len(records)
            while self._size > self.max_records:
                _key, dropped = self._days.popitem(last=False)
                self._size -= len(dropped)


def _days(store: Store, host: str, start: float, stop: float
          ) -> Iterator[tuple[float, list[Path]]]:
    by_day: dict[float, list[Path]] = {}
    for day_file in store.day_files(host):
        day_start = datetime.combine(day_file.day, time.min, timezone.utc).timestamp()
        if day_start + DAY_S > start and day_start < stop:
            by_day.setdefault(day_start, []).append(day_file.path)
    yield from sorted(by_day.items())


def _identity(paths: list[Path]) -> tuple[tuple[str, int, int, int], ...]:
    found = []
    for path in paths:
        try:
            st = os.stat(path)
        except FileNotFoundError:  # pruned meanwhile: built from what is left
            continue
        found.append((path.name, st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(found)


def _lines(paths: list[Path]) -> Iterator[bytes]:
    """A day's lines, one at a time (both files of a day that has two: each line once)."""
    if len(paths) > 1:
        yield from day_lines(paths)
        return
    path = paths[0]
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as packed:
                yield from packed
        else:
            with open(path, "rb") as plain:
                yield from plain
    except FileNotFoundError:
        return
    except (EOFError, OSError):  # a damaged .gz: what was read is kept
        return


def _time(record: dict[str, Any]) -> float:
    t = series.ts_seconds(record.get("t"))
    return t if t is not None else -1.0
