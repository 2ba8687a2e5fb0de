"""``osmon ack HOST METRIC [ITEM] --reason TEXT``: "I know, I'm on it" for one active alert.

No more reminders about it until it recovers (the recovery is still mailed) or gets worse
(warning -> critical is mailed, and reminders start again).  The author is the local user (the
one behind ``sudo``, if any); who, when and why are shown on the dashboard and in the history.
"""

from __future__ import annotations

import argparse

from collector.alerts import muting_store
from collector.alerts.muting_input import METRICS
from collector.alerts.wording import label
from collector.config import add_shard_option, load_config
from collector.times import utc_now
from collector.views.status_report import terminal_safe


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("host", metavar="HOST", help="a host of hosts.toml")
    parser.add_argument("metric", metavar="METRIC", help="one of " + ", ".join(METRICS))
    parser.add_argument("item", metavar="ITEM", nargs="?",
                        help="the alert's item: a mount, a check, a resource")
    parser.add_argument("--reason", metavar="TEXT", required=True, help="why (shown to everyone)")
    add_shard_option(parser)  # a host of another shard is refused, naming it


def run(args: argparse.Namespace) -> int:
    config = load_config(args)
    ack = muting_store.acknowledge(config, args.host, args.metric, args.item, args.reason,
                                   author=muting_store.local_user(), now=utc_now())
    print(f"acknowledged {terminal_safe(label(ack.metric, ack.item))} on {ack.host} "
          f"({ack.level} since {ack.since}): no reminders until it recovers or gets worse")
    return 0
