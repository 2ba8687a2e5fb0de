"""The admin login, the CSRF token, and the persistent session key.

One admin password, stored only as a salted hash in ``<data_dir>/state/web-admin.json``
(written by ``osmon set-password``).  Without it nothing that changes data can run: an
unconfigured dashboard exposed by mistake is read-only.  Sessions are Flask's signed cookies;
the key lives in ``<data_dir>/state/web-secret`` so a restart does not log everyone out, and a
session remembers a fingerprint of the password hash, so setting a new password ends every
older session.  Every POST, the login form included, must carry the session's CSRF token.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from collections import deque
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from werkzeug.security import check_password_hash, generate_password_hash

from collector.store.statefile import atomic_write_json, read_json
from web.fleet import current_fleet

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

ADMIN_FILE = "web-admin.json"
SECRET_FILE = "web-secret"
ADMIN_VERSION = 1
SESSION_LIFETIME = timedelta(hours=12)
NO_PASSWORD_MESSAGE = ("No admin password is set, so changes are disabled. Run "
                       "`osmon set-password` on the server to enable them.")
#: At most this many failed logins per client address per window, then 429.
MAX_FAILURES = 10
FAILURE_WINDOW_S = 600.0
#: Endpoints reachable without a session when the whole dashboard requires login
#: (``/metrics`` checks its own bearer token: see :mod:`web.metrics_bp`).
_PUBLIC_ENDPOINTS = {"auth.login", "static", "metrics.metrics"}


# -- the password file and the session key (no Flask: also used by `osmon set-password`) --------
def hash_password(password: str) -> str:
    # scrypt when this Python's OpenSSL has it (werkzeug's default), else strong PBKDF2.
    method = "scrypt" if hasattr(hashlib, "scrypt") else "pbkdf2:sha256:600000"
    return generate_password_hash(password, method=method)


def write_admin_password(state_dir: Path, password: str) -> Path:
    path = Path(state_dir) / ADMIN_FILE
    atomic_write_json(path, {"version": ADMIN_VERSION, "hash": hash_password(password),
                             "set_at": int(time.time())}, mode=0o600)
    return path


def read_admin_hash(state_dir: Path) -> str | None:
    value, problem = read_json(Path(state_dir) / ADMIN_FILE, ADMIN_VERSION)
    if problem:
        log.warning("%s; log in is impossible until `osmon set-password` is run", problem)
    digest = value.get("hash") if value else None
    return digest if isinstance(digest, str) and digest else None


def load_secret_key(state_dir: Path) -> bytes:
    """The session signing key, created once (0600) and shared by every osmon process.

    Created by writing a private temporary file and hard-linking it into place: of two
    processes starting together, exactly one link succeeds and both then use that key.
    """
    path = Path(state_dir) / SECRET_FILE
    try:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
        log.warning("%s is too short; making a new session key", path)
        path.unlink()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):  # another process won the race: use its
            os.link(tmp, path)
    finally:
        tmp.unlink()
    return path.read_bytes()


# -- Flask side ----------------------------------------------------------------------------------
def init_app(app: Flask, state_dir: Path, secure_cookie: bool) -> None:
    if not app.config.get("SECRET_KEY"):
        try:
            app.secret_key = load_secret_key(state_dir)
        except OSError as exc:
            log.warning("cannot keep the session key in %s (%s): sessions end at restart",
                        state_dir, exc.strerror)
            app.secret_key = secrets.token_bytes(32)
    app.config.setdefault("PERMANENT_SESSION_LIFETIME", SESSION_LIFETIME)
    app.config["SESSION_COOKIE_NAME"] = "osmon_session"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_SECURE"] = secure_cookie
    app.extensions["osmon.login_failures"] = _Failures()
    app.register_blueprint(bp)


def password_hash() -> str | None:
    return read_admin_hash(current_fleet().config.state_dir)


def _fingerprint(digest: str) -> str:
    return hashlib.sha256(digest.encode()).hexdigest()[:32]


def is_admin() -> bool:
    """Logged in, with the password that is set now (a new password ends older sessions)."""
    mark = session.get("admin")
    if not isinstance(mark, str):
        return False
    digest = password_hash()
    return digest is not None and hmac.compare_digest(mark, _fingerprint(digest))


def csrf_token() -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def action_refusal() -> str | None:
    """Why the current user may not change anything, or None when they may."""
    if password_hash() is None:
        return NO_PASSWORD_MESSAGE
    if not is_admin():
        return "Log in as admin first."
    return None


@bp.app_context_processor
def _template_globals() -> dict[str, object]:
    return {"csrf_token": csrf_token, "is_admin": is_admin, "action_refusal": action_refusal}


@bp.before_app_request
def _guard() -> ResponseReturnValue | None:
    if request.method == "POST":
        sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
        expected = session.get("csrf")
        if not isinstance(expected, str) or not hmac.compare_digest(sent, expected):
            abort(400, description="The form's security token is missing or out of date. "
                                   "Reload the page and try again.")
    if (current_fleet().config.web.require_login and request.endpoint not in _PUBLIC_ENDPOINTS
            and not is_admin()):
        if request.path.startswith("/api/"):
            return jsonify(error="login required"), 401
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    return None


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    target = _safe_next(request.values.get("next"))
    digest = password_hash()
    if digest is None:
        return render_template("login.html", next=target, error=NO_PASSWORD_MESSAGE), (
            403 if request.method == "POST" else 200)
    if request.method == "GET":
        return render_template("login.html", next=target)
    failures: _Failures = current_app.extensions["osmon.login_failures"]
    client = request.remote_addr or "?"
    if failures.too_many(client):
        return render_template("login.html", next=target,
                               error="Too many failed attempts; wait a few minutes."), 429
    if not check_password_hash(digest, request.form.get("password", "")):
        failures.record(client)
        log.warning("failed dashboard login from %s", client)
        return render_template("login.html", next=target, error="Wrong password."), 403
    # A new session on login: a token planted before it (session fixation) is worthless.
    session.clear()
    session.permanent = True
    session["admin"] = _fingerprint(digest)
    csrf_token()
    flash("Logged in.")
    return redirect(target)


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    session.clear()
    flash("Logged out.")
    return redirect(url_for("pages.overview"))


def _safe_next(target: str | None) -> str:
    """Only a path on this site: a login link must not bounce users to another one."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return url_for("pages.overview")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return url_for("pages.overview")
    return target


class _Failures:
    """Failed logins per client address over a sliding window (in memory, per process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, deque[float]] = {}

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._seen.setdefault(client, deque())
        while times and times[0] < now - FAILURE_WINDOW_S:
            times.popleft()
        return times

    def too_many(self, client: str) -> bool:
        with self._lock:
            return len(self._recent(client, time.monotonic())) >= MAX_FAILURES

    def record(self, client: str) -> None:
        with self._lock:
            now = time.monotonic()
            self._recent(client, now).append(now)
            if len(self._seen) > 10000:  # a flood of addresses must not grow memory forever
                self._seen = {k: v for k, v in self._seen.items() if v}
