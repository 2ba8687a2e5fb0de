"""``osmon collect``: one pass, what cron runs every minute.

Under cron (stderr not a terminal) it prints nothing when every host answered and one line per
failed host otherwise (``web1: timeout: no answer within 10 s (connect)``), because cron mails
whatever a job prints: the mail should be news, never noise.  On a terminal it also shows
progress and a summary.  Exit 0 when the pass ran and stored its samples, even if hosts
failed (their failure is stored too); 1 when the pass ran but could not store its samples (a
full disk: a failure of the pass, not of the hosts); 2 for a bad config or a data directory it
cannot use at all (including a full one); 3 when another pass holds the lock.
"""

from __future__ import annotations

import argparse
import sys

from collector.config import add_shard_option, load_config
from collector.passes import collect
from collector.views.progress import TerminalProgress
from collector.views.words import counted


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="show progress on stderr (default: only on a terminal)")
    add_shard_option(parser)


def run(args: argparse.Namespace) -> int:
    config = load_config(args)
    show = sys.stderr.isatty() if args.progress is None else args.progress
    progress = TerminalProgress(sys.stderr, "osmon collect") if show else None
    try:
        result = collect.run_pass(config, progress=progress)
    finally:
        if progress is not None:
            progress.clear()
    if result.interrupted is not None:
        print(f"osmon collect: {result.interrupted['problem']}", file=sys.stderr)
    for outcome in result.failures():
        print(outcome.describe())
    if show:
        print(f"osmon collect: {counted(len(result.outcomes), 'host')}, {result.ok} ok, "
              f"{result.failed} failed in {result.duration_s:.1f} s", file=sys.stderr)
    if result.problem is not None:
        print(f"osmon collect: the pass ran but {result.problem}", file=sys.stderr)
        return 1
    return 0
