# ruff: noqa: F811 - the browser fixtures imported from test_browser are used by name
"""What a new user meets in the browser (Debian's headless chromium against ``osmon serve``
run for real): the alerts page keeps its words whole, the overview reads on a phone, the
charts open on a range that holds the data, carry two legend colours and a value readout
under the pointer, and the overview draws each host's last hour.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from playwright.sync_api import Browser
from test_browser import (  # noqa: F401 - fixtures, used by name
    ARTIFACTS,
    TIMEOUT_MS,
    Feeder,
    Watched,
    base_url,
    browser,
    watched,
)
from web_fixtures import Site, make_site, sample

from collector.alerts import hook
from collector.alerts import rules as alert_rules
from collector.alerts import state as alert_store
from collector.store import rollup
from collector.times import format_ts, utc_now

HOSTS = [{"name": "central", "local": True, "tags": ["core"]},
         {"name": "web1", "tags": ["web"]}, {"name": "db-primary-01", "tags": ["db"]}]
HISTORY_MINUTES = 40

#: Every word (a run of letters and digits: "db-primary-01" may wrap after its hyphen, a
#: path after a slash) of every cell of the page's tables that the browser broke across
#: lines (a word wrapped inside itself has two or more line boxes).
SPLIT_WORDS = """() => {
  const split = [];
  for (const td of document.querySelectorAll("main table td")) {
    const walker = document.createTreeWalker(td, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const re = /[\\p{L}\\p{N}]+/gu;
      let m;
      while ((m = re.exec(node.data))) {
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
        if (tops.size > 1) { split.push(m[0]); }
      }
    }
  }
  return split;
}"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    s = make_site(tmp_path_factory.mktemp("browser-ux"), HOSTS, interval_s=5)
    now = utc_now().replace(microsecond=0)
    start = now - timedelta(minutes=HISTORY_MINUTES)
    state = None
    for minute in range(HISTORY_MINUTES):
        ts = start + timedelta(minutes=minute)
        samples = {"central": sample("central", ts, cpu=20.0 + minute),
                   "web1": sample("web1", ts, cpu=50.0, disk=97.0 if minute > 30 else 60.0,
                                  mount="/var/lib/postgresql/15/main"),
                   "db-primary-01": sample("db-primary-01", ts, cpu=99.0, memory=96.0)}
        for host, value in samples.items():
            s.store.append(host, value)
        state, notes = alert_rules.evaluate(s.config, state, samples, ts)
        alert_store.append_history(s.config.state_dir, hook.history_records(notes, format_ts(ts)))
    assert state is not None
    alert_store.save_state(s.config.state_dir, state)
    for host in ("central", "web1", "db-primary-01"):  # the rollups the passes would have made
        rollup.rebuild(s.store, host)
    return s


@pytest.fixture(scope="module")
def feeder(site: Site) -> Iterator[Feeder]:
    f = Feeder(site)
    f.cpu = {"central": 30.0, "web1": 50.0, "db-primary-01": 99.0}
    f.feed = lambda: feed_all(f)  # type: ignore[method-assign]
    f.feed()
    f.start()
    yield f
    f.stop.set()
    f.join(timeout=30)


def feed_all(f: Feeder) -> None:
    from collector.store import passlog

    now = utc_now().replace(microsecond=0)
    for host, cpu in list(f.cpu.items()):
        f.site.store.append(host, sample(host, now, cpu=cpu, disk=97.0 if host == "web1" else 50.0,
                                         mount="/var/lib/postgresql/15/main"))
    passlog.record(f.site.config.state_dir, {"ts": format_ts(now), "duration_s": 0.1,
                                             "hosts": 3, "ok": 3, "failed": 0,
                                             "skipped": False})


@pytest.mark.parametrize("width", [1280, 1024])
def test_the_alerts_page_never_splits_a_word(base_url: str, watched: Watched,
                                             width: int) -> None:
    page = watched.page
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(base_url + "alerts")
    assert page.locator('table[data-rows="history"] tbody tr').count() >= 3
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"alerts-{width}.png"), full_page=True)
    assert page.evaluate(SPLIT_WORDS) == []
    watched.assert_clean()


def test_a_new_hosts_page_opens_on_the_range_of_its_data(base_url: str,
                                                         watched: Watched) -> None:
    """Forty minutes of history: the page opens on the hour, fitted to the forty minutes."""
    page = watched.page
    page.goto(base_url + "hosts/central")
    assert page.locator('.ranges a[aria-current="page"]').inner_text() == "1h"
    src = page.locator("img[data-chart]").first.get_attribute("src")
    assert src.endswith("?range=1h&fit=1")  # and its axis starts at the first sample
    svg = page.evaluate("url => fetch(url).then(r => r.text())", src)
    xs = [float(x) for d in re.findall(r'<path d="(M[\d.]+ [\d.]+ L[^"]+)"', svg)
          for x in re.findall(r"([\d.]+) [\d.]+", d)]
    plot = max(xs) - min(xs)
    width = float(re.search(r'class="plot".*?<rect[^>]*width="([\d.]+)"', svg, re.S).group(1))
    assert plot > 0.8 * width  # the line spans the chart, not a few dots at its right edge
    watched.assert_clean()


def drawn_points(svg: str) -> tuple[float, float, list[tuple[float, float]]]:
    """pygal's own drawing of the first line: the plot's offset and the line's points."""
    dx, dy = (float(v) for v in re.search(
        r'<g transform="translate\(([\d.]+), ([\d.]+)\)" class="plot"', svg).groups())
    path = re.search(r'<path d="M([\d.]+ [\d.]+ L[^"]+)"', svg).group(1)
    points = [(float(x), float(y)) for x, y in re.findall(r"([\d.]+) ([\d.]+)", path)]
    return dx, dy, points


def test_hovering_a_chart_reads_the_value_and_time_under_the_pointer(
        base_url: str, site: Site, watched: Watched) -> None:
    page = watched.page
    page.goto(base_url + "hosts/central?range=1h")
    img = page.locator("img[data-chart]").first
    page.wait_for_function("() => { const i = document.querySelector('img[data-chart]');"
                           " return i.complete && i.naturalWidth > 0; }")
    svg = page.evaluate("url => fetch(url).then(r => r.text())", img.get_attribute("src"))
    dx, dy, points = drawn_points(svg)
    box = img.bounding_box()
    assert box is not None
    scale = box["width"] / 800
    readout = page.locator("figure").first.locator(".readout")
    oldest = site.store.oldest_ts("central")
    assert oldest is not None
    first = datetime.fromisoformat(oldest.replace("Z", "+00:00"))
    for minute in (5, 17):  # the sample of that minute had 20 + minute % CPU
        x, y = points[minute]
        page.mouse.move(box["x"] + (dx + x) * scale, box["y"] + (dy + y) * scale)
        readout.wait_for(state="visible")
        text = readout.inner_text()
        when = (first + timedelta(minutes=minute)).strftime("%Y-%m-%d %H:%M UTC")
        assert when in text and f"{20 + minute:.1f} %" in text, (minute, text)
    page.screenshot(path=str(ARTIFACTS / "readout.png"))
    page.mouse.move(box["x"] + 2, box["y"] + 2)  # off the plot: nothing to read
    readout.wait_for(state="hidden")
    watched.assert_clean()


def test_the_fleet_chart_reads_every_host_under_the_pointer(base_url: str,
                                                            watched: Watched) -> None:
    page = watched.page
    page.goto(base_url + "charts?range=1h")
    img = page.locator("img[data-chart]").first
    page.wait_for_function("() => { const i = document.querySelector('img[data-chart]');"
                           " return i.complete && i.naturalWidth > 0; }")
    box = img.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.4)
    readout = page.locator("figure").first.locator(".readout")
    readout.wait_for(state="visible")
    rows = readout.locator(".readout-row").all_inner_texts()
    assert [r.split()[0] for r in rows] == ["db-primary-01", "web1", "central"]  # highest first
    assert rows[0].split()[-2:] == ["99.0", "%"]
    watched.assert_clean()


PHONE_LAYOUT = """() => {
  const doc = document.documentElement;
  const table = document.querySelector("table.hosts");
  const rows = [...table.tBodies[0].rows].map(tr => {
    const box = tr.getBoundingClientRect();
    const part = sel => { const el = tr.querySelector(sel); if (!el) return null;
                          const r = el.getBoundingClientRect();
                          return {left: r.left, right: r.right, top: r.top, bottom: r.bottom,
                                  visible: r.width > 0 && r.height > 0,
                                  text: el.textContent}; };
    return {top: box.top, height: box.height, status: part(".badge"), host: part("a"),
            why: part("td:nth-last-child(2)"), spark: part("svg.spark")};
  });
  return {pageWidth: doc.scrollWidth, viewport: doc.clientWidth,
          tableOverflow: table.parentElement.scrollWidth - table.parentElement.clientWidth,
          rows};
}"""


def check_phone_layout(layout: dict) -> None:
    assert layout["pageWidth"] <= layout["viewport"] == 390, "the page scrolls sideways"
    assert layout["tableOverflow"] <= 0, "the host table scrolls sideways"
    assert len(layout["rows"]) == 3
    for row in layout["rows"]:
        status, host, why = row["status"], row["host"], row["why"]
        assert status["visible"] and host["visible"] and why["visible"], row
        for part in (status, host, why, row["spark"]):
            assert part["left"] >= 0 and part["right"] <= 390, row
        assert abs(status["top"] - host["top"]) < 12, "status and host share the first line"
        assert status["top"] - row["top"] < 16 and why["top"] >= host["top"], row
    db = next(r for r in layout["rows"] if r["host"]["text"] == "db-primary-01")
    assert "critical: cpu 99" in db["why"]["text"]  # what is wrong, in words


def test_the_overview_reads_on_a_phone_without_sideways_scrolling(base_url: str,
                                                                  browser: Browser) -> None:
    watched = Watched(browser)
    page = watched.page
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(base_url)
    check_phone_layout(page.evaluate(PHONE_LAYOUT))
    page.screenshot(path=str(ARTIFACTS / "overview-phone.png"), full_page=True)
    generated = page.locator('footer [data-bind="generated"]').inner_text()
    page.wait_for_function(  # a live refresh: the rows are now the script's, not the server's
        "g => document.querySelector('footer [data-bind=\"generated\"]').textContent !== g",
        arg=generated, timeout=TIMEOUT_MS)
    check_phone_layout(page.evaluate(PHONE_LAYOUT))
    watched.assert_clean()
    page.close()


def test_every_row_of_the_overview_draws_its_last_hour(base_url: str, watched: Watched) -> None:
    page = watched.page
    page.goto(base_url)
    sparks = page.locator("table.hosts tbody svg.spark")
    assert sparks.count() == 3
    cpu = page.locator("table.hosts tbody svg.spark path.spark-cpu").first.get_attribute("d")
    assert cpu.startswith("M") and " L" in cpu
    label = sparks.first.get_attribute("aria-label")
    assert label.startswith("last hour: CPU ")
    page.screenshot(path=str(ARTIFACTS / "overview-sparklines.png"), full_page=True)
    assert page.evaluate("() => { const s = document.querySelector('table.hosts').parentElement;"
                         " return s.scrollWidth - s.clientWidth; }") <= 0  # fits 1280 px
    generated = page.locator('footer [data-bind="generated"]').inner_text()
    page.wait_for_function(
        "g => document.querySelector('footer [data-bind=\"generated\"]').textContent !== g",
        arg=generated, timeout=TIMEOUT_MS)
    assert sparks.count() == 3  # redrawn by the script from /api/overview
    redrawn = page.locator("table.hosts tbody svg.spark path.spark-cpu").first
    assert redrawn.get_attribute("d").startswith("M")
    assert page.evaluate("() => getComputedStyle(document.querySelector("
                         "'path.spark-cpu')).stroke") == "rgb(0, 114, 178)"
    watched.assert_clean()
