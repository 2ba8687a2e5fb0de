"""The overview's sparklines: each host's CPU and memory over the last hour, from the 5-minute
rollups (written by the real rollup code, as the pass does) and the newest sample."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from pathlib import Path

from web_fixtures import NOW, Site, failed_sample, make_site, sample

from collector.store import rollup
from web import sparklines

SVG = re.compile(r'<svg class="spark"[^>]*aria-label="([^"]*)"><title>[^<]*</title>'
                 r'<path class="spark-cpu" d="([^"]*)"/><path class="spark-memory" d="([^"]*)"/>'
                 r"</svg>")


def hour_of(site: Site, host: str, end: datetime, cpu_of=lambda m: 10.0 + m,
            down: range = range(0)) -> None:
    """An hour of one sample a minute ending at ``end``, and its rollups, as passes leave
    them (``cpu_of(minute)`` percent CPU, memory at 40 %)."""
    for minute in range(60):
        ts = end - timedelta(minutes=59 - minute)
        value = (failed_sample(host, ts) if minute in down
                 else sample(host, ts, cpu=cpu_of(minute), memory=40.0))
        site.store.append(host, value)
        rollup.on_pass(site.config, site.store, {host: value}, ts, time.monotonic() + 30)


def row_svg(html: str, host: str) -> tuple[str, list[tuple[float, float]], str]:
    row = re.search(rf'<tr>(?:(?!</tr>).)*href="/hosts/{host}"(?:(?!</tr>).)*</tr>', html,
                    re.S).group(0)
    label, cpu, memory = SVG.search(row).groups()
    points = [(float(x), float(y)) for x, y in re.findall(r"[ML]([\d.]+) ([\d.]+)", cpu)]
    return label, points, memory


def test_each_row_draws_the_last_hour_of_cpu_and_memory(tmp_path: Path) -> None:
    site = make_site(tmp_path, [{"name": "web1"}])
    hour_of(site, "web1", NOW)
    html = site.client().get("/").get_data(as_text=True)
    label, points, memory = row_svg(html, "web1")
    assert label == "last hour: CPU 12-69 %, memory 40 %"  # 5-minute peaks, then the newest
    assert len(points) == 13  # the 12 closed buckets of the hour, and the newest sample
    ys = [y for _x, y in points]
    assert ys == sorted(ys, reverse=True)  # CPU rose all hour: the line climbs
    assert points[-1][0] == 100.0  # the newest sample is now, at the right edge
    assert memory.startswith("M") and " L" in memory
    assert 'style="' not in html.split("<main", 1)[1]  # the policy forbids inline style


def test_a_host_down_for_a_while_is_a_gap_and_a_new_bucket_shows(tmp_path: Path) -> None:
    site = make_site(tmp_path, [{"name": "web1"}])
    hour_of(site, "web1", NOW, down=range(20, 35))
    client = site.client()
    cpu = SVG.search(client.get("/").get_data(as_text=True)).group(2)
    assert cpu.count("M") == 2  # two pieces: before and after the outage
    # Five more minutes: a bucket closes; the cache reads only the new line and shows it.
    later = NOW + timedelta(minutes=5)
    for minute in range(1, 6):
        ts = NOW + timedelta(minutes=minute)
        value = sample("web1", ts, cpu=95.0, memory=40.0)
        site.store.append("web1", value)
        rollup.on_pass(site.config, site.store, {"web1": value}, ts, time.monotonic() + 30)
    site.now = later
    label, _points, _memory = row_svg(client.get("/").get_data(as_text=True), "web1")
    assert label.startswith("last hour: CPU ") and label.endswith("-95 %, memory 40 %")


def test_the_api_gives_the_points_the_page_draws(tmp_path: Path) -> None:
    site = make_site(tmp_path, [{"name": "web1"}, {"name": "new"}])
    hour_of(site, "web1", NOW)
    site.store.append("new", sample("new", NOW, cpu=33.0))  # no rollup yet: the newest only
    hosts = {h["name"]: h for h in site.client().get("/api/overview").get_json()["hosts"]}
    last_hour = hosts["web1"]["last_hour"]
    assert [v for _t, v in last_hour["cpu"]][:3] == [12.0, 17.0, 22.0]  # the 5-minute peaks
    assert last_hour["cpu"][-1] == [NOW.timestamp(), 69.0]
    assert last_hour["label"] == "last hour: CPU 12-69 %, memory 40 %"
    assert hosts["new"]["last_hour"]["cpu"] == [[NOW.timestamp(), 33.0]]
    assert "last_hour" not in site.client().get("/api/hosts").get_json()["hosts"][0]


def test_a_torn_or_foreign_rollup_line_is_skipped() -> None:
    good = (b'{"v":1,"t":"2026-11-21T22:40:00Z","n":5,"f":0,"m":{"cpu":{"cpu":[1,2,3,5]}},'
            b'"c":{"cpu":[1.0,2.0,3.0,5],"memory":[40.0,40.0,41.0,5]}}')
    assert sparklines._peaks(good) == (datetime.fromisoformat("2026-11-21T22:40:00+00:00")
                                       .timestamp(), {"cpu": 3.0, "memory": 41.0})
    assert sparklines._peaks(good[:-20]) is None
    down = good.replace(b'"n":5', b'"n":0')
    assert sparklines._peaks(down)[1] == {"cpu": None, "memory": None}
    assert sparklines._peaks(b'{"v":1,"t":"nonsense"}') is None
