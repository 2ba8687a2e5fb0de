"""``osmon run``: a collection pass every ``interval_s`` and the dashboard, in one process.

The service mode, for fleets (``osmon systemd`` prints its unit): remote Python hosts are
collected through resident sessions (:mod:`collector.passes.sessions`), one SSH login per
host per ``session_max_age_s`` instead of one per pass, which also makes intervals down to
10 s affordable.  The first pass runs at once (someone who just started it wants to see data),
and says so; the next ones start on the interval's wall clock boundaries (like cron's minutes),
so a slow pass does not shift the next ones, but never less than half an interval after the
previous start: a start at 12:00:56 is followed by a pass at 12:02:00, not one at 12:01:00
four seconds later (:func:`next_start`).  A pass that finds the lock held (a cron ``osmon
collect`` is also running) is skipped with one log line, never a crash.

hosts.toml is read again on SIGHUP and when the file changes (checked before each pass): the
sessions of hosts that did not change stay open; a file with an error is reported and the
previous inventory kept.  SIGTERM or Ctrl-C ends the pass in progress, then closes every
session: each probe's input ends and it exits, so nothing osmon started stays on a host.
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
import threading
import time
from datetime import datetime, timezone
from types import FrameType
from typing import Any

from collector.config import Config, add_shard_option, load_config
from collector.errors import ConfigError, OsmonError
from collector.store.statefile import FileIdentity, file_identity
from collector.views.words import counted

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
    _announce(config, "the first one now")
    sessions = SessionPool(config.settings)
    seen = _stamp(config)
    next_pass = time.time()
    first = True
    try:
        while not stop.is_set():
            if reload_asked.is_set() or _stamp(config) != seen:
                reload_asked.clear()
                seen = _stamp(config)
                config = _reload(args, config, sessions, server)
            if time.time() >= next_pass:
                started = time.time()
                summary = _one_pass(config, sessions)
                next_pass = next_start(started, time.time(), config.settings.interval_s)
                if first:
                    at = datetime.fromtimestamp(next_pass, timezone.utc).strftime("%H:%M:%S UTC")
                    print(f"osmon: first pass done{summary}; the next at {at}",
                          file=sys.stderr, flush=True)
                    first = False
            wake.wait(max(0.0, next_pass - time.time()))
            wake.clear()
    except KeyboardInterrupt:
        pass
    finally:
        sessions.close_all()
        if server is not None:
            server.close()
    return 0


def next_start(last_start: float, now: float, interval: float) -> float:
    """When the next pass starts: the first multiple of ``interval`` after ``now`` that is at
    least ``interval / 2`` after ``last_start`` (epoch seconds)."""
    boundary = (math.floor(now / interval) + 1) * interval
    while boundary - last_start < interval / 2:
        boundary += interval
    return boundary


def _one_pass(config: Config, sessions: Any) -> str:
    """Run one pass and log what went wrong; returns " in 1.2 s: 3 ok, 0 failed" (or "" when
    the pass did not run) for the first pass's line."""
    from collector.passes.collect import run_pass

    try:
        result = run_pass(config, sessions=sessions)
        for outcome in result.failures():
            log.warning("%s", outcome.describe())
        if result.interrupted is not None:
            log.warning("%s", result.interrupted["problem"])
        if result.problem is not None:
            log.error("the pass ran but %s", result.problem)
        return f" in {result.duration_s:.1f} s: {result.ok} ok, {result.failed} failed"
    except OsmonError as exc:  # lock held by a cron pass, data dir not writable
        log.warning("%s", exc)
    except Exception:  # one broken pass must not end the service
        log.exception("collection pass failed")
    return ""


def _announce(config: Config, first: str) -> None:
    interval = config.settings.interval_s
    shard = config.settings.shard
    of_shard = f" of shard {shard} ({len(config.fleet_hosts)} in all)" if shard else ""
    print(f"osmon: a collection pass every {interval} s for "
          f"{counted(len(config.enabled_hosts), 'host')}{of_shard}, on the clock's multiples of "
          f"{interval} s; {first} (Ctrl-C stops)", file=sys.stderr, flush=True)


def _stamp(config: Config) -> FileIdentity | None:
    """What tells a changed hosts.toml (an editor's rename gives a new inode)."""
    return file_identity(config.path)


def _reload(args: argparse.Namespace, config: Config, sessions: Any, server: Any) -> Config:
    """The new inventory, or the old one when the file cannot be used (said in the log)."""
    try:
        fresh = load_config(args)
    except ConfigError as exc:
        log.error("hosts.toml changed but cannot be used; the previous inventory stays: %s",
                  exc.report())
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
    _announce(fresh, "hosts.toml read again")
    return fresh
