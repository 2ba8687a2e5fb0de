"""The ``osmon`` command line: one entry point, one sub-command module per command.

Why a table of module names: ``osmon collect`` runs every minute from cron, so it must not pay
for importing Flask, pygal or the backup code; each command's module is imported only when that
command runs.  This module is the composition root, the one place that may reach ``web``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import Any

from collector.errors import OsmonError

#: name -> (module, one-line help).  Each module has ``configure(parser)`` and ``run(args)``.
COMMANDS: dict[str, tuple[str, str]] = {
    "collect": ("collector.commands.collect",
                "run one collection pass (what cron runs every minute)"),
    "check": ("collector.commands.check", "validate the config and try every host once"),
    "run": ("collector.commands.run",
            "collect every interval_s and serve the dashboard in one process"),
    "serve": ("web.cmd_serve", "serve the dashboard (127.0.0.1:5000 unless told otherwise)"),
    "status": ("collector.commands.status",
               "one line per host, from the store (never connects)"),
    "charts": ("collector.commands.charts", "write every chart as static SVG files"),
    "backup": ("collector.commands.backup",
               "create, list, restore or delete backups of the data"),
    "prune": ("collector.commands.prune",
              "apply retention: drop old day files, compress closed ones"),
    "silence": ("collector.commands.silence",
                "add, list or remove silences (maintenance windows: alerts kept, not mailed)"),
    "ack": ("collector.commands.ack",
            "acknowledge an active alert: no reminders until it recovers or gets worse"),
    "cron": ("collector.commands.cron", "print the crontab lines for collect, prune and backup"),
    "systemd": ("collector.commands.systemd",
                "print a systemd unit that runs osmon run as a service (for fleets)"),
    "test-email": ("collector.commands.test_email", "send a test e-mail with the [smtp] settings"),
    "test-webhook": ("collector.commands.test_webhook",
                     "POST a test message with the [webhook] settings"),
    "set-password": ("web.cmd_password", "set the dashboard admin password (stored as a hash)"),
}

EPILOG = """exit status:
  0  the command ran (for collect: the pass ran and stored its samples, even if hosts failed)
  1  the command ran and found a problem (collect: samples not stored, e.g. a full disk;
     check: a host failed; test-email, test-webhook: not sent; cron: an interval_s cron cannot keep)
  2  could not run: bad config file, bad usage, or a data directory it cannot use (full too)
     (silence, ack: the input was refused and nothing was changed)
  3  could not run: another osmon pass, backup or restore holds the data directory lock
config: --config PATH, else $OSMON_CONFIG, else ./hosts.toml"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="osmon", description="Agentless monitoring of Linux servers over SSH.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", metavar="PATH", help="the hosts.toml to use")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log more (repeat for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, description=help_text, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # Parse once to find the command, then let that command add its own options.
    # -h is held back from this first parse: it would print help before the command's own
    # options exist.
    known, _rest = parser.parse_known_args([a for a in argv if a not in ("-h", "--help")])
    if not known.command:
        parser.parse_args(argv)  # prints help and exits 0 for -h
        parser.print_help()
        return 2
    module = importlib.import_module(COMMANDS[known.command][0])
    sub_parser = _sub_parser(parser, known.command)
    module.configure(sub_parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(module.run(args) or 0)
    except OsmonError as exc:
        print(f"osmon {known.command}: {exc.report()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"osmon {known.command}: interrupted", file=sys.stderr)
        return 130


def _sub_parser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]
    raise AssertionError("no sub-commands")


def dashboard_server(config: Any, host: str | None, port: int | None) -> Any:
    """The dashboard of ``osmon run``, bound and ready to ``run()``.  Like the command table
    above, the one reach from ``collector`` into ``web`` (docs/architecture.md)."""
    from web.cmd_serve import serve

    return serve(config, host, port)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
