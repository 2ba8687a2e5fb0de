"""The JSON API: what the pages poll for live updates, and what scripts read.

``/api/overview`` and ``/api/hosts`` list every host's status; ``/api/hosts/<name>`` is one
host's page as data; ``/api/hosts/<name>/samples?range=`` streams stored samples (optionally
only some ``fields``, or one chart's ``metric``), :data:`MAX_EXPORTS` at a time;
``/api/alerts`` and ``/api/certfr`` mirror their pages.  Errors are ``{"error": "..."}`` with
404 (unknown host or metric), 400 (bad range) or 503 with ``Retry-After`` (too many exports
at once).  Host data is returned as JSON strings, exactly as stored: a reader that puts it in
HTML must escape it (``app.js`` only ever assigns ``textContent``); served as
``application/json`` with ``nosniff``, it is never markup.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, request, url_for
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue

from collector.config import Host
from collector.metrics import series
from collector.times import format_ts
from collector.views import charts
from collector.views.health import HostStatus
from web.charts_bp import requested_range
from web.fleet import checks_list, current_fleet

bp = Blueprint("api", __name__, url_prefix="/api")

MAX_HISTORY = 1000
#: Sample exports streamed at once (30 days of a host is tens of thousands of lines, seconds of
#: a thread each); the others are refused at once with 503 and Retry-After, so twelve
#: scripts asking together cannot take every thread of the server from the pages.
MAX_EXPORTS = 2
EXPORT_RETRY_S = 10


@bp.record_once
def _create_export_slots(state: BlueprintSetupState) -> None:
    state.app.extensions["osmon.export_slots"] = threading.BoundedSemaphore(MAX_EXPORTS)


def summary(status: HostStatus) -> dict[str, Any]:
    data = status.as_dict()
    data["url"] = url_for("pages.host", name=status.name)
    return data


@bp.get("/overview")
def overview() -> ResponseReturnValue:
    fleet = current_fleet()
    overview = fleet.overview(request.args.get("tag") or None)
    data = overview.as_dict(summary)
    data["interval_s"] = fleet.interval_s
    sparks = fleet.sparklines([h.name for h in overview.hosts], overview.now)
    for host in data["hosts"]:  # the page redraws its sparklines from these
        host["last_hour"] = sparks[host["name"]][0].as_dict()
    return jsonify(data)


@bp.get("/hosts")
def hosts() -> ResponseReturnValue:
    data = current_fleet().overview()
    return jsonify(generated=format_ts(data.now), hosts=[summary(h) for h in data.hosts])


@bp.get("/hosts/<name>")
def host(name: str) -> ResponseReturnValue:
    fleet = current_fleet()
    host = _known_host(name)
    now = fleet.clock()
    sample = fleet.latest(name)
    # The disks of the newest good sample, with their forecasts: still there when the newest
    # passes failed (``full_in_s`` counts from ``disks_ts``).
    good = sample if sample and sample.get("ok") is True else fleet.latest_good(name)
    disks = good.get("disks") if good else None
    return jsonify(
        generated=format_ts(now), interval_s=fleet.interval_s,
        collector=fleet.collector(now).as_dict(),
        host=summary(fleet.host_status(host, sample, now)), sample=sample,
        disks=disks if isinstance(disks, list) else [],
        disks_ts=good.get("ts") if good and isinstance(disks, list) else None,
        checks=checks_list(sample), active_alerts=fleet.active_alerts(name),
        history=fleet.alert_history(limit=50, host=name))


@bp.get("/hosts/<name>/samples")
def samples(name: str) -> ResponseReturnValue:
    """Samples of a range, oldest first, streamed: 30 days is tens of thousands of lines.

    ``?fields=cpu.percent,memory.percent`` keeps only those dotted paths (and ``ts``);
    ``?metric=disk`` (a chart's name, ``check.<name>`` too) gives each sample as ``ts``,
    ``ok`` and ``values``, the numbers that chart draws (one per mount for ``disk``).
    """
    fleet = current_fleet()
    _known_host(name)
    range_name = requested_range()
    fields = [f.split(".") for f in request.args.get("fields", "").split(",") if f]
    metric = request.args.get("metric")
    if metric is not None and fields:
        abort(400, description="ask for either fields or metric, not both")
    spec = _known_metric(metric) if metric is not None else None
    end = fleet.clock()
    start = end - charts.RANGES[range_name]
    head = {"host": name, "range": range_name, "start": format_ts(start), "end": format_ts(end)}
    if spec is not None:
        head["metric"] = spec.name
        rows: Iterator[dict[str, Any]] = (_metric_row(s, spec)
                                          for s in fleet.samples(name, start, end))
    else:
        rows = (_project(s, fields) if fields else s for s in fleet.samples(name, start, end))
    slots: threading.BoundedSemaphore = current_app.extensions["osmon.export_slots"]
    if not slots.acquire(blocking=False):
        busy = jsonify(error=f"{MAX_EXPORTS} sample exports are running; try again in "
                             f"{EXPORT_RETRY_S} s")
        busy.status_code = 503
        busy.headers["Retry-After"] = str(EXPORT_RETRY_S)
        return busy
    release = _once(slots.release)
    response = Response(_releasing(_stream(json.dumps(head)[:-1], rows), release),
                        mimetype="application/json")
    # Held while the body streams: released when it ends, or when the server closes the
    # response (sent, or the client went away, even before the first row).
    response.call_on_close(release)
    return response


def _releasing(chunks: Iterator[str], release: Callable[[], None]) -> Iterator[str]:
    try:
        yield from chunks
    finally:
        release()


@bp.get("/alerts")
def alerts() -> ResponseReturnValue:
    fleet = current_fleet()
    raw = request.args.get("limit", "200")
    limit = int(raw) if raw.isdigit() else 0
    if not 1 <= limit <= MAX_HISTORY:
        abort(400, description=f"limit must be between 1 and {MAX_HISTORY}")
    now = fleet.clock()
    return jsonify(generated=format_ts(now), collector=fleet.collector(now).as_dict(),
                   active=fleet.active_alerts(), history=fleet.alert_history(limit=limit))


@bp.get("/certfr")
def certfr() -> ResponseReturnValue:
    fleet = current_fleet()
    return jsonify(generated=format_ts(fleet.clock()), alerts=fleet.certfr(limit=50),
                   feed=fleet.certfr_feed())


def _known_host(name: str) -> Host:
    host = current_fleet().host(name)
    if host is None:
        abort(404, description=current_fleet().unknown_host(name))
    return host


def _known_metric(metric: str) -> series.MetricSpec:
    try:
        return series.metric_spec(metric)
    except ValueError:
        abort(404, description=f"no metric named {metric!r}: use one of "
                               f"{', '.join(charts.METRICS)} or check.<name>")


def _once(release: Callable[[], None]) -> Callable[[], None]:
    done = threading.Lock()

    def call() -> None:
        if done.acquire(blocking=False):
            release()

    return call


def _metric_row(sample: dict[str, Any], spec: series.MetricSpec) -> dict[str, Any]:
    ok = sample.get("ok") is not False
    return {"ts": sample.get("ts"), "ok": ok, "values": spec.extract(sample) if ok else {}}


def _stream(head: str, rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    yield head + ', "samples": ['
    first = True
    for item in rows:
        yield ("" if first else ",\n") + json.dumps(item, ensure_ascii=False,
                                                     separators=(",", ":"))
        first = False
    yield "]}\n"


def _project(sample: dict[str, Any], fields: list[list[str]]) -> dict[str, Any]:
    result: dict[str, Any] = {"ts": sample.get("ts")}
    for path in fields:
        value: Any = sample
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        result[".".join(path)] = value
    return result

