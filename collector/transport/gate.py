"""How many SSH handshakes are in flight at once (``[settings] max_handshakes``).

sshd refuses new connections at random once ``MaxStartups`` unauthenticated ones are open
(``10:30:100`` by default: beyond 10, 30 % are dropped, then more up to 100).  Thirty-two hosts
that are one sshd (containers behind one address, a jump host) or a restart of ``osmon run``
against a thousand hosts would otherwise open them all at once: a slot is taken from the TCP
connect to the end of authentication, when sshd counts the connection as started.

A slot is held for at most :data:`HOLD_S`: a host that is slow to answer (or silent until its
timeout) then stops counting, so ten dead hosts cannot hold up a whole pass; the limit is
about spreading the load, the per-step timeouts about slow hosts.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from collector.transport.failures import TIMEOUT, SshFailure

#: The longest a handshake counts against the limit.
HOLD_S = 2.0


class HandshakeGate:
    """At most ``limit`` handshakes started less than ``hold_s`` ago are in flight."""

    def __init__(self, limit: int, hold_s: float = HOLD_S) -> None:
        self.limit, self.hold_s = limit, hold_s
        self._started: dict[int, float] = {}  # token -> time.monotonic() when it began
        self._next_token = 0
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def slot(self, deadline: float) -> Iterator[None]:
        """``with gate.slot(deadline):`` around one connection's handshake and login."""
        token = self._acquire(deadline)
        try:
            yield
        finally:
            with self._cond:
                self._started.pop(token, None)
                self._cond.notify()

    def in_flight(self) -> int:
        with self._cond:
            return self._count(time.monotonic())

    def _count(self, now: float) -> int:
        return sum(1 for began in self._started.values() if now - began < self.hold_s)

    def _acquire(self, deadline: float) -> int:
        with self._cond:
            while True:
                now = time.monotonic()
                if self._count(now) < self.limit:
                    self._next_token += 1
                    self._started[self._next_token] = now
                    return self._next_token
                if now >= deadline:
                    raise SshFailure(TIMEOUT, f"no free handshake slot in time ({self.limit} "
                                              "handshakes in flight: max_handshakes)")
                oldest = min(self._started.values())
                self._cond.wait(max(0.001, min(deadline, oldest + self.hold_s) - now))
