"""``osmon check``: validate the config, then try every enabled host once and say how it went.

Nothing is stored and no alert is evaluated: this is what an admin runs after editing
``hosts.toml``.  Every config problem is printed at once (exit 2); otherwise one aligned row per
host: the probe that ran ("python 3.11.2", or "sh" for the shell probe of a host without
Python), "ok" with the round-trip time or the error in words to act on (exit 1 if any failed).
Under ``accept-new`` a first-seen host key is recorded, as the next pass would.  Last, the
``authorized_keys`` line(s) that restrict osmon's key on the hosts to exactly what osmon runs
there (``restrict,command="..."``; ``--from`` adds ``from="..."``).

On a box that is one shard of several (``[settings] shard`` or ``--shard``), a SHARD column says
which shard each host belongs to; only this shard's hosts are tried (the others may not even be
reachable from here) unless ``--all-shards`` asks for every one.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from collector.config import Config, Host, add_shard_option, load_config, shard_of
from collector.passes import authorized_keys, collect
from collector.times import utc_now
from collector.views.progress import TerminalProgress


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", action="append", metavar="NAME",
                        help="try only this host (repeat for several)")
    parser.add_argument("--all-shards", action="store_true",
                        help="try the hosts of every shard, not only this one's")
    parser.add_argument("--from", dest="source", metavar="ADDRESS",
                        help="put from=\"ADDRESS\" (this server's address, as the hosts see "
                             "it) in the authorized_keys lines printed at the end")
    add_shard_option(parser)


def run(args: argparse.Namespace) -> int:
    config = load_config(args)  # a ConfigError is printed by the CLI, as for every command
    hosts = _selected(config, args.host, args.all_shards)
    if isinstance(hosts, str):
        print(f"osmon check: {hosts}", file=sys.stderr)
        return 2
    progress = TerminalProgress(sys.stderr, "osmon check") if sys.stderr.isatty() else None
    try:
        outcomes = collect.collect_hosts(
            config, hosts, store=None, started=utc_now(),
            deadline=time.monotonic() + config.settings.pass_deadline_s, on_outcome=progress)
    finally:
        if progress is not None:
            progress.clear()
    shard = config.settings.shard
    print(format_table(hosts, outcomes, shard.count if shard else None))
    disabled = [h.name for h in config.hosts if not h.enabled and args.host is None]
    if disabled:
        print(f"not tried (enabled = false): {', '.join(disabled)}")
    others = len(config.fleet_hosts) - len(config.enabled_hosts)
    if shard is not None and args.host is None and not args.all_shards and others:
        print(f"not tried: {others} host(s) of the other shards (this is shard {shard}; "
              "--all-shards tries them too)")
    print_key_lines(config, hosts, args.source)
    failed = sum(1 for o in outcomes if not o.ok)
    print(f"{len(outcomes) - failed} ok, {failed} failed")
    return 1 if failed else 0


def print_key_lines(config: Config, hosts: Sequence[Host], source: str | None) -> None:
    """The authorized_keys line of each host's account, pinning osmon's key to its command."""
    lines = authorized_keys.lines_for(config, hosts, source)
    if not lines:
        return
    print("authorized_keys: to let osmon's key run only osmon's command (cron and osmon run "
          "alike), put this line in place of the plain key on")
    for key_line in lines:
        print(f"  {', '.join(key_line.hosts)}:\n{key_line.line}")
    print()


def _selected(config: Config, names: Sequence[str] | None,
              all_shards: bool = False) -> tuple[Host, ...] | str:
    if not names:
        return config.fleet_hosts if all_shards else config.enabled_hosts
    unknown = [n for n in names if config.host(n) is None]
    if unknown:
        return f"no host named {', '.join(unknown)} in {config.path}"
    return tuple(h for h in config.hosts if h.name in names)


def format_table(hosts: Sequence[Host], outcomes: Sequence[collect.HostOutcome],
                 shards: int | None = None) -> str:
    """One aligned row per host; with ``shards`` (the N of a sharded setup) a SHARD column."""
    rows = [("HOST", "ADDRESS", "PROBE", "RESULT")]
    for host, outcome in zip(hosts, outcomes):
        address = "local" if host.local else f"{host.user}@{host.address}:{host.port}"
        sample = outcome.sample
        collected = sample.get("collect") if isinstance(sample.get("collect"), dict) else {}
        probe = str(collected.get("probe") or "-")
        if outcome.ok:
            result = f"ok {collected['duration_s']:.2f} s"
            system = sample.get("system")
            python = system.get("python") if isinstance(system, dict) else None
            if probe == "python":  # which Python; the shell probe has none
                probe = f"python {python or '?'}"
        else:
            result = outcome.describe_error()
        rows.append((host.name, address, probe, result))
    if shards is not None:
        rows = [(rows[0][0], "SHARD", *rows[0][1:])] + [
            (row[0], f"{shard_of(row[0], shards)}/{shards}", *row[1:]) for row in rows[1:]]
    columns = len(rows[0]) - 1
    widths = [max(len(row[i]) for row in rows) for i in range(columns)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row[:columns], widths))
                     + "  " + row[columns] for row in rows)
