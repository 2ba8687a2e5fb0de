"""``osmon status``: the dashboard's overview in a terminal, from the store only.

One line about the collector (is cron still running passes?), a header, then one line per
enabled host, worst first as on the dashboard.  It never connects to a host: it reads what the
last passes stored, so it is instant and safe to run in a loop.  Colours follow ``--color``
(``auto``: only on a terminal, and not when ``$NO_COLOR`` is set); the status is always a word,
so nothing depends on colour.  ``--watch N`` redraws every N seconds until Ctrl-C, which ends it
normally (exit 0): stopping a watch is how it is meant to end, not a failure.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import TextIO

from collector.config import add_shard_option, load_config
from collector.times import format_ts, utc_now
from collector.views.status_report import build_report, render, to_json

#: Cursor home and clear screen: a watch redraws in place, like watch(1).
CLEAR = "\x1b[H\x1b[2J"
MIN_WATCH_S = 0.1

USAGE_NOTES = """output:
  plain text, coloured only on a terminal (--color auto) unless $NO_COLOR is set;
  --color always/never overrides both.  Host data (mounts, check names, errors) has its
  control characters replaced by '?': escapes sent by a host never reach the terminal.
  --json prints {"generated", "collector", "shard", "counts", "silenced", "hosts": [...]},
  keys sorted; "shard" is null unless this collector is one shard of several ({"shard":
  "2/3", "hosts", "other_hosts"}); the host objects carry the /api/hosts fields plus
  "failing_checks".
  --watch N redraws every N seconds (on a terminal in place; piped, snapshots separated by a
  blank line) until Ctrl-C, which exits 0 (so does a reader that closes the pipe).
  The exit status does not depend on the hosts' health: read --json for that.
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print a JSON document for scripts instead of text")
    parser.add_argument("--watch", type=_watch_seconds, metavar="N",
                        help="redraw every N seconds until Ctrl-C")
    parser.add_argument("--color", "--colour", choices=("auto", "always", "never"),
                        default="auto", metavar="WHEN",
                        help="colour the status words: auto (default), always or never")
    parser.add_argument("--tag", metavar="TAG", help="only hosts with this tag")
    add_shard_option(parser)
    parser.epilog = USAGE_NOTES + "\n" + (parser.epilog or "")


def run(args: argparse.Namespace) -> int:
    config = load_config(args)
    out = sys.stdout
    if hasattr(out, "reconfigure"):
        out.reconfigure(errors="replace")  # a non-UTF-8 locale must not crash on a mount name
    colour = wants_colour(args.color, out.isatty(), os.environ)

    def snapshot() -> str:
        report = build_report(config, utc_now(), args.tag)
        return to_json(report) if args.json else render(report, colour)

    try:
        if args.watch is None:
            out.write(snapshot())
            out.flush()
            return 0
        return watch(snapshot, args.watch, out, in_place=out.isatty())
    except BrokenPipeError:
        # `osmon status --watch 5 | head`: the reader has seen enough, like a Ctrl-C.  Point
        # stdout at /dev/null so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out.fileno())
        os.close(devnull)
        return 0


def wants_colour(choice: str, is_tty: bool, environ: Mapping[str, str]) -> bool:
    """``always``/``never`` win; ``auto`` colours a terminal unless NO_COLOR (https://no-color.org)
    is set to something, or TERM says the terminal cannot."""
    if choice != "auto":
        return choice == "always"
    return is_tty and not environ.get("NO_COLOR") and environ.get("TERM") != "dumb"


def watch(snapshot: Callable[[], str], every_s: float, out: TextIO, in_place: bool,
          sleep: Callable[[float], None] = time.sleep) -> int:
    """Print ``snapshot()`` every ``every_s`` seconds until Ctrl-C; then exit 0."""
    first = True
    try:
        while True:
            text = snapshot()
            if in_place:
                title = f"osmon status every {every_s:g} s, {format_ts(utc_now())} (Ctrl-C to stop)"
                out.write(CLEAR + title + "\n" + text)
            else:
                out.write(text if first else "\n" + text)
            out.flush()
            first = False
            sleep(every_s)
    except KeyboardInterrupt:
        if in_place:
            out.write("\n")
            out.flush()
        return 0


def _watch_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value < MIN_WATCH_S:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_WATCH_S} s, got {text}")
    return value
