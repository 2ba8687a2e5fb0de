"""``osmon serve``: the dashboard on waitress, a production WSGI server (pure Python, threads).

It binds 127.0.0.1:5000 unless ``[web]`` or ``--host``/``--port`` say otherwise, and warns when
it listens beyond loopback while no admin password is set (anyone who reaches the port can
then read everything the dashboard shows).

``osmon run`` reuses :func:`serve` to run the dashboard in a thread beside its collection
loop::

    server = serve(config)            # binds now: a busy port fails here, in the caller
    thread = threading.Thread(target=server.run, name="osmon-web", daemon=True)
    thread.start()
    ...
    server.close()                    # stops the loop within a second and joins it
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import logging
import socket
import sys
import threading
from typing import Any

from waitress import create_server, wasyncore

from collector.config import Config, add_shard_option
from collector.errors import OsmonError

log = logging.getLogger(__name__)

#: How often the serving loop looks at its stop flag: the longest ``close()`` waits.
POLL_S = 0.5


class DashboardServer:
    """A bound waitress server; :meth:`run` serves until :meth:`close` is called."""

    def __init__(self, app: Any, host: str, port: int, threads: int = 6) -> None:
        # We bind the socket ourselves: a busy port then fails before waitress has started
        # its worker threads, and nothing is left behind.
        sock = _bind(host, port)
        self._app = app
        self._map: dict[int, Any] = {}
        self._server = create_server(app, map=self._map, sockets=[sock], threads=threads,
                                     ident="osmon")
        self.host = host
        self.port = int(sock.getsockname()[1])
        self._stop = threading.Event()
        self._done = threading.Event()
        self._running = False

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def run(self) -> None:
        """Serve requests until :meth:`close` (or Ctrl-C); then release the socket."""
        self._running = True
        try:
            while self._map and not self._stop.is_set():
                wasyncore.loop(timeout=POLL_S, map=self._map, use_poll=True, count=1)
        finally:
            self._shutdown()
            self._done.set()

    def reload(self, config: Config) -> None:
        """``osmon run`` reloaded hosts.toml: the pages read the new inventory from the next
        request on (``[web]`` itself, such as the port, takes a restart)."""
        from web.fleet import Fleet

        self._app.extensions["osmon.fleet"] = Fleet(config, self._app.config["OSMON_CLOCK"])

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop serving; safe from any thread, and before or after :meth:`run`."""
        self._stop.set()
        if self._running:
            self._done.wait(timeout_s)
        else:
            self._shutdown()

    def _shutdown(self) -> None:
        wasyncore.close_all(self._map)
        self._server.task_dispatcher.shutdown()


def serve(config: Config, host: str | None = None, port: int | None = None,
          *, app: Any = None) -> DashboardServer:
    """Bind the dashboard for ``config`` (``[web]`` host and port unless given); not yet serving.

    Call ``.run()`` on the result to serve (blocking; in a thread for ``osmon run``) and
    ``.close()`` to stop.
    """
    from web import create_app
    from web.auth import read_admin_hash

    host = host or config.web.host
    port = config.web.port if port is None else port
    if not _is_loopback(host) and read_admin_hash(config.state_dir) is None:
        log.warning("the dashboard listens on %s, beyond this machine, and no admin password "
                    "is set: anyone who can reach it sees every host (changes stay disabled). "
                    "Run `osmon set-password`, or keep the default 127.0.0.1.", host)
    return DashboardServer(app or create_app(config), host, port)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default: [web] host, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default: [web] port, 5000)")
    add_shard_option(parser)


def run(args: argparse.Namespace) -> int:
    from collector.config import load_config

    config = load_config(args)
    server = serve(config, args.host, args.port)
    print(f"osmon: dashboard on {server.url} (Ctrl-C stops)", file=sys.stderr, flush=True)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a server is stopped
        server.run()
    return 0


def _bind(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise OsmonError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise OsmonError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
