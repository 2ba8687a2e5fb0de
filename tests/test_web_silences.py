"""Silences and acknowledgements on the dashboard: the forms of /alerts and the host page,
``/api/silences``, and how silenced hosts and alerts show, against a real data folder."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from web_fixtures import NOW, Site, csrf_from, failed_sample, fill, log_in, make_site, sample

from collector.alerts import muting_store
from collector.alerts import rules as alert_rules
from collector.alerts import state as alert_store
from collector.alerts.muting_input import SilenceRequest
from collector.times import format_ts


@pytest.fixture
def site(tmp_path: Path) -> Site:
    s = make_site(tmp_path, [{"name": "central", "local": True},
                             {"name": "web1", "tags": ["web"]}, {"name": "web2", "tags": ["web"]},
                             {"name": "db1"}])
    fill(s.store, "central", NOW, count=2)
    fill(s.store, "web1", NOW, count=2, disk=97.0, mount="/var")
    fill(s.store, "web2", NOW, count=2)
    s.store.append("db1", failed_sample("db1", NOW))
    # The alert state a pass would leave: web1's /var is critical.
    state, _notes = alert_rules.evaluate(s.config, None, {"web1": sample(
        "web1", NOW, disk=97.0, mount="/var")}, NOW)
    alert_store.save_state(s.config.state_dir, state)
    s.set_password()
    return s


@pytest.fixture
def admin(site: Site) -> FlaskClient:
    client = site.client()
    assert log_in(client).status_code == 302
    return client


def post(client: FlaskClient, url: str, **form: str):  # -> werkzeug TestResponse
    return client.post(url, data={"csrf_token": csrf_from(client, "/alerts"), **form})


def stored(site: Site) -> list[dict]:
    path = site.config.state_dir / muting_store.SILENCES_FILE
    return json.loads(path.read_text())["silences"] if path.exists() else []


def history_events(site: Site) -> list[str]:
    return [r["event"] for r in alert_store.history(site.config.state_dir)]


def test_a_silence_from_the_alerts_page(site: Site, admin: FlaskClient) -> None:
    done = post(admin, "/silences", target="tag:web", metric="disk", item="/var",
                duration="2h", reason="resizing the volumes", back="alerts")
    assert done.status_code == 302 and done.headers["Location"] == "/alerts"
    [silence] = stored(site)
    assert (silence["tag"], silence["metric"], silence["item"], silence["author"]) == (
        "web", "disk", "/var", "admin")
    assert silence["start"] == format_ts(NOW) and silence["end"] == "2026-11-22T00:41:00Z"
    page = admin.get("/alerts").get_data(as_text=True)
    assert f"(silence {silence['id']})" in page  # the flash message
    active, rest = page.split('id="silences-title"')
    assert "until 2026-11-22 00:41:00 UTC by admin: resizing the volumes" in active
    assert silence["id"] in rest and "resizing the volumes" in rest
    api = admin.get("/api/silences").get_json()
    assert [(s["id"], s["active"]) for s in api["silences"]] == [(silence["id"], True)]
    assert admin.get("/api/alerts").get_json()["active"][0]["silenced"]["id"] == silence["id"]
    assert history_events(site) == ["silence-added"]


def test_a_silenced_host_shows_as_such_on_the_overview_and_its_page(site: Site,
                                                                    admin: FlaskClient) -> None:
    before = [h["name"] for h in admin.get("/api/overview").get_json()["hosts"]]
    assert before[:2] == ["db1", "web1"]  # down, then critical
    done = post(admin, "/silences", target="host:db1", duration="30m", reason="reboot",
                back="host:db1")
    assert done.status_code == 302 and done.headers["Location"] == "/hosts/db1"
    data = admin.get("/api/overview").get_json()
    assert data["silenced"] == 1 and data["counts"]["down"] == 1  # still down, and silenced
    db1 = next(h for h in data["hosts"] if h["name"] == "db1")
    assert db1["status"] == "down" and db1["silenced"]["author"] == "admin"
    assert db1["reasons"][0] == "silenced until 2026-11-21 23:11:00 UTC by admin: reboot"
    assert [h["name"] for h in data["hosts"]][:2] == ["web1", "db1"]  # the unsilenced first
    overview = admin.get("/").get_data(as_text=True)
    row = re.search(r"<tr><td[^>]*><span class=\"badge status-down\">down</span> "
                    r"<span class=\"badge status-silenced\">silenced</span></td>"
                    r"<td data-sort=\"db1\"><a href=\"/hosts/db1\">", overview)
    assert row, "db1's status cell says down and silenced"
    page = admin.get("/hosts/db1").get_data(as_text=True)
    assert 'data-show-if="host.silenced">' in page  # the badge is not hidden
    assert "Silences of db1" in page and "reboot" in page
    assert admin.get("/api/hosts/web1").get_json()["host"]["silenced"] is None


def test_bad_input_shows_the_page_again_with_the_reason_and_changes_nothing(
        site: Site, admin: FlaskClient) -> None:
    cases = [({"target": "host:db1", "duration": "-1h"}, "a duration must be positive"),
             ({"target": "host:db9", "duration": "1h"}, "no host named &#39;db9&#39;"),
             ({"target": "tag:nope", "duration": "1h"}, "no host has the tag &#39;nope&#39;"),
             ({"target": "host:db1", "until": "2026-11-21 20:00"}, "before it starts"),
             ({"target": "host:db1", "duration": "1h", "metric": "cpuu"}, "unknown metric"),
             ({"target": "host:db1", "duration": "1h", "reason": " "}, "a reason is required")]
    for fields, words in cases:
        form = {"reason": "typed reason", "back": "alerts", "form": "silence", **fields}
        refused = post(admin, "/silences", **form)
        text = refused.get_data(as_text=True)
        assert refused.status_code == 400, fields
        assert 'id="action-error"' in text and words in text, (fields, text[:200])
        if fields.get("reason") != " ":
            assert 'value="typed reason"' in text  # what was typed is kept
    from_host = post(admin, "/silences", target="host:db1", duration="0m", reason="x",
                     back="host:db1")
    assert from_host.status_code == 400 and "Silences of db1" in from_host.get_data(as_text=True)
    assert stored(site) == [] and history_events(site) == []


def test_changes_need_a_logged_in_admin(site: Site) -> None:
    client = site.client()
    token = csrf_from(client, "/login")  # no form on /alerts: nothing to change there
    refused = client.post("/silences", data={"csrf_token": token, "target": "host:db1",
                                             "duration": "1h", "reason": "x", "back": "alerts"})
    assert refused.status_code == 403 and "Log in as admin first." in refused.get_data(
        as_text=True)
    acked = client.post("/acks", data={"csrf_token": token, "reason": "x",
                                       "alert": '["web1", "disk", "/var"]'})
    assert acked.status_code == 403
    page = client.get("/alerts").get_data(as_text=True)
    assert 'id="silence-form"' not in page and "To silence or acknowledge: Log in" in page
    assert stored(site) == [] and history_events(site) == []


def test_remove_a_silence(site: Site, admin: FlaskClient) -> None:
    silence = muting_store.add_silence(site.config, SilenceRequest(
        host="web1", duration="1h", reason="deploy"), author="alice", now=NOW, zone=None)
    page = admin.get("/hosts/web1").get_data(as_text=True)
    assert f'action="/silences/{silence.id}/remove"' in page
    done = post(admin, f"/silences/{silence.id}/remove", back="host:web1")
    assert done.status_code == 302 and done.headers["Location"] == "/hosts/web1"
    assert stored(site) == []
    again = post(admin, f"/silences/{silence.id}/remove", back="alerts")
    assert again.status_code == 400 and "no silence" in again.get_data(as_text=True)
    assert history_events(site) == ["silence-removed", "silence-added"]
    assert "removed by admin" in alert_store.history(site.config.state_dir)[0]["message"]


def test_acknowledge_from_the_alerts_page(site: Site, admin: FlaskClient) -> None:
    page = admin.get("/alerts").get_data(as_text=True)
    assert '<option value=\'["web1", "disk", "/var"]\'>web1 disk /var (critical)</option>' in page
    done = post(admin, "/acks", alert='["web1", "disk", "/var"]', reason="new disk ordered",
                back="alerts")
    assert done.status_code == 302
    active = admin.get("/api/alerts").get_json()["active"][0]
    assert active["ack"]["author"] == "admin" and active["ack"]["reason"] == "new disk ordered"
    page = admin.get("/alerts").get_data(as_text=True)
    assert "admin, 2026-11-21 22:41:00 UTC: new disk ordered" in page
    assert 'id="ack-form"' not in page  # nothing left to acknowledge
    host = admin.get("/hosts/web1").get_data(as_text=True)
    assert "admin, 2026-11-21 22:41:00 UTC: new disk ordered" in host
    nothing = post(admin, "/acks", alert='["central", "cpu", null]', reason="x", back="alerts")
    assert nothing.status_code == 400
    assert "central has no active cpu alert" in nothing.get_data(as_text=True)
    forged = post(admin, "/acks", alert="not json", reason="x", back="alerts")
    assert forged.status_code == 400
    assert history_events(site) == ["ack"]


def test_api_silences_is_read_only_and_behind_the_login_when_asked(tmp_path: Path) -> None:
    site = make_site(tmp_path, web="require_login = true")
    site.set_password()
    assert site.client().get("/api/silences").status_code == 401
    client = site.client()
    log_in(client)
    assert client.get("/api/silences").get_json()["silences"] == []
    token = csrf_from(client, "/")
    assert client.post("/api/silences", data={"csrf_token": token}).status_code == 405
