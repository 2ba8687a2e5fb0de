"""The backups page: list, and create / restore / delete for a logged-in admin.

The work itself is :mod:`collector.backup`'s (shared with ``osmon backup``); this blueprint only
gates it: every action is a POST with the session's CSRF token (checked for every POST in
:mod:`web.auth`), needs an admin password to be set and a logged-in admin, and restore and
delete also need their confirmation box ticked.  The page never shows where backups are kept.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from collector.backup import backups as backup
from collector.config import Config
from collector.errors import LockHeld, OsmonError
from collector.times import format_ts
from web.auth import action_refusal
from web.fleet import current_fleet

bp = Blueprint("backups", __name__, url_prefix="/backups")

#: How long an action waits for a running pass to release the data lock before giving up: a
#: browser request should not hang for a whole pass.  ``OSMON_LOCK_WAIT_S`` overrides it.
LOCK_WAIT_S = 10.0


@bp.get("")
def index() -> ResponseReturnValue:
    return _page()


@bp.post("/create")
def create() -> ResponseReturnValue:
    return _act(lambda config: f"{backup.create_backup(config, lock_wait_s=_wait()).name} "
                               "created", needs_confirm=False)


@bp.post("/<name>/restore")
def restore(name: str) -> ResponseReturnValue:
    def run(config: Config) -> str:
        safety = backup.restore_backup(config, name, lock_wait_s=_wait())
        return f"{name} restored; the replaced data was saved as {safety.name}"

    return _act(run)


@bp.post("/<name>/delete")
def delete(name: str) -> ResponseReturnValue:
    def run(config: Config) -> str:
        backup.delete_backup(config, name)
        return f"{name} deleted"

    return _act(run)


def _act(action: Callable[[Config], str], needs_confirm: bool = True) -> ResponseReturnValue:
    """Run ``action`` if allowed; it returns what to tell the admin."""
    refusal = action_refusal()
    if refusal:
        return _page(error=refusal, status=403)
    if needs_confirm and request.form.get("confirm") != "yes":
        return _page(error="Tick the confirmation box to do that.", status=400)
    fleet = current_fleet()
    try:
        done = action(fleet.config)
    except LockHeld as exc:
        return _page(error=f"Not now: {fleet.redact(str(exc))}", status=409)
    except OsmonError as exc:  # BackupError: unknown name, corrupt archive, full disk, ...
        return _page(error=fleet.redact(str(exc)), status=400)
    flash(f"Backup {done}.")
    return redirect(url_for("backups.index"))


def _wait() -> float:
    return float(current_app.config.get("OSMON_LOCK_WAIT_S", LOCK_WAIT_S))


def _page(error: str | None = None, status: int = 200) -> ResponseReturnValue:
    fleet = current_fleet()
    try:
        rows = [_row(info) for info in backup.list_backups(fleet.config)]
    except OsmonError as exc:  # an unreadable backup directory: say so, keep the page
        rows, error = [], error or fleet.redact(str(exc))
    return render_template("backups.html", backups=rows, error=error,
                           refusal=action_refusal()), status


def _row(info: Any) -> dict[str, Any]:
    created = getattr(info, "created", None)
    hosts = getattr(info, "hosts", ())
    return {
        "name": info.name,
        "size": getattr(info, "size", None),
        "created": format_ts(created) if isinstance(created, datetime) else created,
        "hosts": _names(hosts) if isinstance(hosts, (list, tuple)) else hosts,
    }


def _names(hosts: list[str] | tuple[str, ...], shown: int = 5) -> str:
    text = ", ".join(str(h) for h in hosts[:shown])
    return f"{text} (+{len(hosts) - shown} more)" if len(hosts) > shown else text
