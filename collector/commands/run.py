"""``osmon run``: a collection pass every ``interval_s`` and the dashboard, in one process.

The service mode, for fleets (``osmon systemd`` prints its unit): remote Python hosts are
collected through resident sessions (:mod:`collector.passes.sessions`), one SSH login per
host per ``session_max_age_s`` instead of one per pass, which also makes intervals down to
10 s affordable.  Passes start on the interval's wall clock boundaries (like cron's minutes),
so a slow pass does not shift the next ones; a pass that finds the lock held (a cron ``osmon
collect`` is also running) is skipped with one log line, never a crash.

hosts.toml is read again on SIGHUP and when the file changes (checked before each pass): the
sessions of hosts that did not change stay open; a file with an error is reported and the
previous inventory kept.  SIGTERM or Ctrl-C ends the pass in progress, then closes every
session: each probe's input ends and it exits, so nothing osmon started stays on a host.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any

from collector.config import Config, add_shard_option, load_config
from collector.errors import ConfigError, OsmonError

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="dashboard address (default: [web] host, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="dashboard port (default: [web] port, 5000)")
    parser.add_argument("--no-web", action="store_true", help="collect only, no dashboard")
    add_shard_option(parser)


def run(args: argparse.Namespace) -> int:
    from collector.passes.sessions import SessionPool

    config = load_config(args)
    stop = threading.Event()
    reload_asked = threading.Event()
    wake = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        (reload_asked if signum == signal.SIGHUP else stop).set()
        wake.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    server = None
    if not args.no_web:
        from collector.cli import dashboard_server

        # Binds now: a busy port fails at once.
        server = dashboard_server(config, args.host, args.port)
        threading.Thread(target=server.run, name="osmon-web", daemon=True).start()
        print(f"osmon: dashboard on {server.url}", file=sys.stderr, flush=True)
    _announce(config)
    sessions = SessionPool(config.settings)
    seen = _stamp(config)
    next_pass = time.time()
    try:
        while not stop.is_set():
            if reload_asked.is_set() or _stamp(config) != seen:
                reload_asked.clear()
                seen = _stamp(config)
                config = _reload(args, config, sessions, server)
            if time.time() >= next_pass:
                _one_pass(config, sessions)
                interval = config.settings.interval_s
                next_pass = (time.time() // interval + 1) * interval
            wake.wait(max(0.0, next_pass - time.time()))
            wake.clear()
    except KeyboardInterrupt:
        pass
    finally:
        sessions.close_all()
        if server is not None:
            server.close()
    return 0


def _one_pass(config: Config, sessions: Any) -> None:
    from collector.passes.collect import run_pass

    try:
        result = run_pass(config, sessions=sessions)
        for outcome in result.failures():
            log.warning("%s", outcome.describe())
        if result.interrupted is not None:
            log.warning("%s", result.interrupted["problem"])
        if result.problem is not None:
            log.error("the pass ran but %s", result.problem)
    except OsmonError as exc:  # lock held by a cron pass, data dir not writable
        log.warning("%s", exc)
    except Exception:  # one broken pass must not end the service
        log.exception("collection pass failed")


def _announce(config: Config) -> None:
    interval = config.settings.interval_s
    shard = config.settings.shard
    of_shard = f" of shard {shard} ({len(config.fleet_hosts)} in all)" if shard else ""
    print(f"osmon: a collection pass every {interval} s for {len(config.enabled_hosts)} host(s)"
          f"{of_shard} (Ctrl-C stops)", file=sys.stderr, flush=True)


def _stamp(config: Config) -> tuple[int, int, int] | None:
    """What tells a changed hosts.toml (an editor's rename gives a new inode)."""
    try:
        info = os.stat(config.path)
    except OSError:
        return None
    return info.st_ino, info.st_mtime_ns, info.st_size


def _reload(args: argparse.Namespace, config: Config, sessions: Any, server: Any) -> Config:
    """The new inventory, or the old one when the file cannot be used (said in the log)."""
    try:
        fresh = load_config(args)
    except ConfigError as exc:
        log.error("hosts.toml changed but cannot be used; the previous inventory stays:\n%s",
                  exc)
        return config
    except OsmonError as exc:
        log.error("hosts.toml changed but cannot be read (%s); the previous inventory stays",
                  exc)
        return config
    sessions.reconfigure(fresh)
    if server is not None:
        server.reload(fresh)
        if fresh.web != config.web:
            log.warning("[web] changed: the dashboard takes it at the next restart")
    if fresh.settings.interval_s != config.settings.interval_s:
        log.info("interval_s is now %d s", fresh.settings.interval_s)
    _announce(fresh)
    return fresh
