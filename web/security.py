"""Security headers on every response, and the redaction of config secrets from host messages.

The dashboard shows text that comes from monitored hosts, so we assume some of it is hostile:
templates escape it, and this Content-Security-Policy is the second wall (no inline script,
no inline style, no plugin, no framing, forms only to ourselves).  Charts are SVG served as
``image/svg+xml`` and shown through ``<img>``, where scripts never run; the same policy covers
an SVG opened directly.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from flask import Flask, Response

from collector.config import Config

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


class Redactor:
    """Masks config secrets (key paths, data paths, the SMTP password) in collector messages.

    Host error messages are written by the SSH layer and may quote an identity file or a
    known_hosts path ("cannot read /home/osmon/.ssh/id_ed25519"); the dashboard must not reveal
    where keys or data live.  Only messages go through here, not host data such as mount
    points, so a mount named like the data directory is still shown as it is.
    """

    MASK = "[hidden]"

    def __init__(self, config: Config) -> None:
        settings = config.settings
        paths: list[Path | None] = [
            settings.data_dir, settings.backup_dir, settings.known_hosts,
            settings.osmon_known_hosts, settings.ssh_config, config.path.resolve().parent,
            config.smtp.password_file]
        paths += [h.identity_file for h in config.hosts]
        needles = set(_path_forms(p for p in paths if p is not None))
        secret = os.environ.get(config.smtp.password_env) if config.smtp.password_env else None
        if secret:
            needles.add(secret)
        # Longest first, so a file path is masked whole rather than its directory alone.
        self._needles = sorted((n for n in needles if len(n) >= 4), key=len, reverse=True)

    def __call__(self, text: str | None) -> str | None:
        if not text:
            return text
        for needle in self._needles:
            if needle in text:
                text = text.replace(needle, self.MASK)
        return text


def _path_forms(paths: Iterable[Path]) -> Iterable[str]:
    home = os.path.expanduser("~")
    for path in paths:
        text = str(path)
        yield text
        if home not in ("", "/") and text.startswith(home + os.sep):
            yield "~" + text[len(home):]
