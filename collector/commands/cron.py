"""``osmon cron``: print the crontab lines that run osmon, with absolute paths.

cron runs with a bare PATH and another working directory, so every line names the interpreter
(or the ``osmon`` script) and the config file absolutely.  The commands are quiet on success
and print only problems, so cron's mail is worth reading; ``MAILTO`` decides who gets it.

The collect line follows ``interval_s`` (staleness, ``for`` counts and the deadlines all
assume passes that far apart): ``*/5 * * * *`` for 300.  cron counts whole minutes within
an hour (and hours within a day), so an interval it cannot space evenly (below a minute, 90,
420) gets no collect line but a message pointing to ``osmon run``, and exit status 1.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

import collector
from collector.config import default_config_path, load_config


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prune-at", default="17 3", metavar="'MIN HOUR'",
                        help="daily time of osmon prune (default: '17 3', 03:17)")
    parser.add_argument("--backup-at", default="47 2", metavar="'MIN HOUR'",
                        help="daily time of osmon backup create (default: '47 2', 02:47)")


def run(args: argparse.Namespace) -> int:
    config_path = Path(args.config) if args.config else default_config_path()
    interval = load_config(args).settings.interval_s
    schedule = collect_schedule(interval)
    print(crontab(osmon_command(), config_path.resolve(), args.prune_at, args.backup_at,
                  schedule, interval))
    if schedule is None:
        why = ("is below a minute, and cron starts a job at most once a minute" if interval < 60
               else "cannot be kept by cron, which starts jobs on whole minutes that divide an "
                    "hour, or whole hours that divide a day")
        print(f"osmon cron: interval_s = {interval} {why}: no collect line. Run `osmon run` "
              "as a service instead (a pass every interval_s, and the dashboard unless "
              "--no-web; `osmon systemd` prints its unit), or choose an interval_s such as "
              "60, 300 or 600.", file=sys.stderr)
        return 1
    return 0


def collect_schedule(interval_s: int) -> str | None:
    """The cron schedule of a pass every ``interval_s`` seconds, or None when cron cannot
    keep it evenly spaced."""
    if interval_s < 60 or interval_s % 60:
        return None
    minutes = interval_s // 60
    if minutes < 60:
        if 60 % minutes:
            return None
        return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
    if minutes % 60:
        return None
    hours = minutes // 60
    if hours == 24:
        return "0 0 * * *"
    if hours > 24 or 24 % hours:
        return None
    return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"


def osmon_command() -> str:
    """How this very osmon was started: its ``osmon`` script, else ``python -m collector``
    run from the directory that holds the ``collector`` package (a source checkout)."""
    script = Path(sys.argv[0])
    if script.name == "osmon" and script.is_file() and os.access(script, os.X_OK):
        return shlex.quote(str(script.absolute()))
    package_parent = Path(collector.__file__).resolve().parent.parent
    return (f"cd {shlex.quote(str(package_parent))} && "
            f"{shlex.quote(str(Path(sys.executable).absolute()))} -m collector")


def crontab(command: str, config_path: Path, prune_at: str, backup_at: str,
            schedule: str | None = "* * * * *", interval_s: int = 60) -> str:
    base = f"{command} --config {shlex.quote(str(config_path))}"
    collect = (f"{schedule} {base} collect" if schedule is not None else
               f"# no collect line: cron cannot run a pass every {interval_s} s (see osmon run)")
    return "\n".join([
        "# osmon: add with 'crontab -e' (as the user whose SSH key reaches the hosts).",
        "# collect prints one line per failed host and nothing when all is well;",
        "# prune and backup print only problems. cron mails any output to MAILTO.",
        collect,
        f"{prune_at} * * * {base} prune",
        f"{backup_at} * * * {base} backup create --quiet",
    ])
