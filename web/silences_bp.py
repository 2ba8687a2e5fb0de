"""Silences and acknowledgements from the dashboard: the forms of /alerts and the host page.

The work and every check are :mod:`collector.alerts.muting_store`'s (shared with ``osmon
silence`` and ``osmon ack``); this blueprint only gates it like every change of the dashboard
(:mod:`web.backups_bp`): a POST with the session's CSRF token (checked for every POST in
:mod:`web.auth`), an admin password set and a logged-in admin.  The author is the admin
(the dashboard has one login).  A refused change shows the page it came from again, with the
reason and what was typed, and changes nothing.  Times typed here are UTC, as the pages show
them.  ``GET /api/silences`` lists the silences for scripts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timezone
from typing import Any

from flask import Blueprint, abort, flash, g, jsonify, redirect, request, url_for
from flask.typing import ResponseReturnValue

from collector.alerts import muting_store
from collector.alerts.muting_input import SilenceRequest
from collector.errors import MutingError
from web.auth import action_refusal
from web.fleet import current_fleet

bp = Blueprint("silences", __name__)

#: Who the dashboard's changes are by: it has one login.
AUTHOR = "admin"


@bp.get("/api/silences")
def api_list() -> ResponseReturnValue:
    fleet = current_fleet()
    return jsonify(muting_store.listing(fleet.muting(), fleet.clock()))


@bp.post("/silences")
def add() -> ResponseReturnValue:
    def run() -> str:
        form = request.form
        kind, _, name = form.get("target", "").partition(":")
        request_ = SilenceRequest(
            host=name if kind == "host" else None, tag=name if kind == "tag" else None,
            metric=form.get("metric") or None, item=form.get("item") or None,
            duration=None if form.get("until", "").strip() else form.get("duration", ""),
            until=form.get("until", "").strip() or None, reason=form.get("reason", ""))
        if kind not in ("host", "tag") or not name:
            raise MutingError("the silence was not added: choose a host or a tag")
        fleet = current_fleet()
        silence = muting_store.add_silence(fleet.config, request_, author=AUTHOR,
                                           now=fleet.clock(), zone=timezone.utc)
        return (f"Silenced {silence.scope} until {silence.end:%Y-%m-%d %H:%M} UTC "
                f"(silence {silence.id}).")

    return _act(run)


@bp.post("/silences/<silence_id>/remove")
def remove(silence_id: str) -> ResponseReturnValue:
    def run() -> str:
        fleet = current_fleet()
        silence = muting_store.remove_silence(fleet.config, silence_id, author=AUTHOR,
                                              now=fleet.clock())
        return f"Silence {silence.id} ({silence.scope}) removed: its alerts are mailed again."

    return _act(run)


@bp.post("/acks")
def acknowledge() -> ResponseReturnValue:
    def run() -> str:
        host, metric, item = _alert_named(request.form)
        fleet = current_fleet()
        ack = muting_store.acknowledge(fleet.config, host, metric, item,
                                       request.form.get("reason", ""), author=AUTHOR,
                                       now=fleet.clock())
        what = ack.metric + (f" {ack.item}" if ack.item else "")
        return (f"Acknowledged {what} on {ack.host}: no reminders until it recovers or gets "
                "worse.")

    return _act(run)


def _alert_named(form: Any) -> tuple[str, str, str | None]:
    """The alert of the form: ``alert`` (a JSON [host, metric, item] from the page's list),
    or ``host``, ``metric`` and ``item`` fields."""
    chosen = form.get("alert")
    if chosen:
        try:
            host, metric, item = json.loads(chosen)
        except (ValueError, TypeError):
            raise MutingError("nothing was acknowledged: choose an alert in the list") from None
        if not all(isinstance(v, str) for v in (host, metric)) or not (
                item is None or isinstance(item, str)):
            raise MutingError("nothing was acknowledged: choose an alert in the list")
        return host, metric, item
    return form.get("host", ""), form.get("metric", ""), form.get("item") or None


def _act(action: Callable[[], str]) -> ResponseReturnValue:
    """Run ``action`` if allowed, then back to the page the form was on."""
    refusal = action_refusal()
    if refusal:
        return _again(refusal, 403)
    try:
        done = action()
    except MutingError as exc:
        return _again(current_fleet().redact(str(exc)) or "refused", 400)
    flash(done)
    return redirect(_back_url())


def _back_url() -> str:
    host = _back_host()
    return url_for("pages.host", name=host) if host else url_for("pages.alerts")


def _back_host() -> str | None:
    """The host whose page the form was on (``back=host:<name>``), if it is one we know."""
    kind, _, name = request.form.get("back", "").partition(":")
    if kind != "host":
        return None
    if current_fleet().host(name) is None:
        abort(404, description=f"no host named {name!r} in the config")
    return name


def _again(error: str, status: int) -> ResponseReturnValue:
    """The page the form came from, with ``error`` and the form as it was typed."""
    from web import pages

    g.action_error = error
    g.action_form = request.form
    host = _back_host()
    body = pages.host(host) if host else pages.alerts()
    return body, status
