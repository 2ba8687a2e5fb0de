"""``osmon check``: validate the config, then try every enabled host once and say how it went.

Nothing is stored and no alert is evaluated: this is what an admin runs after editing
``hosts.toml``.  Every config problem is printed at once (exit 2); otherwise one aligned row per
host, "ok" with the round-trip time or the error in words to act on (exit 1 if any failed).
Under ``accept-new`` a first-seen host key is recorded, as the next pass would.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from collector.config import Config, Host, load_config
from collector.passes import collect
from collector.times import utc_now
from collector.views.progress import TerminalProgress


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", action="append", metavar="NAME",
                        help="try only this host (repeat for several)")


def run(args: argparse.Namespace) -> int:
    config = load_config(args)  # a ConfigError is printed by the CLI, as for every command
    hosts = _selected(config, args.host)
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
    print(format_table(hosts, outcomes))
    disabled = [h.name for h in config.hosts if not h.enabled and args.host is None]
    if disabled:
        print(f"not tried (enabled = false): {', '.join(disabled)}")
    failed = sum(1 for o in outcomes if not o.ok)
    print(f"{len(outcomes) - failed} ok, {failed} failed")
    return 1 if failed else 0


def _selected(config: Config, names: Sequence[str] | None) -> tuple[Host, ...] | str:
    if not names:
        return config.enabled_hosts
    unknown = [n for n in names if config.host(n) is None]
    if unknown:
        return f"no host named {', '.join(unknown)} in {config.path}"
    return tuple(h for h in config.hosts if h.name in names)


def format_table(hosts: Sequence[Host], outcomes: Sequence[collect.HostOutcome]) -> str:
    rows = [("HOST", "ADDRESS", "PYTHON", "RESULT")]
    for host, outcome in zip(hosts, outcomes):
        address = "local" if host.local else f"{host.user}@{host.address}:{host.port}"
        sample = outcome.sample
        if outcome.ok:
            result = f"ok {sample['collect']['duration_s']:.2f} s"
            system = sample.get("system")
            python = str(system.get("python", "?")) if isinstance(system, dict) else "?"
        else:
            result, python = outcome.describe_error(), "-"
        rows.append((host.name, address, python, result))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths))
                     + "  " + row[3] for row in rows)
