"""``osmon cron``: print the crontab lines that run osmon, with absolute paths.

cron runs with a bare PATH and another working directory, so every line names the interpreter
(or the ``osmon`` script) and the config file absolutely.  The commands are quiet on success
and print only problems, so cron's mail is worth reading; ``MAILTO`` decides who gets it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

import collector
from collector.config import default_config_path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prune-at", default="17 3", metavar="'MIN HOUR'",
                        help="daily time of osmon prune (default: '17 3', 03:17)")
    parser.add_argument("--backup-at", default="47 2", metavar="'MIN HOUR'",
                        help="daily time of osmon backup create (default: '47 2', 02:47)")


def run(args: argparse.Namespace) -> int:
    config_path = Path(args.config) if args.config else default_config_path()
    print(crontab(osmon_command(), config_path.resolve(), args.prune_at, args.backup_at))
    return 0


def osmon_command() -> str:
    """How this very osmon was started: its ``osmon`` script, else ``python -m collector``
    run from the directory that holds the ``collector`` package (a source checkout)."""
    script = Path(sys.argv[0])
    if script.name == "osmon" and script.is_file() and os.access(script, os.X_OK):
        return shlex.quote(str(script.absolute()))
    package_parent = Path(collector.__file__).resolve().parent.parent
    return (f"cd {shlex.quote(str(package_parent))} && "
            f"{shlex.quote(str(Path(sys.executable).absolute()))} -m collector")


def crontab(command: str, config_path: Path, prune_at: str, backup_at: str) -> str:
    base = f"{command} --config {shlex.quote(str(config_path))}"
    return "\n".join([
        "# osmon: add with 'crontab -e' (as the user whose SSH key reaches the hosts).",
        "# collect prints one line per failed host and nothing when all is well;",
        "# prune and backup print only problems. cron mails any output to MAILTO.",
        f"* * * * * {base} collect",
        f"{prune_at} * * * {base} prune",
        f"{backup_at} * * * {base} backup create --quiet",
    ])
