"""``osmon prune``: apply retention (see :mod:`collector.store.retention`); quiet under cron."""

from __future__ import annotations

import argparse
import sys

from collector.config import load_config
from collector.store.retention import prune
from collector.times import utc_now


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait", type=float, default=60, metavar="SECONDS",
                        help="wait this long for a running pass to finish (default 60)")
    # Also accepted after the command (``osmon prune -v``), where people type it.
    parser.add_argument("-v", "--verbose", dest="prune_verbose", action="count", default=0,
                        help="print a summary and every file compressed or removed")


def run(args: argparse.Namespace) -> int:
    config = load_config(args)
    report = prune(config, utc_now(), lock_wait_s=args.wait)
    for problem in report.problems:
        print(f"osmon prune: {problem}", file=sys.stderr)
    verbose = args.verbose or args.prune_verbose
    if verbose or sys.stdout.isatty():
        print(report.summary())
    if verbose:
        for path in report.compressed:
            print(f"compressed {path}")
        for path in report.removed:
            print(f"removed {path}")
    return 1 if report.problems else 0
