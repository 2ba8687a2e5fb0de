"""``serve()``: the dashboard on waitress, started and stopped the way ``osmon run`` does it."""

from __future__ import annotations

import argparse
import logging
import socket
import threading
import urllib.request
from pathlib import Path

import pytest
from web_fixtures import NOW, fill, make_site

from collector.errors import OsmonError
from web import cmd_serve
from web.cmd_serve import serve


def test_serve_in_a_thread_answers_then_stops_on_close(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    fill(site.store, "central", NOW)
    server = serve(site.config, "127.0.0.1", 0)
    assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}/"
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    with urllib.request.urlopen(server.url + "api/hosts", timeout=30) as response:
        assert response.status == 200
        assert response.headers["Server"] == "osmon"
        assert b'"central"' in response.read()
    server.close()
    thread.join(timeout=30)
    assert not thread.is_alive()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", server.port), timeout=5):
        pass


def test_close_before_run_releases_the_port(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    server = serve(site.config, "127.0.0.1", 0)
    server.close()
    again = serve(site.config, "127.0.0.1", server.port)  # the port is free again
    again.close()


def test_a_busy_port_is_one_clear_error(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    first = serve(site.config, "127.0.0.1", 0)
    try:
        with pytest.raises(OsmonError, match=rf"cannot listen on 127\.0\.0\.1:{first.port}"):
            serve(site.config, "127.0.0.1", first.port)
    finally:
        first.close()


def test_listening_beyond_loopback_without_a_password_warns(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    site = make_site(tmp_path)
    # 192.0.2.1 (TEST-NET-1) is on no interface here: the bind fails, after the warning.
    with caplog.at_level(logging.WARNING), pytest.raises(OsmonError):
        serve(site.config, "192.0.2.1", 0)
    assert "no admin password is set" in caplog.text
    caplog.clear()
    site.set_password()
    with caplog.at_level(logging.WARNING), pytest.raises(OsmonError):
        serve(site.config, "192.0.2.1", 0)
    assert "no admin password" not in caplog.text
    caplog.clear()
    server = serve(site.config, "127.0.0.1", 0)
    server.close()
    assert caplog.text == ""


def test_default_is_loopback_port_5000_and_flags_override(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    parser = argparse.ArgumentParser()
    cmd_serve.configure(parser)  # the options of `osmon serve`
    args = parser.parse_args([])
    assert (args.host, args.port) == (None, None)  # so [web] (or its defaults) decides
    assert (site.config.web.host, site.config.web.port) == ("127.0.0.1", 5000)
    flags = parser.parse_args(["--host", "::1", "--port", "8080"])
    assert (flags.host, flags.port) == ("::1", 8080)
    server = serve(site.config, port=0)  # host from the config: loopback
    try:
        assert server.host == "127.0.0.1"
        with socket.create_connection(("127.0.0.1", server.port), timeout=5):
            pass
    finally:
        server.close()
