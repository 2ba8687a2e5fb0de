"""GET /metrics through the dashboard: formats, who may read it, the bearer token, the cache,
and a shard's view of the fleet."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest
from exposition_fixtures import rich_sample
from web_fixtures import NOW, Site, failed_sample, log_in, make_site

from collector.config import parse_shard, shard_of
from collector.errors import ConfigError
from collector.store.samples import Store

TOKEN = "3f6c1d2e9a8b7c6d5e4f3a2b1c0d9e8f"
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                     "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


def site_with(tmp_path: Path, web: str = "", hosts: list[dict] | None = None) -> Site:
    site = make_site(tmp_path, hosts or [{"name": "web1", "tags": ["web"]}, {"name": "db1"}],
                     web=web)
    site.store.append("web1", rich_sample("web1", NOW))
    site.store.append("db1", failed_sample("db1", NOW, kind="unreachable"))
    return site


def token_site(tmp_path: Path, require_login: bool) -> Site:
    token_file = tmp_path / "metrics.token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    return site_with(tmp_path, web=f'require_login = {str(require_login).lower()}\n'
                                   f'metrics_token_file = "{token_file}"')


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_text_format_by_default_and_openmetrics_when_prometheus_asks(
        tmp_path: Path) -> None:
    client = site_with(tmp_path).client()
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = response.get_data(as_text=True)
    assert 'osmon_up{instance="web1"} 1.0' in text and 'osmon_up{instance="db1"} 0.0' in text
    assert 'node_memory_MemTotal_bytes{instance="web1"} 8334774272.0' in text
    assert 'osmon_scrape_error_info{instance="db1",kind="unreachable"} 1.0' in text
    assert "# EOF" not in text
    om = client.get("/metrics", headers={"Accept": PROMETHEUS_ACCEPT})
    assert om.headers["Content-Type"] == \
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    assert om.get_data(as_text=True).endswith("# EOF\n")
    assert "# TYPE node_cpu_seconds counter" in om.get_data(as_text=True)
    assert om.headers["Cache-Control"] == "no-store"


def test_with_require_login_a_scraper_needs_the_token_and_the_token_opens_nothing_else(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    site = token_site(tmp_path, require_login=True)
    site.set_password()
    client = site.client()
    caplog.set_level(logging.INFO)
    refused = client.get("/metrics")
    assert refused.status_code == 401  # not a redirect to a login form a scraper cannot use
    assert refused.headers["WWW-Authenticate"] == 'Bearer realm="osmon metrics"'
    assert "osmon_up" not in refused.get_data(as_text=True)
    assert client.get("/metrics", headers=bearer(TOKEN[:-1] + "0")).status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    ok = client.get("/metrics", headers=bearer())
    assert ok.status_code == 200 and "osmon_up" in ok.get_data(as_text=True)
    assert client.get("/", headers=bearer()).status_code == 302  # to the login form
    assert client.get("/api/hosts", headers=bearer()).status_code == 401
    assert TOKEN not in caplog.text and TOKEN[:-1] not in caplog.text
    assert "missing or wrong bearer token" in caplog.text
    # The admin's own session reads it too (a person checking what Prometheus sees).
    log_in(client)
    assert client.get("/metrics").status_code == 200


def test_a_token_file_protects_metrics_even_when_the_dashboard_is_open(tmp_path: Path) -> None:
    site = token_site(tmp_path, require_login=False)
    client = site.client()
    assert client.get("/").status_code == 200
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=bearer()).status_code == 200
    token_file = site.config.web.metrics_token_file
    assert token_file is not None
    token_file.write_text("a-new-token-after-rotation-0123456789\n")  # no restart needed
    assert client.get("/metrics", headers=bearer()).status_code == 401
    assert client.get("/metrics", headers=bearer("a-new-token-after-rotation-0123456789")
                      ).status_code == 200


def test_a_token_file_gone_at_run_time_refuses_with_503_and_says_why_without_the_token(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    site = token_site(tmp_path, require_login=False)
    token_file = site.config.web.metrics_token_file
    assert token_file is not None
    client = site.client()
    token_file.unlink()
    response = client.get("/metrics", headers=bearer())
    assert response.status_code == 503
    assert "cannot read [web] metrics_token_file" in caplog.text and TOKEN not in caplog.text


@pytest.mark.parametrize("content, problem", [
    (None, "which cannot be read (No such file or directory)"),
    ("short", "must hold one token of at least 16 characters"),
    ("two words in a long enough token", "without spaces"),
])
def test_a_bad_token_file_is_a_config_error_naming_the_key(tmp_path: Path, content: str | None,
                                                           problem: str) -> None:
    token_file = tmp_path / "metrics.token"
    if content is not None:
        token_file.write_text(content)
    with pytest.raises(ConfigError) as caught:
        make_site(tmp_path, web=f'metrics_token_file = "{token_file}"')
    message = str(caught.value)
    assert "[web]: 'metrics_token_file'" in message and problem in message
    assert "short" not in message.split("must hold")[0]  # the content is never quoted


def test_scrapes_read_the_store_only_when_a_host_has_a_new_sample(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = site_with(tmp_path)
    client = site.client()
    reads: list[str] = []
    original = Store.latest_in

    def counting(store: Store, host: str, path: Path) -> object:
        reads.append(host)
        return original(store, host, path)

    monkeypatch.setattr(Store, "latest_in", counting)
    client.get("/metrics")
    first = list(reads)
    reads.clear()
    second = client.get("/metrics").get_data(as_text=True)
    assert sorted(first) == ["db1", "web1"] and reads == []
    assert 'node_disk_reads_completed_total{device="vda",instance="web1"} 30000.0' in second
    site.store.append("web1", rich_sample("web1", NOW, step=5))
    third = client.get("/metrics").get_data(as_text=True)
    assert reads == ["web1"]
    assert 'node_disk_reads_completed_total{device="vda",instance="web1"} 30005.0' in third


def test_a_shard_exposes_and_shows_only_its_hosts_and_says_what_the_others_hold(
        tmp_path: Path) -> None:
    names = [f"h{i:03d}" for i in range(1, 11)]
    site = make_site(tmp_path, [{"name": n} for n in names])
    for name in names:
        site.store.append(name, rich_sample(name, NOW))
    site.config = dataclasses.replace(site.config, settings=dataclasses.replace(
        site.config.settings, shard=parse_shard("2/2")))
    ours = sorted(n for n in names if shard_of(n, 2) == 2)
    client = site.client()
    text = client.get("/metrics").get_data(as_text=True)
    up = sorted(line.split('"')[1] for line in text.splitlines() if line.startswith("osmon_up{"))
    assert up == ours
    assert 'osmon_collector_info{shard="2/2",version="0.1.0"} 1.0' in text
    assert f"osmon_hosts {float(len(ours))}" in text and "osmon_fleet_hosts 10.0" in text
    page = client.get("/").get_data(as_text=True)
    assert f"Shard 2/2: {len(ours)} hosts here, {10 - len(ours)} on the other shards" in page
    overview = client.get("/api/overview").get_json()
    assert overview["shard"] == {"shard": "2/2", "hosts": len(ours), "other_hosts": 10 - len(ours)}
    assert sorted(h["name"] for h in overview["hosts"]) == ours
    theirs = next(n for n in names if n not in ours)
    page = client.get(f"/hosts/{theirs}")
    assert page.status_code == 404
    assert "belongs to shard 1/2; this is shard 2/2" in page.get_data(as_text=True)
    assert client.get(f"/api/hosts/{theirs}").status_code == 404
    assert client.get(f"/hosts/{ours[0]}").status_code == 200
