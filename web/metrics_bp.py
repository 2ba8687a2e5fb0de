"""``GET /metrics``: the fleet in the Prometheus exposition format, for Prometheus to scrape.

The series are :mod:`collector.views.exposition`'s; this blueprint only decides who may read
them and in which format.  The format follows the scraper's ``Accept`` header as
prometheus_client negotiates it: OpenMetrics 1.0 when asked for (Prometheus asks first), else
the text format 0.0.4.

Access is the dashboard's: it listens on loopback unless told otherwise, and with
``[web] require_login = true`` nothing is shown without the admin session.  Prometheus cannot
log in, so ``[web] metrics_token_file`` names a file holding a token it sends as
``Authorization: Bearer <token>``; that token opens ``/metrics`` and nothing else.  Once a token
file is set, ``/metrics`` asks for it even when the rest of the dashboard is open.  The token is
read from its file on each scrape (rotate it without a restart), compared in constant time,
and never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from flask import Blueprint, Response, request
from flask.typing import ResponseReturnValue
from prometheus_client.exposition import choose_encoder

from web.auth import is_admin
from web.fleet import current_fleet

log = logging.getLogger(__name__)

bp = Blueprint("metrics", __name__)

#: The formats this endpoint writes (prometheus_client's newer text "1.0.0" only adds
#: escaping of names osmon never uses).
TEXT = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


@bp.get("/metrics")
def metrics() -> ResponseReturnValue:
    refusal = _refusal()
    if refusal is not None:
        return refusal
    openmetrics = wants_openmetrics(request.headers.get("Accept", ""))
    body = current_fleet().exposition(openmetrics)
    return Response(body, content_type=OPENMETRICS if openmetrics else TEXT)


def wants_openmetrics(accept: str) -> bool:
    """prometheus_client's negotiation: OpenMetrics when the scraper lists it acceptably."""
    _encoder, content_type = choose_encoder(accept)
    return content_type.startswith("application/openmetrics-text")


def _refusal() -> ResponseReturnValue | None:
    web = current_fleet().config.web
    if web.metrics_token_file is None and not web.require_login:
        return None  # open, like the rest of this dashboard
    if is_admin():
        return None
    try:
        token = web.metrics_token()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        log.error("/metrics refused: cannot read [web] metrics_token_file %s (%s)",
                  web.metrics_token_file, reason)
        return _plain("the metrics token cannot be read on the server\n", 503)
    if token and bearer_matches(request.headers.get("Authorization", ""), token):
        return None
    log.warning("/metrics refused to %s: missing or wrong bearer token",
                request.remote_addr or "?")
    response = _plain("a bearer token is required (Authorization: Bearer ...)\n", 401)
    response.headers["WWW-Authenticate"] = 'Bearer realm="osmon metrics"'
    return response


def bearer_matches(header: str, token: str) -> bool:
    """``Authorization: Bearer <token>``, compared in constant time (digests of equal length,
    so not even the token's length leaks)."""
    scheme, _, sent = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not sent.strip():
        return False
    return hmac.compare_digest(hashlib.sha256(sent.strip().encode("utf-8", "replace")).digest(),
                               hashlib.sha256(token.encode("utf-8")).digest())


def _plain(text: str, status: int) -> Response:
    return Response(text, status=status, content_type="text/plain; charset=utf-8")
