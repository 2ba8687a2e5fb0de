"""``osmon backup create|list|restore NAME|delete NAME``, over :mod:`collector.backup`."""

from __future__ import annotations

import argparse

from collector.backup import backups as backup
from collector.config import Config, load_config
from collector.times import utc_now


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    create = actions.add_parser(
        "create", help="archive the data directory now, then apply [backup] keep / keep_days")
    create.add_argument("-q", "--quiet", action="store_true",
                        help="print nothing on success (for cron)")
    create.add_argument("-v", "--verbose", dest="create_verbose", action="count", default=0,
                        help="also name the old backups that retention deleted")
    _wait_option(create)
    actions.add_parser("list", help="list the backups, newest first")
    restore = actions.add_parser(
        "restore", help="verify a backup and put it in place of the data; the replaced data is "
                        "kept as a new backup")
    restore.add_argument("name", metavar="NAME", help="a name shown by 'osmon backup list'")
    _wait_option(restore)
    delete = actions.add_parser("delete", help="delete one backup")
    delete.add_argument("name", metavar="NAME", help="a name shown by 'osmon backup list'")


#: Beyond the pass deadline, what a pass's post-pass work (alerts, rollups) may take.
_WAIT_MARGIN_S = 30.0


def _wait_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait", type=float, default=None, metavar="SECONDS",
                        help="wait this long for a running pass to finish (default: the pass "
                             "deadline plus 30 s, so the daily cron backup is not skipped "
                             "because a slow pass started in the same minute)")


def _wait_s(args: argparse.Namespace, config: Config) -> float:
    if args.wait is not None:
        return max(0.0, args.wait)
    return config.settings.pass_deadline_s + _WAIT_MARGIN_S


def run(args: argparse.Namespace) -> int:
    config = load_config(args)
    if args.action == "list":
        infos = backup.list_backups(config)
        if infos:
            print(format_table(infos))
        else:
            print(f"no backups in {config.settings.backup_dir}")
    elif args.action == "create":
        info = backup.create_backup(config, lock_wait_s=_wait_s(args, config))
        deleted = backup.apply_backup_retention(config, utc_now(), protect=(info.name,))
        if not args.quiet:
            print(info.name)
        if args.verbose or args.create_verbose:
            for name in deleted:
                print(f"deleted {name} (retention)")
    elif args.action == "restore":
        safety = backup.restore_backup(config, args.name, lock_wait_s=_wait_s(args, config))
        print(f"restored {args.name}; the data it replaced is kept as {safety.name}")
    else:
        backup.delete_backup(config, args.name)
        print(f"deleted {args.name}")
    return 0


def format_table(infos: list[backup.BackupInfo]) -> str:
    """Aligned columns; sizes and host counts right-aligned so they compare at a glance."""
    rows = [("NAME", "CREATED (UTC)", "SIZE", "HOSTS")]
    rows += [(i.name, i.created.strftime("%Y-%m-%d %H:%M:%S"), backup.format_size(i.size),
              "?" if i.hosts is None else str(i.hosts)) for i in infos]
    widths = [max(len(row[col]) for row in rows) for col in range(4)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  "
                     f"{r[3]:>{widths[3]}}" for r in rows)
