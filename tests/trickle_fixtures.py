"""A real TCP server that answers one byte at a time, for ever: the peer that socket timeouts
cannot catch (every ``recv`` gets its byte in time), as a hostile or broken SMTP server, TLS
endpoint or web server would.

``TrickleServer(script, trickle)``: each connection first plays ``script`` (a list of
``(expect, send)``: wait for a line starting with ``expect`` (``b""``: for any bytes,
``None``: for nothing), then send ``send`` at once), then sends ``trickle`` over and over,
one byte every ``interval`` seconds, until the client goes away.  ``closed_after`` says how
long each connection lived once the trickle began, as the server saw it, so a test can check
the client really let go rather than only stopped waiting.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from types import TracebackType

Script = list[tuple[bytes | None, bytes]]

#: An SMTP greeting that never ends: continuation lines ("220-") are not a complete reply.
SMTP_GREETING = b"220-osmon.test trickling\r\n"
#: The header of a TLS handshake record of 16 KiB: a TLS client waits for all of its body.
TLS_RECORD = b"\x16\x03\x03\x40\x00"
#: HTTP headers that never end.
HTTP_HEADERS = b"X-Trickle: 1\r\n"


class TrickleServer:
    def __init__(self, script: Script, trickle: bytes, *, prefix: bytes = b"",
                 interval: float = 0.1) -> None:
        self.script, self.trickle, self.prefix, self.interval = script, trickle, prefix, interval
        self.closed_after: list[float] = []
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = int(self._listener.getsockname()[1])
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> TrickleServer:
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for thread in self._threads:
            thread.join(10)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _addr = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.sendall(self.prefix)
                pending = b""
                for expect, send in self.script:
                    # b"": any bytes (a TLS ClientHello); else a line starting with expect.
                    while expect is not None and (b"\n" not in pending if expect
                                                  else not pending):
                        ready, _, _ = select.select([conn], [], [], 0.1)
                        if self._stop.is_set():
                            return
                        if ready:
                            chunk = conn.recv(4096)
                            if not chunk:
                                return
                            pending += chunk
                    if expect:
                        line, _, pending = pending.partition(b"\n")
                        if not line.upper().startswith(expect):
                            return
                    elif expect is not None:
                        pending = b""
                    conn.sendall(send)
                self._drip(conn)
            except OSError:
                return

    def _drip(self, conn: socket.socket) -> None:
        started = time.monotonic()
        position = 0
        while not self._stop.is_set():
            ready, _, _ = select.select([conn], [], [], self.interval)
            if ready:
                try:
                    if not conn.recv(4096):
                        break  # the client shut the connection down
                except OSError:
                    break
                continue
            try:
                conn.sendall(self.trickle[position:position + 1])
            except OSError:
                break
            position = (position + 1) % len(self.trickle)
        self.closed_after.append(time.monotonic() - started)
