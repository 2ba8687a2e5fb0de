"""``osmon systemd``: print a systemd unit that runs ``osmon run`` as a service.

The way ``osmon cron`` prints crontab lines: absolute paths (systemd has no PATH of the
user's), the config file named explicitly, the user whose SSH key reaches the hosts.  The
unit restarts osmon if it dies, reloads hosts.toml on ``systemctl reload`` (SIGHUP: the
sessions of unchanged hosts stay open), and gives a stop the time a pass in progress may
take before every session is closed.  Prune and backup stay daily jobs: ``osmon cron``'s
lines without the collect line, or timers of your own.
"""

from __future__ import annotations

import argparse
import getpass
import math
import shlex
from pathlib import Path

from collector.commands.cron import osmon_command
from collector.config import default_config_path, load_config

#: Seconds beyond the pass deadline that a stop may take (closing every session).
STOP_MARGIN_S = 30


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", default=None,
                        help="the account osmon runs as (default: the current user)")
    parser.add_argument("--no-web", action="store_true",
                        help="collect only: no dashboard in the service")


def run(args: argparse.Namespace) -> int:
    config_path = Path(args.config) if args.config else default_config_path()
    config = load_config(args)
    print(unit(osmon_command(), config_path.resolve(), args.user or getpass.getuser(),
               config.settings.pass_deadline_s, args.no_web))
    return 0


def unit(command: str, config_path: Path, user: str, pass_deadline_s: float,
         no_web: bool = False) -> str:
    base = f"{command} --config {shlex.quote(str(config_path))} run"
    if no_web:
        base += " --no-web"
    if command.startswith("cd "):  # a source checkout: systemd has no `cd`, it has a setting
        directory, _, rest = command[3:].partition(" && ")
        start = f"WorkingDirectory={shlex.split(directory)[0]}\nExecStart={rest} --config " \
                f"{shlex.quote(str(config_path))} run" + (" --no-web" if no_web else "")
    else:
        start = f"ExecStart={base}"
    return "\n".join([
        "# osmon: save as /etc/systemd/system/osmon.service, then",
        "#   systemctl daemon-reload && systemctl enable --now osmon",
        "# systemctl reload osmon reads hosts.toml again (so does an edit of the file).",
        "[Unit]",
        "Description=osmon: agentless monitoring over SSH (collection and dashboard)",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        f"User={user}",
        start,
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "RestartSec=10",
        f"TimeoutStopSec={math.ceil(pass_deadline_s) + STOP_MARGIN_S}",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ])
