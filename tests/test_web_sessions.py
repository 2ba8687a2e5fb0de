"""The admin login lasts 12 hours whatever the client does with its cookie, and the login
throttle counts real clients behind a trusted reverse proxy, all of them together too, in a
table that forgets old entries."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from web_fixtures import NOW, PASSWORD, csrf_from, fill, log_in, make_site

from web import auth

ADMIN_PAGE = "/backups"
ADMIN_MARK = "Create a backup now"


def session_cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie("osmon_session")
    assert cookie is not None
    return cookie.value


def forged(app: Flask, data: dict[str, Any], signed_at: float) -> str:
    """A session cookie for ``data`` signed with the app's key at ``signed_at``: what a
    client that kept an old cookie (or edited its expiry) sends."""
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    assert serializer is not None
    real_time = time.time
    time.time = lambda: signed_at  # itsdangerous stamps the signature with time.time()
    try:
        return serializer.dumps(data)
    finally:
        time.time = real_time


def read_session(app: Flask, cookie: str) -> dict[str, Any]:
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    return dict(serializer.loads(cookie))


def test_the_session_cookie_expires_after_12_hours_not_31_days(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    site.set_password()
    client = site.client()
    response = log_in(client)
    [cookie] = [h for h in response.headers.getlist("Set-Cookie")
                if h.startswith("osmon_session=")]
    expires = parsedate_to_datetime(cookie.split("Expires=")[1].split(";")[0])
    assert expires - datetime.now(timezone.utc) <= timedelta(hours=12, minutes=1)


def test_a_back_dated_session_cookie_is_refused(tmp_path: Path) -> None:
    site = make_site(tmp_path, web="require_login = true")
    fill(site.store, "central", NOW)
    site.set_password()
    app = site.app()
    client = app.test_client()
    log_in(client)
    assert ADMIN_MARK in client.get(ADMIN_PAGE).get_data(as_text=True)
    data = read_session(app, session_cookie(client))
    old = forged(app, data, time.time() - 13 * 3600)
    stale = app.test_client()
    stale.set_cookie("osmon_session", old)
    assert stale.get("/").status_code == 302  # to the login page
    assert stale.get("/api/hosts").status_code == 401


def test_a_login_ends_after_12_hours_even_if_the_cookie_is_kept_fresh(tmp_path: Path) -> None:
    """A dashboard left open polls the API, which renews the cookie's signature every
    minute: the login's own age is what ends it."""
    site = make_site(tmp_path)
    site.set_password()
    app = site.app()
    client = app.test_client()
    log_in(client)
    data = read_session(app, session_cookie(client))
    data["since"] = int(time.time()) - 12 * 3600 - 60
    kept = app.test_client()
    kept.set_cookie("osmon_session", forged(app, data, time.time()))
    assert ADMIN_MARK not in kept.get(ADMIN_PAGE).get_data(as_text=True)
    data["since"] = int(time.time()) - 11 * 3600
    recent = app.test_client()
    recent.set_cookie("osmon_session", forged(app, data, time.time()))
    assert ADMIN_MARK in recent.get(ADMIN_PAGE).get_data(as_text=True)


# -- the login throttle behind a reverse proxy -------------------------------------------------
def attempt(client: FlaskClient, password: str, *, peer: str,
            forwarded_for: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    environ = {"REMOTE_ADDR": peer}
    token = csrf_from(client)
    return client.post("/login", data={"csrf_token": token, "password": password},
                       headers=headers, environ_base=environ).status_code


def test_behind_a_trusted_proxy_one_client_is_throttled_not_everyone(tmp_path: Path) -> None:
    site = make_site(tmp_path, web='trusted_proxies = ["127.0.0.1"]')
    site.set_password()
    app = site.app()
    guesser, admin = app.test_client(), app.test_client()
    for _ in range(auth.MAX_FAILURES):
        assert attempt(guesser, "nope", peer="127.0.0.1", forwarded_for="203.0.113.5") == 403
    assert attempt(guesser, PASSWORD, peer="127.0.0.1", forwarded_for="203.0.113.5") == 429
    assert attempt(admin, PASSWORD, peer="127.0.0.1", forwarded_for="198.51.100.20") == 302


def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy(tmp_path: Path) -> None:
    """Otherwise a guesser would name a new address for every guess."""
    for web in ("", 'trusted_proxies = ["127.0.0.1"]'):
        folder = tmp_path / ("proxy" if web else "direct")
        folder.mkdir()
        site = make_site(folder, web=web)
        site.set_password()
        client = site.app().test_client()
        for n in range(auth.MAX_FAILURES):
            assert attempt(client, "nope", peer="192.0.2.7",
                           forwarded_for=f"203.0.113.{n}") == 403
        assert attempt(client, PASSWORD, peer="192.0.2.7", forwarded_for="203.0.113.99") == 429


def test_guesses_spread_over_many_clients_slow_every_login_but_lock_no_one_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Past the global limit every login waits (a guesser on many addresses gets few guesses a
    second), but none is refused: whoever can reach /login must not keep the admin out."""
    monkeypatch.setattr(auth, "MAX_FAILURES_ALL", 15)  # each guess costs a real scrypt check
    monkeypatch.setattr(auth, "GLOBAL_DELAY_S", 0.5)
    caplog.set_level(logging.WARNING, logger=auth.__name__)
    site = make_site(tmp_path)
    site.set_password()
    client = site.app().test_client()
    for n in range(15):
        assert attempt(client, "nope", peer=f"203.0.113.{n}") == 403
    for n in range(15, 18):  # the guesses go on, each answered, slowly
        started = time.monotonic()
        assert attempt(client, "nope", peer=f"203.0.113.{n}") == 403
        assert time.monotonic() - started >= auth.GLOBAL_DELAY_S
    started = time.monotonic()
    assert attempt(client, PASSWORD, peer="198.51.100.1") == 302  # the admin gets in
    assert time.monotonic() - started >= auth.GLOBAL_DELAY_S
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors  # once, when the limit tripped
    assert "15 failed dashboard logins from all addresses" in errors[0]
    assert "every login now waits 0.5 s" in errors[0]


def test_the_global_slow_down_ends_when_the_window_has_moved_on(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "MAX_FAILURES_ALL", 5)
    now = [1000.0]
    failures = auth._Failures(clock=lambda: now[0])
    for n in range(5):
        assert not failures.flooded()
        failures.record(f"203.0.113.{n}")
    assert failures.flooded() and not failures.too_many("203.0.113.1")
    now[0] += auth.FAILURE_WINDOW_S + 1
    assert not failures.flooded()


def test_the_failure_table_forgets_clients_once_their_window_has_passed() -> None:
    now = [1000.0]
    failures = auth._Failures(clock=lambda: now[0])
    for n in range(500):
        failures.record(f"203.0.113.{n % 250}/{n}")
    assert len(failures) == 500
    now[0] += auth.FAILURE_WINDOW_S + 1
    failures.record("198.51.100.1")
    assert len(failures) == 1
    assert not failures.too_many("203.0.113.1/1")
    assert len(failures) == 1  # asking about a client does not remember it
