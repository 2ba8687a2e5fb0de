"""Security headers on every response, and the redaction of config secrets from host messages.

The dashboard shows text that comes from monitored hosts, so we assume some of it is hostile:
templates escape it, and this Content-Security-Policy is the second wall (no inline script,
no inline style, no plugin, no framing, forms only to ourselves).  Charts are SVG served as
``image/svg+xml`` and shown through ``<img>``, where scripts never run; the same policy covers
an SVG opened directly.
"""

from __future__ import annotations

from flask import Flask, Response

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
