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
from collections.abc import Callable
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
#: A login made this far "in the future" (the clock stepped back since) still counts.
CLOCK_SLACK_S = 300
NO_PASSWORD_MESSAGE = ("No admin password is set, so changes are disabled. Run "
                       "`osmon set-password` on the server to enable them.")
#: At most this many failed logins per client address per window, then 429 for that client.
MAX_FAILURES = 10
#: Past this many from all clients together (guesses spread over many addresses), every login
#: attempt waits GLOBAL_DELAY_S before its password is checked, until the window has moved
#: on: a guesser gets a few guesses a second at most, and nobody is refused (a refusal for
#: everyone would let anyone who reaches /login keep the admin out for ever).
MAX_FAILURES_ALL = 100
GLOBAL_DELAY_S = 2.0
FAILURE_WINDOW_S = 600.0
#: Clients remembered at most (the oldest are forgotten first), whatever the flood.
MAX_CLIENTS = 10000
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
    """Logged in, with the password that is set now (a new password ends older sessions),
    less than the session lifetime ago.

    The cookie's own expiry is the browser's business and its signature's age is renewed on
    every request (a dashboard left open polls the API), so the login time is kept in the
    session and checked here: a login lasts ``PERMANENT_SESSION_LIFETIME`` whatever the
    client does with its cookie."""
    mark = session.get("admin")
    if not isinstance(mark, str) or not _logged_in_recently(session.get("since")):
        return False
    digest = password_hash()
    return digest is not None and hmac.compare_digest(mark, _fingerprint(digest))


def _logged_in_recently(since: object) -> bool:
    if not isinstance(since, int) or isinstance(since, bool):
        return False
    age = time.time() - since
    # A little slack before: the clock may step back after a login.
    return -CLOCK_SLACK_S <= age <= current_app.permanent_session_lifetime.total_seconds()


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
    if failures.flooded():
        # Holds this server thread for the delay: a flood that could use that to tie up the
        # dashboard's threads could tie them up with password checks (scrypt) as well.
        time.sleep(GLOBAL_DELAY_S)
    if not check_password_hash(digest, request.form.get("password", "")):
        failures.record(client)
        log.warning("failed dashboard login from %s", client)
        return render_template("login.html", next=target, error="Wrong password."), 403
    # A new session on login: a token planted before it (session fixation) is worthless.
    session.clear()
    session.permanent = True
    session["admin"] = _fingerprint(digest)
    session["since"] = int(time.time())
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
    """Failed logins per client address, and of all clients together, over a sliding window
    (in memory, per process).

    Bounded: clients whose failures are all older than the window are dropped on every
    record, and beyond :data:`MAX_CLIENTS` the longest quiet ones go first, so a flood of
    addresses costs a bounded table.  ``clock`` is injectable for tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, deque[float]] = {}
        self._all: deque[float] = deque(maxlen=MAX_FAILURES_ALL)  # the newest are enough
        #: The global limit is passed and that was logged (once until it is no longer).
        self._tripped = False

    def _drop_old(self, times: deque[float], now: float) -> deque[float]:
        while times and times[0] < now - FAILURE_WINDOW_S:
            times.popleft()
        return times

    def too_many(self, client: str) -> bool:
        """This client has used up its failures of the window."""
        with self._lock:
            times = self._seen.get(client)
            return times is not None and len(self._drop_old(times, self._clock())) >= MAX_FAILURES

    def flooded(self) -> bool:
        """All clients together have: every login is slowed down."""
        with self._lock:
            return self._flooded(self._clock())

    def _flooded(self, now: float) -> bool:
        flooded = len(self._drop_old(self._all, now)) >= MAX_FAILURES_ALL
        if flooded and not self._tripped:
            log.error("%d failed dashboard logins from all addresses in %d minutes: every login "
                      "now waits %g s until there are fewer (passwords guessed from many "
                      "addresses?)", len(self._all), FAILURE_WINDOW_S // 60, GLOBAL_DELAY_S)
        self._tripped = flooded
        return flooded

    def record(self, client: str) -> None:
        with self._lock:
            now = self._clock()
            self._all.append(now)
            self._flooded(now)
            self._seen.setdefault(client, deque()).append(now)
            self._seen = {k: v for k, v in self._seen.items() if self._drop_old(v, now)}
            if len(self._seen) > MAX_CLIENTS:
                newest = sorted(self._seen, key=lambda k: self._seen[k][-1])[-MAX_CLIENTS:]
                self._seen = {k: self._seen[k] for k in newest}

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)
