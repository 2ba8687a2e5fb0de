"""An absolute deadline for a network exchange, whatever the peer does.

Socket timeouts bound each ``recv``, not an exchange: a server that sends one byte a second
(an SMTP greeting, a TLS record, HTTP headers) satisfies every ``recv`` and holds smtplib,
``ssl`` or ``http.client`` for ever, and with them the pass (the next cron pass is skipped
with exit 3 all that time).  A :class:`Watchdog` keeps a duplicate of each socket it is
shown and, at the deadline, shuts the connection down from a timer thread: whatever the
exchange is blocked in (connect, a reply line, the TLS handshake, a header, the body) then
fails at once, and :attr:`Watchdog.fired` tells the caller why, so it can say "gave up at
the pass deadline" rather than blame the server for closing.

``shutdown`` acts on the connection, not the descriptor: shutting down the duplicate stops
the original too, even after ``ssl`` has wrapped (and detached) it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType


class Watchdog:
    """``with Watchdog(deadline) as dog:`` then ``dog.watch(sock)`` for each connection."""

    def __init__(self, deadline: float, label: str = "the pass deadline") -> None:
        #: A ``time.monotonic()`` value, and what it is, for messages ("the pass deadline").
        self.deadline, self.label = deadline, label
        self.fired = False
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self._timer.daemon = True

    def watch(self, sock: socket.socket) -> socket.socket:
        """Shut ``sock`` down at the deadline (at once if it has passed); returns ``sock``."""
        twin = sock.dup()
        with self._lock:
            self._socks.append(twin)
            if self.fired:
                _shut(twin)
        return sock

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def ended(self, exc: BaseException) -> bool:
        """Whether ``exc`` is the deadline's doing: the watchdog fired, or a socket timeout
        (set to what was left) ran out with the deadline."""
        if self.fired:
            return True
        timeouts = (socket.timeout, TimeoutError)
        timed_out = isinstance(exc, timeouts) or isinstance(exc.__context__, timeouts)
        return timed_out and self.left() < 0.5

    def _fire(self) -> None:
        with self._lock:  # held while shutting down: __exit__ cannot close a twin meanwhile
            self.fired = True
            for twin in self._socks:
                _shut(twin)

    def __enter__(self) -> Watchdog:
        self._timer.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._timer.cancel()
        with self._lock:
            for twin in self._socks:
                twin.close()
            self._socks = []


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
