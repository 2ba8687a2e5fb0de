"""A bounded, thread-safe, in-memory LRU cache of rendered charts.

Why in memory and keyed by data, not by time: a chart only changes when new data arrives or
its time window moves, both part of the key (see :mod:`collector.views.charts`), so an entry never
needs to expire; a reload of a page of charts costs a dictionary lookup per chart.  Bounded
so a dashboard open on many hosts and ranges cannot grow without limit; locked because
waitress serves requests from several threads.

Public API: ``ChartCache(max_entries=256)`` with ``get(key)``, ``put(key, value)``,
``len(cache)`` and ``clear()``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class ChartCache(Generic[V]):
    def __init__(self, max_entries: int = 256) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: Hashable, value: V) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
