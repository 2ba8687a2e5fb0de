"""Security headers on every response, and who the client is behind a trusted proxy.

The dashboard shows text that comes from monitored hosts, so we assume some of it is hostile:
templates escape it, and this Content-Security-Policy is the second wall (no inline script,
no inline style, no plugin, no framing, forms only to ourselves).  Charts are SVG served as
``image/svg+xml`` and shown through ``<img>``, where scripts never run; the same policy covers
an SVG opened directly.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from flask import Flask, Response
from werkzeug.middleware.proxy_fix import ProxyFix

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")

#: Charts: pygal puts its CSS in a <style> element inside the SVG.  An SVG opened on its own
#: is a document, so it gets its own policy: inline style allowed, nothing else at all (no
#: script of any kind, no external fetch).  Shown through <img>, it can run nothing anyway.
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"

HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def init_app(app: Flask) -> None:
    app.after_request(add_headers)


def add_headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    # Pages and API answers are live data behind a possible login: never cache them.  Charts
    # and static files set their own (ETag-validated) policy before we get here.
    response.headers.setdefault("Cache-Control", "no-store")
    return response


class TrustedProxies:
    """werkzeug's :class:`ProxyFix` (one proxy: the client address it appends to
    ``X-Forwarded-For``, and the scheme it was reached with), applied only to requests that
    come from one of ``networks`` (``[web] trusted_proxies``).

    Behind a reverse proxy every client has the proxy's address, so the login throttle would
    lock everyone out together; but a header anyone can send must not be believed from
    anyone else, or a client could pick a new address for each guess.
    """

    def __init__(self, app: Any, networks: Iterable[str]) -> None:
        self.app = app
        self.fixed = ProxyFix(app, x_for=1, x_proto=1)
        self.networks = [ipaddress.ip_network(n) for n in networks]

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        try:
            peer = ipaddress.ip_address(environ.get("REMOTE_ADDR", ""))
        except ValueError:
            return self.app(environ, start_response)
        if any(peer in network for network in self.networks):
            return self.fixed(environ, start_response)
        return self.app(environ, start_response)
