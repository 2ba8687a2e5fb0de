"""The osmon dashboard: a Flask app that reads the store and never contacts a host."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from collector.config import Config
from collector.times import utc_now


def create_app(config: Config, *, test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app for ``config``; nothing is global, so tests build as many as they like.

    ``test_config`` overrides Flask settings; ``OSMON_CLOCK`` (a function returning an aware
    UTC datetime) pins "now" so tests never wait for time to pass.
    """
    from web import api, auth, backups_bp, charts_bp, metrics_bp, pages, security, silences_bp
    from web.fleet import Fleet

    app = Flask(__name__)
    app.config.from_mapping(MAX_CONTENT_LENGTH=64 * 1024, OSMON_CLOCK=utc_now)
    if test_config:
        app.config.update(test_config)
    app.extensions["osmon.fleet"] = Fleet(config, app.config["OSMON_CLOCK"])
    security.init_app(app)
    auth.init_app(app, config.state_dir,
                  secure_cookie=config.web.public_url.lower().startswith("https://"))
    for blueprint in (pages.bp, api.bp, charts_bp.bp, backups_bp.bp, silences_bp.bp,
                      metrics_bp.bp):
        app.register_blueprint(blueprint)
    return app
