"""A real HTTP server on loopback that receives webhook POSTs, and its failure modes.

``mode`` says what the next requests get: ``ok`` (the ``status``, 200 by default, which may be
any code: 500, 401), ``hang`` (accepted, never answered until the server stops), ``slow``
(answered after ``delay_s``), ``trickle`` (the status line one byte every 50 ms, for ever),
``redirect`` (302 to ``location``), ``reset`` (the connection closed at once).  ``refuse``
maps a piece of text to a status: a body holding it gets that status, whatever the mode (a
bridge that cannot take one message but takes the others), in the modes that answer.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookServer:
    """``with WebhookServer() as hook:`` then ``hook.url("/alerts")``; ``hook.received``."""

    mode: str = "ok"
    status: int = 200
    reason: str | None = None
    delay_s: float = 0.0
    location: str = ""
    refuse: dict[str, int] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                mode = server.mode
                if mode == "reset":
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                server.received.append(Received(self.path, dict(self.headers), body))
                if mode == "hang":
                    server.release.wait(60)
                    return
                if mode == "trickle":
                    with contextlib.suppress(OSError):
                        for byte in b"HTTP/1.1 200 OK\r\n" * 1000:
                            if server.release.wait(0.05):
                                return
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                    return
                if mode == "slow":
                    server.release.wait(server.delay_s)
                refused = [code for text, code in server.refuse.items()
                            if text.encode() in body]
                if refused:
                    self.send_response(refused[0])
                elif mode == "redirect":
                    self.send_response(302)
                    self.send_header("Location", server.location)
                else:
                    self.send_response(server.status, server.reason)
                self.send_header("Content-Length", "2")
                self.end_headers()
                with contextlib.suppress(OSError):
                    self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str = "/alerts") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def payloads(self) -> list[Any]:
        return [r.json for r in self.received]

    def __enter__(self) -> WebhookServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(10)


class SilentSmtp:
    """A TCP port that accepts connections and never says a word (a hung mail server)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]

    def __enter__(self) -> SilentSmtp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def timed(action: Any) -> float:
    start = time.monotonic()
    action()
    return time.monotonic() - start
