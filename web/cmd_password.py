"""``osmon set-password``: set the dashboard's admin password, stored only as a salted hash.

On a terminal the password is asked twice without echo; ``--stdin`` reads it from the first
line of standard input instead (for provisioning scripts: ``printf '%s\\n' "$PW" | osmon
set-password --stdin``), so it never appears in a process list or shell history.  Setting a
new password ends every session that logged in with the old one.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from collector.errors import OsmonError

MIN_LENGTH = 8


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stdin", action="store_true",
                        help="read the password from the first line of standard input")


def run(args: argparse.Namespace) -> int:
    from collector.config import load_config
    from web.auth import write_admin_password

    config = load_config(args)
    password = _read_stdin() if args.stdin else _ask()
    if len(password) < MIN_LENGTH:
        raise OsmonError(f"the password must have at least {MIN_LENGTH} characters")
    write_admin_password(config.state_dir, password)
    print("osmon: dashboard admin password set; log in at /login to create, restore or "
          "delete backups", file=sys.stderr)
    return 0


def _read_stdin() -> str:
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line


def _ask() -> str:
    if not sys.stdin.isatty():
        raise OsmonError("standard input is not a terminal: use --stdin to read the password "
                         "from it")
    first = getpass.getpass("New dashboard admin password: ")
    if getpass.getpass("Same password again: ") != first:
        raise OsmonError("the two passwords differ; nothing changed")
    return first
