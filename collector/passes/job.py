"""One host being collected by a pass, as the coordinator sees it (passes.collect)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from collector.config import Host
from collector.transport import ssh


class Abandoned(Exception):
    """The coordinator gave up on this host: its worker must not write anything any more."""


class Job:
    """One host being collected; the coordinator may abandon it, closing its connection.

    Once abandoned, a job's worker may still run for a while (the local host cannot be
    interrupted, a remote one may be between two steps), but the pass may already have
    released the data lock, and a backup or restore may hold it.  So every write a worker
    makes goes through :meth:`writing`, which refuses once the job is abandoned; and
    :meth:`abandon` waits for a write in progress, so none straddles the lock's release.
    """

    def __init__(self, host: Host, started: float) -> None:
        self.host = host
        self.started = started
        self._session: ssh.Session | None = None
        self._abandoned = False
        self._lock = threading.Lock()

    @property
    def step(self) -> str:
        if self._session is not None:
            return self._session.step
        return "local collection" if self.host.local else "start"

    def attach(self, session: ssh.Session) -> None:
        with self._lock:
            self._session = session
            abandoned = self._abandoned
        if abandoned:
            session.abort()

    def abandon(self) -> str:
        """Stop waiting for this host; return the step it was stuck in, for the message."""
        step = self.step
        with self._lock:  # waits for a write in progress (see writing())
            self._abandoned = True
            session = self._session
        if session is not None:
            session.abort()
        return step

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """``with job.writing():`` around a worker's write; raises :class:`Abandoned` once
        the coordinator has given up on the host."""
        with self._lock:
            if self._abandoned:
                raise Abandoned(self.host.name)
            yield
