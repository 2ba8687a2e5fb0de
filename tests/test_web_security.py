"""The dashboard is safe to expose: escaping, headers, no secrets, CSRF, login, password file."""

from __future__ import annotations

import base64
import io
import json
import os
import pty
import select
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markupsafe import escape
from web_fixtures import (
    NOW,
    PASSWORD,
    SECRET_ENV,
    SMTP_PASSWORD,
    XSS_CMDLINE,
    XSS_HOSTNAME,
    XSS_MOUNT,
    XSS_PROCESS,
    XSS_USER,
    Site,
    csrf_from,
    failed_sample,
    fill,
    hostile_sample,
    log_in,
    make_site,
)

from collector import cli
from collector.alerts import muting_store
from collector.alerts import rules as alert_rules
from collector.alerts import state as alert_store
from collector.alerts.muting_input import SilenceRequest
from collector.times import format_ts
from web.auth import ADMIN_FILE, SECRET_FILE, read_admin_hash
from web.security import CSP, SVG_CSP

HOSTILE = (XSS_PROCESS, XSS_MOUNT, XSS_USER, XSS_HOSTNAME, XSS_CMDLINE)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Site:
    monkeypatch.setenv(SECRET_ENV, SMTP_PASSWORD)
    s = make_site(tmp_path, [{"name": "central", "local": True},
                             {"name": "evil", "tags": ["web"]},
                             {"name": "db1"}])
    fill(s.store, "central", NOW, count=3)
    s.store.append("evil", hostile_sample("evil", NOW))
    # What an SSH layer might write: the message quotes the key file and the data directory.
    s.store.append("db1", failed_sample(
        "db1", NOW, "auth", f"cannot read {s.identity_file}; see {s.config.settings.data_dir}"
                            f" (password {SMTP_PASSWORD})"))
    return s


GET_ROUTES = ["/", "/hosts/evil", "/hosts/db1", "/hosts/central", "/alerts", "/certfr",
              "/backups", "/login", "/charts", "/api/overview", "/api/hosts",
              "/api/hosts/evil", "/api/hosts/db1", "/api/hosts/db1/samples?range=1h",
              "/api/alerts", "/api/certfr", "/hosts/db1/charts/cpu.svg",
              "/charts/disk.svg?range=1h", "/hosts/evil/charts/disk.svg", "/hosts/nope",
              "/api/hosts/nope"]


# -- escaping ------------------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["/", "/hosts/evil"])
def test_host_data_is_escaped_in_every_page(site: Site, url: str) -> None:
    page = site.client().get(url).get_data(as_text=True)
    for hostile in HOSTILE:
        assert hostile not in page, hostile
    assert "<script>alert" not in page and "<img src=x" not in page and "<b>mallory" not in page
    shown = (XSS_MOUNT,) if url == "/" else HOSTILE
    for hostile in shown:
        assert str(escape(hostile)) in page, hostile  # shown, as text


def test_alert_messages_about_hostile_mounts_are_escaped(site: Site) -> None:
    hostile = hostile_sample("evil", NOW)
    hostile["disks"][0]["percent"] = 99.0
    state, notes = alert_rules.evaluate(site.config, alert_store.load_state(
        site.config.state_dir)[0], {"evil": hostile}, NOW)
    alert_store.save_state(site.config.state_dir, state)
    alert_store.append_history(site.config.state_dir,
                               [n.history_record(format_ts(NOW)) for n in notes])
    for url in ("/alerts", "/hosts/evil"):
        page = site.client().get(url).get_data(as_text=True)
        assert XSS_MOUNT not in page
        assert str(escape(XSS_MOUNT)) in page, url
    assert site.client().get("/api/alerts").get_json()["active"][0]["item"] == XSS_MOUNT


def test_what_admins_type_in_silences_and_acks_is_escaped(site: Site) -> None:
    """Reasons, authors and items are typed by people (or a script, or a compromised account):
    text on every page, plain strings in the API, never markup."""
    hostile = hostile_sample("evil", NOW)
    hostile["disks"][0]["percent"] = 99.0
    state, _notes = alert_rules.evaluate(site.config, None, {"evil": hostile}, NOW)
    alert_store.save_state(site.config.state_dir, state)
    muting_store.add_silence(site.config, SilenceRequest(
        tag="web", metric="disk", item=XSS_MOUNT, duration="1h", reason=XSS_PROCESS),
        author=XSS_USER, now=NOW, zone=None)
    muting_store.add_silence(site.config, SilenceRequest(host="evil", duration="2h",
                                                         reason=XSS_CMDLINE),
                             author=XSS_USER, now=NOW, zone=None)
    muting_store.acknowledge(site.config, "evil", "disk", XSS_MOUNT, XSS_HOSTNAME,
                             author=XSS_USER, now=NOW)
    site.set_password()
    admin = site.client()
    log_in(admin)
    typed = (XSS_PROCESS, XSS_CMDLINE, XSS_HOSTNAME, XSS_USER, XSS_MOUNT)
    for url in ("/", "/alerts", "/hosts/evil"):
        page = admin.get(url).get_data(as_text=True)
        for text in typed:
            assert text not in page, (url, text)
        assert "<script>alert" not in page and "<img src=x" not in page, url
        assert str(escape(XSS_CMDLINE)) in page, url  # shown, as text
    alerts_page = admin.get("/alerts").get_data(as_text=True)
    for text in typed:
        assert str(escape(text)) in alerts_page, text
    listed = admin.get("/api/silences").get_json()["silences"]
    assert {(s["item"], s["reason"], s["author"]) for s in listed} == {
        (XSS_MOUNT, XSS_PROCESS, XSS_USER), (None, XSS_CMDLINE, XSS_USER)}
    active = admin.get("/api/alerts").get_json()["active"][0]
    assert active["ack"]["reason"] == XSS_HOSTNAME and active["silenced"]["reason"] == XSS_CMDLINE


def test_api_returns_host_data_as_plain_json_strings(site: Site) -> None:
    data = site.client().get("/api/hosts/evil").get_json()
    process = data["sample"]["processes"]["top"][0]
    assert (process["name"], process["user"], process["cmdline"]) == (
        XSS_PROCESS, XSS_USER, XSS_CMDLINE)
    assert data["sample"]["disks"][0]["mount"] == XSS_MOUNT
    assert data["sample"]["system"]["hostname"] == XSS_HOSTNAME
    assert data["host"]["disk_mount"] == XSS_MOUNT


#: What a host could put in a mount point or a perfdata label to break out of SVG text, an
#: attribute, a <script> or a CDATA section.
SVG_HOSTILE = (XSS_PROCESS, "</script><script>alert(4)</script>", "]]><script>alert(5)</script>",
               XSS_MOUNT)


def _svg_breakouts(root: ET.Element) -> list[str]:
    """Elements and attributes that would run or fetch something, had host text become markup."""
    found = []
    for element in root.iter():
        tag = str(element.tag).rsplit("}", 1)[-1].lower()
        if tag in ("script", "img", "foreignobject", "iframe", "a", "image", "use"):
            found.append(tag)
        found += [k for k in element.attrib if k.lower().startswith("on") or "href" in k]
    return found


def test_charts_carry_host_text_only_as_escaped_text(site: Site) -> None:
    hostile = hostile_sample("evil", NOW + timedelta(seconds=1))
    hostile["disks"] = [dict(hostile["disks"][0], mount=m, percent=10.0 + i)
                        for i, m in enumerate(SVG_HOSTILE)]
    hostile["checks"] = {"web": {"state": 0, "output": XSS_PROCESS, "long_output": "",
                                 "perf": {m: {"value": float(i), "uom": ""}
                                          for i, m in enumerate(SVG_HOSTILE)}}}
    site.store.append("evil", hostile)
    site.now = NOW + timedelta(seconds=1)
    client = site.client()
    for url in ("/hosts/evil/charts/disk.svg?range=1h", "/hosts/evil/charts/check.web.svg",
                "/charts/disk.svg?range=1h", "/charts/check.web.svg?range=1h"):
        response = client.get(url)
        assert response.status_code == 200 and response.mimetype == "image/svg+xml", url
        svg = response.data
        root = ET.fromstring(svg)  # still well-formed XML: nothing broke out of its element
        assert _svg_breakouts(root) == [], url
        for needle in (b"<script", b"<img", b"]]>", b"javascript:"):
            assert needle not in svg, (url, needle)
        if url.startswith("/hosts/"):
            # Each hostile name is shown whole, as text, in the legend's <title> tooltip.
            titles = {e.text for e in root.iter("{http://www.w3.org/2000/svg}title")}
            assert set(SVG_HOSTILE) <= titles, url


# -- headers -------------------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["/", "/api/hosts", "/hosts/evil/charts/cpu.svg", "/nope",
                                 "/static/app.js", "/login", "/charts/cpu.svg"])
def test_security_headers_on_every_response(site: Site, url: str) -> None:
    with site.client().get(url) as response:
        svg = response.mimetype == "image/svg+xml"
        assert response.headers["Content-Security-Policy"] == (SVG_CSP if svg else CSP)
        assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "Cache-Control" in response.headers


def test_a_chart_opened_alone_may_style_itself_but_never_script() -> None:
    assert "default-src 'none'" in SVG_CSP and "script-src" not in SVG_CSP
    assert "frame-ancestors 'none'" in SVG_CSP


def test_pages_and_api_are_never_cached(site: Site) -> None:
    for url in ("/", "/api/hosts", "/hosts/evil"):
        assert site.client().get(url).headers["Cache-Control"] == "no-store"


class _InlineFinder(HTMLParser):
    """Collects what the CSP would block: inline scripts, handlers, style attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names or tag == "style":
            self.found.append(f"<{tag}>")
        self.found += [f"{tag} {name}" for name in names
                       if name.startswith("on") or name == "style"]


def test_templates_have_no_inline_script_or_style(site: Site) -> None:
    for url in ("/", "/hosts/evil", "/alerts", "/backups", "/login", "/certfr", "/charts"):
        finder = _InlineFinder()
        finder.feed(site.client().get(url).get_data(as_text=True))
        assert finder.found == [], url


# -- secrets -------------------------------------------------------------------------------------
def test_no_secret_or_private_path_in_any_response(site: Site) -> None:
    site.set_password()
    client = site.client()
    key = (site.config.state_dir / SECRET_FILE).read_bytes()
    admin_hash = read_admin_hash(site.config.state_dir)
    assert admin_hash
    secrets = [SMTP_PASSWORD, str(site.identity_file), str(site.config.settings.data_dir),
               str(site.config.settings.backup_dir), str(site.config.path), admin_hash,
               admin_hash.rsplit("$", 1)[-1], key.hex(), base64.b64encode(key).decode(),
               base64.urlsafe_b64encode(key).decode().rstrip("="), PASSWORD]
    wrong = client.post("/login", data={"csrf_token": csrf_from(client), "password": "nope"})
    responses = [(url, client.get(url)) for url in GET_ROUTES] + [("/login POST", wrong)]
    log_in(client)  # an admin sees no more secrets than anyone
    responses += [(url + " (admin)", client.get(url)) for url in GET_ROUTES]
    for url, response in responses:
        body = response.get_data(as_text=True)
        assert key not in response.data, url
        for secret in secrets:
            assert secret not in body, (url, secret)
            assert json.dumps(secret)[1:-1] not in body, (url, secret)
        if response.mimetype == "application/json":  # the API, key by key as well
            for secret in secrets:
                assert secret not in json.dumps(response.get_json()), (url, secret)
    assert "cannot read [hidden]; see [hidden] (password [hidden])" in client.get(
        "/api/hosts/db1").get_json()["host"]["error"]


# -- CSRF and login ------------------------------------------------------------------------------
def test_post_without_or_with_a_wrong_csrf_token_is_refused(site: Site) -> None:
    site.set_password()
    client = site.client()
    assert log_in(client).status_code == 302
    no_token = client.post("/backups/create")
    assert no_token.status_code == 400
    assert "security token" in no_token.get_data(as_text=True)
    wrong = client.post("/backups/create", data={"csrf_token": "forged"})
    assert wrong.status_code == 400
    assert not site.config.settings.backup_dir.exists()
    other = site.client()  # a token from another session is no better than a forged one
    stolen = csrf_from(other)
    assert client.post("/backups/create", data={"csrf_token": stolen}).status_code == 400


#: Every endpoint that accepts anything but GET: a new one must be added here knowingly.
CHANGING = {"auth.login", "auth.logout", "backups.create", "backups.restore", "backups.delete",
            "silences.add", "silences.remove", "silences.acknowledge"}


def test_every_change_is_a_post_that_needs_the_csrf_token(site: Site) -> None:
    site.set_password()
    app = site.app()
    changing = set()
    for rule in app.url_map.iter_rules():
        methods = rule.methods - {"GET", "HEAD", "OPTIONS"}
        if not methods:
            continue
        assert methods == {"POST"}, (rule.endpoint, methods)  # no PUT, DELETE, GET side effect
        changing.add(rule.endpoint)
        url = rule.rule.replace("<name>", "osmon-20261121-224100.tar.gz")
        client = app.test_client()
        log_in(client)  # even a logged-in admin needs the token
        response = client.post(url, data={"confirm": "yes", "password": PASSWORD})
        assert response.status_code == 400, rule.endpoint
        assert "security token" in response.get_data(as_text=True)
    assert changing == CHANGING
    assert not site.config.settings.backup_dir.exists()


def test_without_an_admin_password_actions_are_refused_with_the_fix(site: Site) -> None:
    client = site.client()
    token = csrf_from(client)
    response = client.post("/backups/create", data={"csrf_token": token})
    assert response.status_code == 403
    assert "osmon set-password" in response.get_data(as_text=True)
    assert "osmon set-password" in client.get("/backups").get_data(as_text=True)
    login = client.post("/login", data={"csrf_token": token, "password": "anything"})
    assert login.status_code == 403 and "osmon set-password" in login.get_data(as_text=True)
    assert not site.config.settings.backup_dir.exists()
    # The command to type shows as code, never between literal backticks.
    for page in (response, client.get("/backups"), login, client.get("/alerts"),
                 client.get("/hosts/central")):
        html = page.get_data(as_text=True)
        assert "<code>osmon set-password</code>" in html and "`" not in html, page.request.path


def test_wrong_password_is_refused_and_the_right_one_logs_in(site: Site) -> None:
    site.set_password()
    client = site.client()
    wrong = client.post("/login", data={"csrf_token": csrf_from(client), "password": "guess",
                                        "next": "/backups"})
    assert wrong.status_code == 403 and "Wrong password." in wrong.get_data(as_text=True)
    assert "Create a backup now" not in client.get("/backups").get_data(as_text=True)
    right = log_in(client)
    assert right.status_code == 302 and right.headers["Location"] == "/backups"
    assert "Create a backup now" in client.get("/backups").get_data(as_text=True)
    cookie = client.get_cookie("osmon_session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"
    out = client.post("/logout", data={"csrf_token": csrf_from(client, "/")})
    assert out.status_code == 302
    assert "Create a backup now" not in client.get("/backups").get_data(as_text=True)


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil",
                                    "javascript:alert(1)"])
def test_login_never_redirects_off_site(site: Site, target: str) -> None:
    site.set_password()
    client = site.client()
    response = client.post("/login", data={"csrf_token": csrf_from(client), "next": target,
                                           "password": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_a_new_password_ends_older_sessions(site: Site) -> None:
    site.set_password()
    client = site.client()
    log_in(client)
    assert "Create a backup now" in client.get("/backups").get_data(as_text=True)
    site.set_password("another long password")
    assert "Create a backup now" not in client.get("/backups").get_data(as_text=True)


def test_repeated_failed_logins_are_throttled(site: Site) -> None:
    site.set_password()
    client = site.client()
    token = csrf_from(client)
    for _ in range(10):
        assert client.post("/login", data={"csrf_token": token,
                                           "password": "nope"}).status_code == 403
    blocked = client.post("/login", data={"csrf_token": token, "password": PASSWORD})
    assert blocked.status_code == 429
    assert "Create a backup now" not in client.get("/backups").get_data(as_text=True)


def test_require_login_guards_the_whole_dashboard(tmp_path: Path) -> None:
    site = make_site(tmp_path, web="require_login = true")
    fill(site.store, "central", NOW)
    site.set_password()
    client = site.client()
    page = client.get("/hosts/central?range=1h")
    assert page.status_code == 302
    assert page.headers["Location"] == "/login?next=/hosts/central?range%3D1h"
    api = client.get("/api/hosts")
    assert api.status_code == 401 and api.get_json() == {"error": "login required"}
    assert client.get("/hosts/central/charts/cpu.svg").status_code == 302
    with client.get("/static/app.css") as css:
        assert css.status_code == 200
    login = client.get(page.headers["Location"])
    assert login.status_code == 200
    response = client.post("/login", data={"csrf_token": csrf_from(client), "password": PASSWORD,
                                           "next": "/hosts/central?range=1h"})
    assert response.headers["Location"] == "/hosts/central?range=1h"
    assert client.get("/api/hosts").status_code == 200


# -- session key and password file ---------------------------------------------------------------
def test_session_key_is_private_and_survives_a_restart(site: Site) -> None:
    site.set_password()
    first = site.app()
    key_file = site.config.state_dir / SECRET_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    client = first.test_client()
    log_in(client)
    cookie = client.get_cookie("osmon_session")
    restarted = site.app().test_client()  # a new app: as after `osmon serve` restarts
    restarted.set_cookie("osmon_session", cookie.value)
    assert "Create a backup now" in restarted.get("/backups").get_data(as_text=True)


def test_set_password_stores_only_a_private_salted_hash(site: Site,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert cli.main(["--config", str(site.config.path), "set-password", "--stdin"]) == 0
    path = site.config.state_dir / ADMIN_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert PASSWORD not in path.read_text()
    digest = read_admin_hash(site.config.state_dir)
    assert digest.startswith(("scrypt:", "pbkdf2:"))
    assert log_in(site.client()).status_code == 302
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    cli.main(["--config", str(site.config.path), "set-password", "--stdin"])
    assert read_admin_hash(site.config.state_dir) != digest  # salted: same password, new hash


def test_set_password_refuses_short_passwords_and_a_missing_terminal(
        site: Site, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert cli.main(["--config", str(site.config.path), "set-password", "--stdin"]) == 2
    assert "at least 8 characters" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert cli.main(["--config", str(site.config.path), "set-password"]) == 2
    assert "use --stdin" in capsys.readouterr().err
    assert not (site.config.state_dir / ADMIN_FILE).exists()


def test_set_password_on_a_terminal_asks_twice_without_echo(site: Site) -> None:
    def run(first: str, second: str) -> tuple[int, str]:
        leader, follower = pty.openpty()
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
        proc = subprocess.Popen(
            [sys.executable, "-m", "collector", "--config", str(site.config.path),
             "set-password"], stdin=follower, stdout=follower, stderr=follower,
            start_new_session=True, env=env)
        os.close(follower)
        output = b""
        answers = [first, second]
        answered = 0
        try:
            while True:
                ready, _, _ = select.select([leader], [], [], 60)
                assert ready, f"no prompt within 60 s: {output!r}"
                try:
                    chunk = os.read(leader, 1024)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
                prompts = output.count(b"password: ") + output.count(b"again: ")
                while answers and answered < prompts:  # answer each prompt once it is shown
                    os.write(leader, answers.pop(0).encode() + b"\n")
                    answered += 1
        finally:
            os.close(leader)
        return proc.wait(timeout=60), output.decode(errors="replace")

    code, text = run(PASSWORD, "something else")
    assert code == 2 and "differ" in text and PASSWORD not in text
    assert not (site.config.state_dir / ADMIN_FILE).exists()
    code, text = run(PASSWORD, PASSWORD)
    assert code == 0 and PASSWORD not in text  # never echoed
    assert log_in(site.client()).status_code == 302


def test_session_older_than_its_lifetime_is_gone(site: Site) -> None:
    site.set_password()
    app = site.app(PERMANENT_SESSION_LIFETIME=timedelta(seconds=-1))
    client = app.test_client()
    log_in(client)
    assert "Create a backup now" not in client.get("/backups").get_data(as_text=True)
