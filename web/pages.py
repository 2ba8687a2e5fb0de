"""The HTML pages: overview, one host, alerts, CERT-FR, fleet charts; and the error pages.

Every value shown comes from :class:`web.fleet.Fleet`, the same source as the JSON API that the
page's script polls, and every template is autoescaped: host data is text, never markup.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, abort, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from collector.alerts.muting_input import METRICS
from collector.metrics.registry import CHARTS, FAMILIES
from collector.metrics.series import CHECK_PREFIX
from collector.times import format_ts
from collector.views import charts
from web import cells, formats
from web.charts_bp import requested_range
from web.fleet import checks_list, current_fleet

bp = Blueprint("pages", __name__)

RANGE_LABELS = {"1h": "1 hour", "6h": "6 hours", "24h": "24 hours", "7d": "7 days",
                "30d": "30 days"}
#: What the host page shows of each family, in registry order.
SUMMARIES = tuple(f for f in FAMILIES if f.summary is not None)
FACTS = tuple(fact for f in FAMILIES for fact in f.facts)
TABLES = tuple(f.table for f in FAMILIES if f.table is not None)

for _name, _filter in formats.FILTERS.items():
    bp.add_app_template_filter(_filter, _name)
for _name, _global in cells.GLOBALS.items():
    bp.add_app_template_global(_global, _name)
bp.add_app_template_filter(lambda value, name: formats.FILTERS[name](value), "format_as")
bp.add_app_template_filter(cells.code_spans, "code_spans")


@bp.app_context_processor
def _layout() -> dict[str, Any]:
    fleet = current_fleet()
    now = fleet.clock()
    return {"interval_s": fleet.interval_s, "collector": fleet.collector(now),
            "generated": format_ts(now)}


@bp.get("/")
def overview() -> ResponseReturnValue:
    tag = request.args.get("tag") or None
    fleet = current_fleet()
    data = fleet.overview(tag)
    sparks = fleet.sparklines([h.name for h in data.hosts], data.now)
    return render_template("overview.html", data=data, tag=tag,
                           sparks={name: markup for name, (_spark, markup) in sparks.items()})


@bp.get("/hosts/<name>")
def host(name: str) -> ResponseReturnValue:
    fleet = current_fleet()
    host = fleet.host(name)
    if host is None:
        abort(404, description=fleet.unknown_host(name))
    now = fleet.clock()
    # Opened without a range: the smallest that holds the host's data, its axis fitted to it.
    fit = "range" not in request.args
    range_name = requested_range(default=fleet.opening_range(name, now))
    sample = fleet.latest(name)
    metrics = chart_metrics(fleet.chart_checks([host]), [sample])
    return render_template(
        "host.html", host=host, status=fleet.host_status(host, sample, now), sample=sample or {},
        checks=checks_list(sample), history=fleet.alert_history(limit=50, host=name),
        range_name=range_name, ranges=list(charts.RANGES), range_labels=RANGE_LABELS, fit=fit,
        metrics=list(metrics), metric_labels=metrics, summaries=SUMMARIES, facts=FACTS,
        tables=TABLES, active=fleet.active_alerts(name), silences=fleet.silences(host),
        alert_metrics=METRICS)


@bp.get("/alerts")
def alerts() -> ResponseReturnValue:
    fleet = current_fleet()
    tags = sorted({t for h in fleet.config.hosts for t in h.tags})
    targets = ([(f"host:{h.name}", h.name) for h in fleet.config.hosts]
               + [(f"tag:{t}", f"every host tagged {t}") for t in tags])
    return render_template("alerts.html", active=fleet.active_alerts(),
                           history=fleet.alert_history(limit=200), silences=fleet.silences(),
                           silence_targets=targets, alert_metrics=METRICS)


@bp.get("/certfr")
def certfr() -> ResponseReturnValue:
    fleet = current_fleet()
    return render_template("certfr.html", items=fleet.certfr(limit=50), feed=fleet.certfr_feed())


@bp.get("/charts")
def fleet_charts() -> ResponseReturnValue:
    fleet = current_fleet()
    tag = request.args.get("tag") or None
    tags = sorted({t for h in fleet.config.enabled_hosts for t in h.tags})
    hosts = [h for h in fleet.config.enabled_hosts if tag is None or tag in h.tags]
    metrics = chart_metrics(fleet.chart_checks(hosts), [fleet.latest(h.name) for h in hosts])
    return render_template("charts.html", range_name=requested_range(), ranges=list(charts.RANGES),
                           range_labels=RANGE_LABELS, metrics=list(metrics),
                           metric_labels=metrics, tag=tag, tags=tags,
                           newest=fleet.newest(hosts))


def chart_metrics(checks: list[str], samples: list[dict[str, Any] | None]) -> dict[str, str]:
    """Metric name -> caption of the charts a page shows: the built-in ones, then one per
    check that reports numbers (``check.<name>``).  A family that only some kernels have
    (``Family.optional``) is shown when one of ``samples`` (the hosts' newest) holds it."""
    metrics = {name: family.chart.title for name, family in CHARTS.items()
               if family.chart is not None and (not family.optional or any(
                   isinstance(s, dict) and family.section in s for s in samples))}
    metrics.update((f"{CHECK_PREFIX}{name}", f"Check {name}") for name in checks)
    return metrics


@bp.app_errorhandler(HTTPException)
def _error(exc: HTTPException) -> ResponseReturnValue:
    """JSON errors for the API (scripts parse them), a plain page for people."""
    if request.path.startswith("/api/"):
        return jsonify(error=exc.description or exc.name), exc.code or 500
    return render_template("error.html", error=exc), exc.code or 500


def http_link(url: Any) -> str | None:
    """A feed's link, only if it is http(s): a ``javascript:`` URL must never be clickable."""
    if not isinstance(url, str):
        return None
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return None
    return url.strip() if scheme in ("http", "https") else None


bp.add_app_template_filter(http_link, "http_link")
