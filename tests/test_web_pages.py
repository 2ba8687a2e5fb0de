"""Dashboard routes through the Flask test client: pages, JSON API and chart URLs."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from chart_fixtures import legend, parse_svg, runs, series_colors, y_axis
from web_fixtures import NOW, Site, failed_sample, fill, make_site, sample

from collector.alerts import certfr
from collector.alerts import hook as alerting
from collector.alerts import rules as alert_rules
from collector.alerts import state as alert_store
from collector.store import passlog
from collector.store.samples import Store
from collector.times import format_ts

CHECKS = """
[[checks]]
name = "http"
command = ["/usr/lib/nagios/plugins/check_http", "-H", "localhost"]
hosts = ["web1"]

[[checks]]
name = "motd"
command = ["/usr/lib/nagios/plugins/check_dummy", "0", "fine"]
hosts = ["web1"]
"""
RANGES = ["1h", "6h", "24h", "7d", "30d"]


@pytest.fixture
def site(tmp_path: Path) -> Site:
    s = make_site(tmp_path, [{"name": "central", "local": True, "tags": ["core"]},
                             {"name": "web1", "tags": ["web"]},
                             {"name": "db1", "tags": ["db"]},
                             {"name": "old", "tags": ["web"]},
                             {"name": "off", "enabled": False}], extra=CHECKS)
    fill(s.store, "central", NOW - timedelta(seconds=42), count=5)
    fill(s.store, "web1", NOW, count=5, cpu=87.0, disk=60.0, mount="/var")
    s.store.append("db1", failed_sample("db1", NOW))
    fill(s.store, "old", NOW - timedelta(hours=2), count=2)
    return s


@pytest.fixture
def with_alerts(site: Site) -> None:
    """A confirmed disk alert on web1 and a CERT-FR event, made and stored by the real alert
    rules, alert store and CERT-FR modules."""
    state_dir = site.config.state_dir
    state, notes = alert_rules.evaluate(
        site.config, alert_store.load_state(state_dir)[0],
        {"web1": sample("web1", NOW, disk=97.0, mount="/var")}, NOW)
    alert_store.save_state(state_dir, state)
    news = {"id": "CERTFR-2026-ALE-001", "published": "2026-11-21T10:00:00Z",
            "title": "Vulnérabilité dans OpenSSH", "link": "https://www.cert.ssi.gouv.fr/a1",
            "description": ""}
    notes.append(alerting.certfr_notification(news))
    alert_store.append_history(state_dir, [n.history_record(format_ts(NOW)) for n in notes])


def rows_of(html: str) -> list[str]:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r"<tr>(.*?)</tr>", body, re.S)


# -- overview ------------------------------------------------------------------------------------
def test_overview_lists_enabled_hosts_worst_first_with_text_labels(site: Site,
                                                                   with_alerts: None) -> None:
    response = site.client().get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    rows = rows_of(html)
    order = [re.search(r'href="/hosts/([^"]+)"', r).group(1) for r in rows]
    assert order == ["db1", "web1", "old", "central"]  # down, critical (alert), stale, ok
    labels = [re.search(r'class="badge status-(\w+)">(\w+)<', r).groups() for r in rows]
    assert labels == [("down", "down"), ("critical", "critical"), ("stale", "stale"),
                      ("ok", "ok")]
    assert "off" not in order
    central = rows[3]
    assert "42 s ago" in central and "12.5 %" in central and "40.0 %" in central
    web1 = rows[1]
    assert "87.0 %" in web1 and "level-warning" in web1  # CPU over its warning threshold
    assert '60.0 % <span class="mount">/var</span>' in web1
    assert re.search(r'data-sort="1">1</td>', web1)  # one active alert
    assert "timeout: no answer within 10 s (connect)" in rows[0]


def test_overview_filters_by_tag(site: Site) -> None:
    html = site.client().get("/?tag=web").get_data(as_text=True)
    shown = [re.search(r'href="/hosts/([^"]+)"', r).group(1) for r in rows_of(html)]
    assert shown == ["web1", "old"]  # warning before stale
    assert '<option value="web" selected>web</option>' in html
    assert '<option value="db">db</option>' in html
    empty = site.client().get("/?tag=nope").get_data(as_text=True)
    assert "No host to show with this tag." in empty


def test_collector_banner_shows_only_when_passes_stopped(site: Site) -> None:
    banner = re.compile(r'<div class="banner banner-stale"[^>]*>')
    html = site.client().get("/").get_data(as_text=True)
    assert "hidden" not in banner.search(html).group(0)  # no pass ever recorded
    passlog.record(site.config.state_dir, {"ts": format_ts(NOW - timedelta(seconds=30)),
                                           "duration_s": 1.0, "hosts": 4, "ok": 3, "failed": 1,
                                           "skipped": False})
    html = site.client().get("/").get_data(as_text=True)
    assert "hidden" in banner.search(html).group(0)
    assert site.client().get("/api/overview").get_json()["collector"]["stale"] is False
    site.now = NOW + timedelta(minutes=10)
    html = site.client().get("/").get_data(as_text=True)
    assert "hidden" not in banner.search(html).group(0)
    assert "10 min ago" in html


# -- host page -----------------------------------------------------------------------------------
def test_host_page_shows_charts_facts_disks_processes_users(site: Site) -> None:
    html = site.client().get("/hosts/web1").get_data(as_text=True)
    charts = re.findall(r'<img src="([^"]+)"', html)
    # Five minutes of data: the page opens on the hour, where they are more than a dot.
    assert charts == [f"/hosts/web1/charts/{m}.svg?range=1h&amp;fit=1"
                      for m in ("cpu", "memory", "swap", "disk", "load", "net")]
    assert '<a href="/hosts/web1?range=1h" aria-current="page">1h</a>' in html
    for text in ("6.1.0-18-amd64", "x86_64", "/dev/vda1", "systemd", "/sbin/init", "alice",
                 "10.0.0.9", "7.8 GiB", "11.4 MiB", ">0.41 s<"):
        assert text in html, text
    assert "Checks" not in html  # no check results: no empty section


def test_host_page_says_which_probe_answered(site: Site) -> None:
    shell = sample("web1", NOW + timedelta(seconds=1))
    shell["collect"]["probe"] = "sh"
    shell["system"]["python"] = None
    site.store.append("web1", shell)
    html = site.client().get("/hosts/web1").get_data(as_text=True)
    assert re.search(r'<dt>Probe</dt><dd data-bind="sample.collect.probe" '
                     r'data-format="text">sh</dd>', html)


@pytest.mark.parametrize(("history", "opens_on"), [
    (timedelta(minutes=40), "1h"), (timedelta(hours=1), "1h"), (timedelta(hours=3), "6h"),
    (timedelta(hours=20), "24h"), (timedelta(days=9), "24h"), (None, "24h")])
def test_host_page_opens_on_the_smallest_range_that_holds_the_data(
        tmp_path: Path, history: timedelta | None, opens_on: str) -> None:
    """A new install's charts are not a few dots at the right edge of a day; a host with
    more than a day of data opens on the day, as it always has."""
    site = make_site(tmp_path, [{"name": "web1"}])
    if history is not None:
        site.store.append("web1", sample("web1", NOW - history))
        site.store.append("web1", sample("web1", NOW))
    html = site.client().get("/hosts/web1").get_data(as_text=True)
    assert set(re.findall(r'<img src="[^"]+\?range=(\w+)&amp;fit=1"', html)) == {opens_on}
    assert f'<a href="/hosts/web1?range={opens_on}" aria-current="page">' in html
    chosen = site.client().get("/hosts/web1?range=24h").get_data(as_text=True)
    assert set(re.findall(r'<img src="[^"]+\?range=(\w+)"', chosen)) == {"24h"}
    # The chart URL itself keeps 24 h as its default: embedded charts rely on it.
    assert "last 24h" in site.client().get("/hosts/web1/charts/cpu.svg").get_data(as_text=True)


def test_range_selector_changes_the_chart_urls(site: Site) -> None:
    html = site.client().get("/hosts/web1?range=7d").get_data(as_text=True)
    assert set(re.findall(r'<img src="[^"]+\?range=(\w+)"', html)) == {"7d"}
    assert '<a href="/hosts/web1?range=7d" aria-current="page">7d</a>' in html


def test_host_page_shows_checks_and_alert_history(site: Site, with_alerts: None) -> None:
    site.store.append("web1", sample("web1", NOW + timedelta(seconds=1), checks={
        "http": {"state": 2, "output": "HTTP CRITICAL: 503", "long_output": "", "perf": {}}}))
    html = site.client().get("/hosts/web1").get_data(as_text=True)
    assert '<span class="badge check-critical">CRITICAL</span>' in html
    assert "HTTP CRITICAL: 503" in html
    history = html.split('id="history-title"')[1]
    assert "/var" in history and "97" in history and "level-critical" in history


@pytest.mark.parametrize(("url", "status"), [
    ("/hosts/nope", 404), ("/hosts/off", 200), ("/hosts/web1?range=2y", 400),
    ("/hosts/web1?range=", 400), ("/nope", 404), ("/hosts/..%2Fetc", 404),
])
def test_page_status_codes(site: Site, url: str, status: int) -> None:
    response = site.client().get(url)
    assert response.status_code == status
    assert response.mimetype == "text/html"


# -- charts --------------------------------------------------------------------------------------
def test_host_chart_is_svg_with_etag_and_private_caching(site: Site) -> None:
    client = site.client()
    url = "/hosts/web1/charts/cpu.svg?range=1h"
    response = client.get(url)
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    assert response.data.lstrip().startswith((b"<?xml", b"<svg"))
    assert response.headers["Cache-Control"] == "private, max-age=60"
    etag = response.headers["ETag"]
    assert response.last_modified == NOW  # the newest sample
    modified = response.headers["Last-Modified"]
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    by_date = client.get(url, headers={"If-Modified-Since": modified})
    assert by_date.status_code == 304 and by_date.data == b""
    site.now = NOW + timedelta(minutes=1)
    site.store.append("web1", sample("web1", site.now, cpu=50.0))
    client = site.client()
    fresh = client.get(url, headers={"If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.headers["ETag"] != etag
    assert client.get(url, headers={"If-Modified-Since": modified}).status_code == 200


def test_combined_chart_revalidates_too(site: Site) -> None:
    client = site.client()
    first = client.get("/charts/cpu.svg?range=24h")
    assert first.status_code == 200 and first.headers["Cache-Control"] == "private, max-age=60"
    assert client.get("/charts/cpu.svg?range=24h", headers={
        "If-None-Match": first.headers["ETag"]}).status_code == 304
    site.store.append("old", sample("old", NOW))  # any host's new sample changes the chart
    second = client.get("/charts/cpu.svg?range=24h", headers={
        "If-None-Match": first.headers["ETag"]})
    assert second.status_code == 200 and second.headers["ETag"] != first.headers["ETag"]


@pytest.mark.parametrize("range_name", RANGES)
@pytest.mark.parametrize("metric", ["cpu", "memory", "swap", "disk", "load", "net"])
def test_every_metric_and_range_has_a_chart_with_the_data(site: Site, metric: str,
                                                          range_name: str) -> None:
    client = site.client()
    own = client.get(f"/hosts/web1/charts/{metric}.svg?range={range_name}")
    assert own.status_code == 200 and own.mimetype == "image/svg+xml"
    root = parse_svg(own.data)
    assert any(piece for line in runs(root) for piece in line), "a line of web1's samples"
    assert f"last {range_name}" in own.get_data(as_text=True)
    combined = client.get(f"/charts/{metric}.svg?range={range_name}")
    assert combined.status_code == 200
    names = legend(parse_svg(combined.data))
    assert names[:3] == ["central", "web1", "db1 (no data)"]  # one line per host
    assert names[3] == ("old (no data)" if range_name == "1h" else "old")  # 2 hours old


def test_each_host_has_its_own_colour_in_every_chart(site: Site) -> None:
    client = site.client()
    combined = series_colors(parse_svg(client.get("/charts/cpu.svg?range=6h").data))
    by_host = {name.removesuffix(" (no data)"): color for name, color in combined.items()}
    assert len(set(by_host.values())) == 4  # central, web1, db1, old: four colours
    for host in ("central", "web1", "old"):
        own = series_colors(parse_svg(client.get(f"/hosts/{host}/charts/cpu.svg?range=6h").data))
        assert next(iter(own.values())) == by_host[host], host
    memory = series_colors(parse_svg(client.get("/charts/memory.svg?range=24h&tag=web").data))
    assert memory == {"web1": by_host["web1"], "old": by_host["old"]}


def test_checks_with_numbers_get_charts_on_the_host_page(site: Site) -> None:
    site.store.append("web1", sample("web1", NOW + timedelta(seconds=1), checks={
        "http": {"state": 0, "output": "HTTP OK", "long_output": "",
                 "perf": {"time": {"value": 0.25, "uom": "s"}}},
        "motd": {"state": 0, "output": "fine", "long_output": "", "perf": {}}}))
    client = site.client()
    html = client.get("/hosts/web1?range=6h").get_data(as_text=True)
    charts = re.findall(r'<img src="([^"]+)"', html)
    assert charts == [f"/hosts/web1/charts/{m}.svg?range=6h"
                      for m in ("cpu", "memory", "swap", "disk", "load", "net", "check.http")]
    assert "Check http · last 6 hours" in html  # a check without numbers has no empty chart
    svg = client.get(charts[-1])
    assert svg.status_code == 200
    root = parse_svg(svg.data)
    assert legend(root) == ["time"] and runs(root)[0]
    assert "s" in [label.split()[-1] for _, label in y_axis(root)]  # seconds on the axis
    # A configured check has a chart URL even without numbers yet; an unknown one is a 404,
    # and so is a check that is neither configured for the host nor in its data.
    assert client.get("/hosts/web1/charts/check.motd.svg").status_code == 200
    assert client.get("/hosts/web1/charts/check.nope.svg").status_code == 404
    assert client.get("/hosts/central/charts/check.http.svg").status_code == 404
    combined = client.get("/charts/check.http.svg?range=6h")
    assert combined.status_code == 200
    assert legend(parse_svg(combined.data)) == ["web1"]  # only the hosts that run it
    assert client.get("/charts/check.nope.svg").status_code == 404
    fleet = client.get("/charts?range=6h").get_data(as_text=True)
    assert '<img src="/charts/check.http.svg?range=6h"' in fleet
    assert "check.motd" not in fleet


def test_combined_chart_names_every_host(site: Site) -> None:
    response = site.client().get("/charts/memory.svg?range=6h")
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    for host in ("central", "web1", "db1", "old"):
        assert host.encode() in response.data
    tagged = site.client().get("/charts/memory.svg?range=6h&tag=db").data
    assert b"db1" in tagged and b"central" not in tagged
    assert site.client().get("/charts?range=7d").status_code == 200


@pytest.mark.parametrize(("url", "status"), [
    ("/hosts/nope/charts/cpu.svg", 404), ("/hosts/web1/charts/nope.svg", 404),
    ("/hosts/web1/charts/cpu.svg?range=5m", 400), ("/charts/nope.svg", 404),
    ("/charts/cpu.svg?range=1y", 400), ("/hosts/web1/charts/cpu.svg", 200),
])
def test_chart_status_codes(site: Site, url: str, status: int) -> None:
    assert site.client().get(url).status_code == status


# -- JSON API ------------------------------------------------------------------------------------
def test_api_hosts_lists_statuses(site: Site) -> None:
    response = site.client().get("/api/hosts")
    assert response.status_code == 200 and response.mimetype == "application/json"
    data = response.get_json()
    assert data["generated"] == "2026-11-21T22:41:00Z"
    by_name = {h["name"]: h for h in data["hosts"]}
    assert set(by_name) == {"central", "web1", "db1", "old"}
    assert by_name["central"]["age_s"] == 42 and by_name["central"]["status"] == "ok"
    assert by_name["db1"]["status"] == "down"
    assert by_name["web1"]["url"] == "/hosts/web1"
    assert by_name["web1"]["levels"]["cpu"] == "warning"


def test_one_app_follows_new_samples_days_restores_and_prunes(site: Site) -> None:
    """The dashboard caches each host's newest sample: it must notice every kind of change."""
    client = site.app().test_client()  # one app, one cache, as under `osmon serve`

    def central() -> dict:
        hosts = client.get("/api/hosts").get_json()["hosts"]
        return next(h for h in hosts if h["name"] == "central")

    assert central()["cpu"] == 12.5
    site.store.append("central", sample("central", NOW, cpu=33.0))  # same day file
    assert central()["cpu"] == 33.0
    site.now = NOW + timedelta(hours=2)  # past midnight: a new day file
    site.store.append("central", sample("central", site.now, cpu=44.0))
    assert central()["cpu"] == 44.0 and central()["ts"] == "2026-11-22T00:41:00Z"
    hosts_dir = site.config.settings.data_dir / "hosts"
    directory = hosts_dir / "central"
    directory.rename(hosts_dir / "central.moved")  # a restore swaps directories in
    Store(site.config.settings.data_dir).append("central", sample("central", NOW, cpu=55.0))
    assert central()["cpu"] == 55.0
    for day_file in directory.iterdir():  # retention removed every day file
        day_file.unlink()
    assert central()["ts"] is None and central()["status"] == "stale"


def test_api_overview_counts_and_tags(site: Site) -> None:
    data = site.client().get("/api/overview").get_json()
    assert data["counts"] == {"ok": 1, "stale": 1, "warning": 1, "critical": 0, "down": 1}
    assert data["tags"] == ["core", "db", "web"]
    assert data["interval_s"] == 60
    assert data["newest"] == format_ts(NOW)  # the fleet charts page reloads when it moves
    assert site.client().get("/api/overview?tag=core").get_json()["newest"] == format_ts(
        NOW - timedelta(seconds=42))
    assert [h["name"] for h in site.client().get("/api/overview?tag=db").get_json()["hosts"]] == [
        "db1"]


def test_api_host_has_the_latest_sample_and_checks(site: Site) -> None:
    data = site.client().get("/api/hosts/web1").get_json()
    assert data["host"]["status"] == "warning"
    assert data["sample"]["disks"][0]["mount"] == "/var"
    assert data["checks"] == [] and data["history"] == [] and data["active_alerts"] == []


def test_api_samples_returns_the_range_only(site: Site) -> None:
    fill(site.store, "web1", NOW - timedelta(hours=3), count=3)
    data = site.client().get("/api/hosts/web1/samples?range=1h").get_json()
    assert data["host"] == "web1" and data["range"] == "1h"
    assert [s["ts"] for s in data["samples"]] == [
        format_ts(NOW - timedelta(minutes=m)) for m in (4, 3, 2, 1, 0)]
    assert len(site.client().get("/api/hosts/web1/samples?range=6h").get_json()["samples"]) == 8
    default = site.client().get("/api/hosts/web1/samples").get_json()
    assert default["range"] == "24h"
    slim = site.client().get("/api/hosts/web1/samples?range=1h&fields=cpu.percent,nope.x")
    assert slim.get_json()["samples"][0] == {"ts": format_ts(NOW - timedelta(minutes=4)),
                                             "cpu.percent": 87.0, "nope.x": None}


def test_api_samples_of_one_metric(site: Site) -> None:
    site.now = NOW + timedelta(minutes=1)
    site.store.append("web1", failed_sample("web1", site.now))
    data = site.client().get("/api/hosts/web1/samples?range=1h&metric=disk").get_json()
    assert data["metric"] == "disk"
    assert data["samples"][0] == {"ts": format_ts(NOW - timedelta(minutes=4)), "ok": True,
                                  "values": {"/var": 60.0}}
    assert data["samples"][-1] == {"ts": format_ts(site.now), "ok": False,
                                   "values": {}}
    load = site.client().get("/api/hosts/web1/samples?range=1h&metric=load").get_json()
    assert load["samples"][0]["values"] == {"load1": 0.12, "load5": 0.2, "load15": 0.31}


@pytest.mark.parametrize("range_name", RANGES)
def test_api_samples_accepts_every_range(site: Site, range_name: str) -> None:
    response = site.client().get(f"/api/hosts/web1/samples?range={range_name}&metric=cpu")
    assert response.status_code == 200
    assert [s["values"] for s in response.get_json()["samples"]] == [{"cpu": 87.0}] * 5


@pytest.mark.parametrize(("url", "status"), [
    ("/api/hosts/nope", 404), ("/api/hosts/nope/samples", 404),
    ("/api/hosts/web1/samples?range=2d", 400), ("/api/nope", 404),
    ("/api/hosts/web1/samples?range=", 400), ("/api/hosts/web1/samples?metric=nope", 404),
    ("/api/hosts/web1/samples?metric=check.", 404),
    ("/api/hosts/web1/samples?metric=cpu&fields=cpu.percent", 400),
    ("/api/alerts?limit=0", 400), ("/api/alerts?limit=x", 400),
])
def test_api_errors_are_json(site: Site, url: str, status: int) -> None:
    response = site.client().get(url)
    assert response.status_code == status
    assert response.mimetype == "application/json"
    assert isinstance(response.get_json()["error"], str)


def test_alerts_page_and_api(site: Site, with_alerts: None) -> None:
    html = site.client().get("/alerts").get_data(as_text=True)
    active, history = html.split('id="history-title"')
    assert '<a href="/hosts/web1">web1</a>' in active and "/var" in active
    assert '<span class="badge level-critical">critical</span>' in active
    assert "Vulnérabilité dans OpenSSH" in history  # a CERT-FR row: no host, no broken link
    assert '<a href="/hosts/">' not in history
    data = site.client().get("/api/alerts").get_json()
    assert [(a["host"], a["metric"], a["item"], a["level"]) for a in data["active"]] == [
        ("web1", "disk", "/var", "critical")]
    assert data["active"] == [dict(a, silenced=None, ack=None)  # nothing silenced, nor acked
                              for a in alert_store.active_alerts(site.config.state_dir)]
    assert {e["metric"] for e in data["history"]} == {"disk", "certfr"}
    assert site.client().get("/api/alerts?limit=1").get_json()["history"] == data["history"][:1]


def test_certfr_page_links_only_http_urls(site: Site) -> None:
    state = certfr.empty_state()
    certfr.merge(state, [
        certfr.FeedItem("CERTFR-2026-ALE-001", "Older", "javascript:alert(1)",
                        "2026-11-20T10:00:00Z", ""),
        certfr.FeedItem("CERTFR-2026-ALE-002", "Newest", "https://www.cert.ssi.gouv.fr/a2",
                        "2026-11-21T10:00:00Z", "Une vulnérabilité <b>grave</b>"),
    ], NOW)
    certfr.save_state(site.config.state_dir, state)
    html = site.client().get("/certfr").get_data(as_text=True)
    assert ('<a href="https://www.cert.ssi.gouv.fr/a2" rel="noopener noreferrer" '
            'target="_blank">Newest</a>') in html
    assert html.index("Newest") < html.index("Older")
    assert "javascript:" not in html
    assert "Une vulnérabilité &lt;b&gt;grave&lt;/b&gt;" in html
    assert [a["title"] for a in site.client().get("/api/certfr").get_json()["alerts"]] == [
        "Newest", "Older"]


def test_static_assets_are_served_by_the_app(site: Site) -> None:
    client = site.client()
    with client.get("/static/app.css") as css, client.get("/static/app.js") as js:
        assert css.status_code == 200 and css.mimetype == "text/css"
        assert js.status_code == 200
        assert js.mimetype in ("text/javascript", "application/javascript")
    html = client.get("/").get_data(as_text=True)
    assert not re.search(r"https?://", html.split("<main", 1)[0])  # no CDN, no external asset
