"""``osmon run``: a collection pass every ``interval_s`` and the dashboard, in one process.

For trying osmon out and for small setups without cron.  Passes start on the interval's wall
clock boundaries (like cron's minutes), so a slow pass does not shift the next ones; a pass that
finds the lock held (a cron ``osmon collect`` is also running) is skipped with one log line,
never a crash.  Edits to hosts.toml take effect after a restart.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from types import FrameType

from collector.config import add_shard_option
from collector.errors import OsmonError

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
    print(f"osmon: a collection pass every {interval} s for {len(config.enabled_hosts)} host(s)"
          f"{of_shard} (Ctrl-C stops)", file=sys.stderr, flush=True)
    try:
        while not stop.is_set():
            try:
                result = run_pass(config)
                for outcome in result.failures():
                    log.warning("%s", outcome.describe())
            except OsmonError as exc:  # lock held by a cron pass, data dir not writable
                log.warning("%s", exc)
            except Exception:  # one broken pass must not end the service
                log.exception("collection pass failed")
            stop.wait(interval - time.time() % interval)
    except KeyboardInterrupt:
        pass
    finally:
        if server is not None:
            server.close()
    return 0
