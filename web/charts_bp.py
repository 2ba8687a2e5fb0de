"""Chart URLs: one SVG per host and metric, and one per metric for all hosts together.

Rendering is :mod:`collector.views.charts`' job (shared with ``osmon charts``); this blueprint maps
URLs to it and makes reloads cheap: the chart cache answers repeated requests, the ETag (or,
for clients that only keep dates, ``Last-Modified``) lets a browser revalidate with a 304,
and ``max-age`` of one collection interval stops refetches of
an image that cannot have changed.  ``?v=`` (ignored here) lets the page's script ask for a
fresh copy when a new sample arrives.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, Response, abort, current_app, request
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue

from collector.config import Host
from collector.metrics.series import CHECK_PREFIX
from collector.store.built_rollups import BuiltRollups
from collector.views import charts
from collector.views.chart_cache import ChartCache
from web.fleet import current_fleet
from web.security import SVG_CSP

bp = Blueprint("charts", __name__)

DEFAULT_RANGE = "24h"


@bp.record_once
def _create_cache(state: BlueprintSetupState) -> None:
    # One cache per app, not per module: two apps (tests, or serve + run) never share charts.
    state.app.extensions["osmon.chart_cache"] = ChartCache()
    # Rollups the files lack, built from raw once for every chart of the app (bounded).
    state.app.extensions["osmon.built_rollups"] = BuiltRollups()


def _built() -> BuiltRollups:
    return current_app.extensions["osmon.built_rollups"]


def requested_range(default: str = DEFAULT_RANGE) -> str:
    """The ``range`` query argument (``default`` when absent: 24h, the chart URLs' contract);
    anything unknown is a 400."""
    name = request.args.get("range", default)
    if name not in charts.RANGES:
        abort(400, description=f"unknown range {name!r}: use one of "
                               f"{', '.join(charts.RANGES)}")
    return name


def known_metric(metric: str) -> bool:
    """Built-in metrics, and ``check.<name>`` (whether that check exists is asked apart)."""
    return metric in charts.METRICS or metric.startswith(CHECK_PREFIX)


@bp.get("/hosts/<name>/charts/<metric>.svg")
def host_chart(name: str, metric: str) -> ResponseReturnValue:
    fleet = current_fleet()
    host = fleet.host(name)
    if host is None:
        abort(404, description=fleet.unknown_host(name))
    fit = request.args.get("fit") == "1"  # the axis starts at the first sample, if later
    return _render(metric, [host], lambda range_name, cache: charts.render_host_chart(
        fleet.store, name, metric, range_name, fleet.clock(), cache=cache,
        color=fleet.colors.get(name), built=_built(), fit=fit))


@bp.get("/charts/<metric>.svg")
def combined_chart(metric: str) -> ResponseReturnValue:
    fleet = current_fleet()
    tag = request.args.get("tag") or None
    hosts = [h for h in fleet.config.enabled_hosts if tag is None or tag in h.tags]
    if metric.startswith(CHECK_PREFIX):  # only the hosts that run the check: no empty lines
        hosts = [h for h in hosts if fleet.knows_check([h], metric[len(CHECK_PREFIX):])]
    return _render(metric, hosts, lambda range_name, cache: charts.render_combined_chart(
        fleet.store, [h.name for h in hosts], metric, range_name, fleet.clock(), cache=cache,
        colors=fleet.colors, built=_built()))


def _render(metric: str, hosts: list[Host], render: Callable[[str, Any], charts.Chart]
            ) -> Response:
    if not known_metric(metric) or (
            metric.startswith(CHECK_PREFIX)
            and not current_fleet().knows_check(hosts, metric[len(CHECK_PREFIX):])):
        abort(404, description=f"no chart named {metric!r}")
    range_name = requested_range()
    cache = current_app.extensions["osmon.chart_cache"]
    try:
        chart = render(range_name, cache)
    except ValueError:
        if metric in charts.METRICS:
            raise  # a known metric failing is a bug to see in the log, not a "not found"
        abort(404, description=f"no chart named {metric!r}")
    response = Response(chart.svg, mimetype="image/svg+xml")
    response.set_etag(chart.etag)
    if chart.modified:
        response.last_modified = datetime.fromtimestamp(int(chart.modified), timezone.utc)
    response.headers["Cache-Control"] = f"private, max-age={current_fleet().interval_s}"
    response.headers["Content-Security-Policy"] = SVG_CSP
    return response.make_conditional(request)
