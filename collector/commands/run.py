"""``osmon run``: a collection pass every ``interval_s`` and the dashboard, in one process.

For trying osmon out and for small setups without cron.  The first pass runs at once (someone
who just started it wants to see data), and says so; the next ones start on the interval's wall
clock boundaries (like cron's minutes), so a slow pass does not shift the next ones, but never
less than half an interval after the previous start: a start at 12:00:56 is followed by a pass
at 12:02:00, not one at 12:01:00 four seconds later (:func:`next_start`).  A pass that finds
the lock held (a cron ``osmon collect`` is also running) is skipped with one log line, never a
crash.  Edits to hosts.toml take effect after a restart.
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

from collector.config import add_shard_option
from collector.errors import OsmonError
from collector.views.words import counted

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="dashboard address (default: [web] host, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="dashboard port (default: [web] port, 5000)")
    parser.add_argument("--no-web", action="store_true", help="collect only, no dashboard")
    add_shard_option(parser)


def run(args: argparse.Namespace) -> int:
    from collector.config import load_config
    from collector.passes.collect import run_pass

    config = load_config(args)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    server = None
    if not args.no_web:
        from collector.cli import dashboard_server

        # Binds now: a busy port fails at once.
        server = dashboard_server(config, args.host, args.port)
        threading.Thread(target=server.run, name="osmon-web", daemon=True).start()
        print(f"osmon: dashboard on {server.url}", file=sys.stderr, flush=True)
    interval = config.settings.interval_s
    shard = config.settings.shard
    of_shard = f" of shard {shard} ({len(config.fleet_hosts)} in all)" if shard else ""
    print(f"osmon: a collection pass every {interval} s for "
          f"{counted(len(config.enabled_hosts), 'host')}{of_shard}, on the clock's multiples of "
          f"{interval} s; the first one now (Ctrl-C stops)", file=sys.stderr, flush=True)
    first = True
    try:
        while not stop.is_set():
            started = time.time()
            summary = ""
            try:
                result = run_pass(config)
                for outcome in result.failures():
                    log.warning("%s", outcome.describe())
                if result.interrupted is not None:
                    log.warning("%s", result.interrupted["problem"])
                if result.problem is not None:
                    log.error("the pass ran but %s", result.problem)
                summary = (f" in {result.duration_s:.1f} s: {result.ok} ok, "
                           f"{result.failed} failed")
            except OsmonError as exc:  # lock held by a cron pass, data dir not writable
                log.warning("%s", exc)
            except Exception:  # one broken pass must not end the service
                log.exception("collection pass failed")
            upcoming = next_start(started, time.time(), interval)
            if first:
                at = datetime.fromtimestamp(upcoming, timezone.utc).strftime("%H:%M:%S UTC")
                print(f"osmon: first pass done{summary}; the next at {at}", file=sys.stderr,
                      flush=True)
                first = False
            stop.wait(max(0.0, upcoming - time.time()))
    except KeyboardInterrupt:
        pass
    finally:
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
