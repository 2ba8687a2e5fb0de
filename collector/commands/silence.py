"""``osmon silence add|list|remove``: maintenance windows (:mod:`collector.alerts.muting_store`).

``add`` prints what it silenced, then the new silence's id alone on the last line, so a script
can keep it (``id=$(osmon silence add ... | tail -n1)``) and remove the silence when its work is
done.  Times typed without a zone are the server's local time (as ``date`` shows it); osmon
stores and prints UTC.  The author is the local user (the one behind ``sudo``, if any).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from datetime import datetime

from collector.alerts import muting_store
from collector.alerts.muting import Silence
from collector.alerts.muting_input import METRICS, SilenceRequest
from collector.config import add_shard_option, load_config
from collector.times import utc_now
from collector.views.status_report import terminal_safe

NOTES = "\n".join((
    "times: 2026-11-30T06:00Z, 2026-11-30 06:00 (local time), or 06:00 (the next one);",
    "durations: 30m, 2h, 1h30m, 1d, 2w.",
    textwrap.fill("metrics: " + ", ".join(METRICS) + ".", 88),
    "A silenced alert is still judged, kept and shown, but nothing is mailed about it; if it is",
    "still there when the silence ends, it is mailed once, as if it had just started."))


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    add = actions.add_parser(
        "add", help="silence a host or a tag, all of it or one metric (and item), for a while",
        epilog=NOTES, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = add.add_mutually_exclusive_group(required=True)
    target.add_argument("--host", metavar="NAME", help="a host of hosts.toml")
    target.add_argument("--tag", metavar="TAG", help="every host with this tag")
    add.add_argument("--metric", metavar="M", help="only this metric (default: all of them)")
    add.add_argument("--item", metavar="I",
                     help="only this item of the metric: a mount, a check, a resource")
    until = add.add_mutually_exclusive_group(required=True)
    until.add_argument("--for", dest="duration", metavar="DURATION", help="e.g. 2h, 30m, 1d")
    until.add_argument("--until", metavar="TIME", help="e.g. 2026-11-30T06:00Z or 06:00")
    add.add_argument("--start", metavar="TIME", help="begin later (default: now)")
    add.add_argument("--reason", metavar="TEXT", required=True, help="why (shown to everyone)")
    add_shard_option(add)  # a host of another shard is refused, naming it
    # "--for -1h" must reach the duration check (a clear error), not be taken for an option.
    add._negative_number_matcher = re.compile(r"^-\d")  # type: ignore[attr-defined]
    listing = actions.add_parser("list", help="the silences in force or to come")
    listing.add_argument("--json", action="store_true", help="print JSON for scripts")
    remove = actions.add_parser("remove", help="end a silence now")
    remove.add_argument("id", metavar="ID", help="an id shown by 'osmon silence list'")


def run(args: argparse.Namespace) -> int:
    config = load_config(args)
    now = utc_now()
    if args.action == "add":
        request = SilenceRequest(host=args.host, tag=args.tag, metric=args.metric,
                                 item=args.item, start=args.start, duration=args.duration,
                                 until=args.until, reason=args.reason)
        silence = muting_store.add_silence(config, request, author=muting_store.local_user(),
                                           now=now, zone=None)
        print(f"silenced {terminal_safe(silence.scope)} from {_when(silence.start)} until "
              f"{_when(silence.end)}: {terminal_safe(silence.reason)}")
        print(silence.id)
    elif args.action == "list":
        muting, problems = muting_store.read(config.state_dir)
        for problem in problems:
            print(f"osmon silence: {problem}", file=sys.stderr)
        current = muting.active(now)
        if args.json:
            print(json.dumps(muting_store.listing(muting, now), indent=2, sort_keys=True))
        elif current:
            print(format_table(current, now))
        else:
            print("no silence in force or to come")
    else:
        silence = muting_store.remove_silence(config, args.id,
                                              author=muting_store.local_user(), now=now)
        print(f"removed silence {silence.id} ({terminal_safe(silence.scope)}): alerts about it "
              "are mailed again")
    return 0


def format_table(silences: tuple[Silence, ...], now: datetime) -> str:
    rows = [("ID", "HOSTS", "METRIC", "FROM", "UNTIL", "BY", "REASON")]
    for s in silences:
        hosts = s.host if s.host is not None else f"tag:{s.tag}"
        metric = "all" if s.metric is None else s.metric + (f" {s.item}" if s.item else "")
        start = "now" if s.active(now) else _when(s.start)
        rows.append((s.id, terminal_safe(hosts), terminal_safe(metric, 40), start,
                     _when(s.end), terminal_safe(s.author), terminal_safe(s.reason, 80)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths))
                     + "  " + row[-1] for row in rows)


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")
