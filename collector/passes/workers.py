"""The threads a pass runs its hosts on.

Why: a thread started and ended for every host and pass was a tenth of what ``osmon run``
spends per host (creating it, waiting for it to start, its stack, its exit).  The long-running
``osmon run`` keeps its workers between passes instead (:class:`WorkerPool`); cron's single
pass (:func:`fresh_thread`) has nothing to keep them for.

Every worker is a daemon thread, so one stuck with a hung host cannot keep the process alive.
A worker whose host was abandoned at a deadline stays with it until that task ends (the job
refuses its writes from then on: :class:`collector.passes.one_host.HostJob`); the pass goes on
with other workers, and the pool starts new ones as needed.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Task = Callable[..., None]


def fresh_thread(name: str, task: Task, *args: Any) -> None:
    """Run ``task(*args)`` on a new daemon thread called ``name``."""
    threading.Thread(target=task, args=args, daemon=True, name=name).start()


class WorkerPool:
    """Daemon threads kept between passes; at most ``max_idle`` wait for work, so a pass
    that needed many (a burst of hung hosts) does not leave them all behind."""

    def __init__(self, max_idle: int) -> None:
        self.max_idle = max_idle
        self._idle: list[queue.SimpleQueue[tuple[str, Task, tuple[Any, ...]]]] = []
        self._lock = threading.Lock()

    def run(self, name: str, task: Task, *args: Any) -> None:
        """Run ``task(*args)`` on an idle worker, or on a new one."""
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is None:
            inbox = queue.SimpleQueue()
            threading.Thread(target=self._serve, args=(inbox,), daemon=True,
                             name="osmon-worker").start()
        inbox.put((name, task, args))

    def idle(self) -> int:
        with self._lock:
            return len(self._idle)

    def _serve(self, inbox: queue.SimpleQueue[tuple[str, Task, tuple[Any, ...]]]) -> None:
        me = threading.current_thread()
        while True:
            name, task, args = inbox.get()
            me.name = name  # a stack dump names the host it works for
            try:
                task(*args)
            except BaseException:  # noqa: BLE001 - the task's own bug; the worker goes on
                log.exception("worker %s failed", name)
            me.name = "osmon-worker"
            del task, args  # not kept alive by an idle worker until its next task
            with self._lock:
                if len(self._idle) >= self.max_idle:
                    return
                self._idle.append(inbox)
