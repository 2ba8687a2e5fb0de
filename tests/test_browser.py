"""The dashboard in a real browser: Debian's headless chromium, driven by Playwright, against
``osmon serve`` run for real on loopback over a data folder this test builds and keeps fresh.

A feeder thread plays the collector: every two seconds it appends a sample per host and
records a pass, so hosts stay "ok" on the page and live refresh has something to show.
Screenshots go to ``tests/artifacts/`` (not committed) for people to look at.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, Page, sync_playwright
from web_fixtures import XSS_MOUNT, XSS_PROCESS, XSS_USER, Site, hostile_sample, make_site, sample

from collector.store import passlog
from collector.times import format_ts, utc_now

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
#: Generous: the machine may be busy with other tests.
TIMEOUT_MS = 60_000
WEB1_CPU = 87.25
HOSTS = [{"name": "central", "local": True, "tags": ["core"]},
         {"name": "web1", "tags": ["web"]}, {"name": "web2", "tags": ["web"]},
         {"name": "live1", "tags": ["db"]}, {"name": "evil"}]


class Feeder(threading.Thread):
    """Appends one sample per host every ``period_s`` and records the pass, like a collector."""

    def __init__(self, site: Site, period_s: float = 2.0) -> None:
        super().__init__(name="feeder", daemon=True)
        self.site = site
        self.period_s = period_s
        self.cpu = {"central": 23.0, "web1": WEB1_CPU, "web2": 97.0, "live1": 10.0}
        self.stop = threading.Event()

    def feed(self) -> None:
        now = utc_now().replace(microsecond=0)
        for host, cpu in list(self.cpu.items()):
            self.site.store.append(host, sample(host, now, cpu=cpu))
        self.site.store.append("evil", hostile_sample("evil", now))
        passlog.record(self.site.config.state_dir, {
            "ts": format_ts(now), "duration_s": 0.1, "hosts": 5, "ok": 5, "failed": 0,
            "skipped": False})

    def run(self) -> None:
        while not self.stop.wait(self.period_s):
            self.feed()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    s = make_site(tmp_path_factory.mktemp("browser"), HOSTS, interval_s=5)
    start = utc_now().replace(microsecond=0) - timedelta(minutes=40)
    for minute in range(40):  # forty minutes of history: the charts have lines to draw
        ts = start + timedelta(minutes=minute)
        for host, cpu in (("central", 23.0), ("web1", WEB1_CPU), ("web2", 97.0),
                          ("live1", 10.0)):
            s.store.append(host, sample(host, ts, cpu=cpu))
    return s


@pytest.fixture(scope="module")
def feeder(site: Site) -> Iterator[Feeder]:
    f = Feeder(site)
    f.feed()
    f.start()
    yield f
    f.stop.set()
    f.join(timeout=30)


@pytest.fixture(scope="module")
def base_url(site: Site, feeder: Feeder) -> Iterator[str]:
    """``osmon serve`` in a subprocess, on a port the kernel picks (--port 0)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [sys.executable, "-m", "collector", "--config", str(site.config.path), "serve",
         "--host", "127.0.0.1", "--port", "0"],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    drain = threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr],
                             daemon=True)
    drain.start()
    seen = []
    try:
        while True:
            try:
                line = lines.get(timeout=60)
            except queue.Empty:
                pytest.fail(f"osmon serve did not start within 60 s: {seen}")
            seen.append(line)
            match = re.search(r"dashboard on (http://127\.0\.0\.1:\d+/)", line)
            if match:
                break
        yield match.group(1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        drain.join(timeout=30)
        proc.stderr.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the browser tests need Debian's chromium "
                    "(apt-get install chromium; .ci/test installs it)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                               headless=True)
        yield b
        b.close()


class Watched:
    """A page that records every dialog (an executed alert()) and every console error."""

    def __init__(self, browser: Browser) -> None:
        self.page: Page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.page.set_default_timeout(TIMEOUT_MS)
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page.on("dialog", self._dialog)
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def assert_clean(self) -> None:
        assert self.dialogs == [], f"a script from host data ran: {self.dialogs}"
        assert self.errors == [], f"errors in the browser console: {self.errors}"


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    w = Watched(browser)
    yield w
    w.page.close()


def host_names(page: Page) -> list[str]:
    return page.locator("table.hosts tbody tr td:nth-child(2)").all_inner_texts()


def fetch_text(page: Page, url: str) -> str:
    return page.evaluate("url => fetch(url).then(r => r.text())", url)


def chart_values(svg: str) -> list[float]:
    """The y values of the chart's data lines, read back through its 0 % and 100 % guides."""
    guides = sorted(float(y) for y in re.findall(r'<path d="M0\.0+ ([\d.]+) h[\d.]+"', svg))
    zero, hundred = guides[-1], guides[0]
    values = []
    for d in re.findall(r'<path d="(M[\d.]+ [\d.]+ L[^"]+)"', svg):
        ys = [float(y) for y in re.findall(r"[\d.]+ ([\d.]+)", d)]
        values += [(zero - y) / (zero - hundred) * 100 for y in ys]
    return values


def test_overview_shows_every_host_with_its_status(base_url: str, watched: Watched) -> None:
    page = watched.page
    page.goto(base_url)
    assert sorted(host_names(page)) == ["central", "evil", "live1", "web1", "web2"]
    statuses = dict(zip(host_names(page),
                        page.locator("table.hosts tbody tr td:nth-child(1)").all_inner_texts()))
    assert statuses["web2"] == "critical" and statuses["web1"] == "warning"
    assert statuses["central"] == "ok"
    assert host_names(page)[0] in ("web2", "evil")  # worst first
    assert XSS_MOUNT in page.locator("table.hosts").inner_text()  # shown as text
    assert page.locator(".banner-stale").is_hidden()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)
    watched.assert_clean()


def test_sorting_and_the_tag_filter(base_url: str, watched: Watched) -> None:
    page = watched.page
    page.goto(base_url)
    page.get_by_role("button", name="Host").click()
    assert host_names(page) == ["central", "evil", "live1", "web1", "web2"]
    page.get_by_role("button", name="Host").click()
    assert host_names(page) == ["web2", "web1", "live1", "evil", "central"]
    page.select_option("#tag-filter", "web")
    page.wait_for_function("() => document.querySelectorAll('table.hosts tbody tr').length === 2")
    assert sorted(host_names(page)) == ["web1", "web2"]
    assert page.url.endswith("/?tag=web")
    watched.assert_clean()


def test_host_page_charts_contain_the_data(base_url: str, watched: Watched) -> None:
    page = watched.page
    page.goto(base_url + "hosts/web1?range=1h")
    images = page.locator("img[data-chart]")
    assert images.count() == 6
    page.wait_for_function("() => [...document.querySelectorAll('img[data-chart]')]"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    cpu_url = images.first.get_attribute("src")
    assert cpu_url.startswith("/hosts/web1/charts/cpu.svg?range=1h")
    svg = fetch_text(page, cpu_url)
    values = chart_values(svg)
    assert len(values) >= 30, "the CPU line should have a point per sample"
    assert all(abs(v - WEB1_CPU) < 0.5 for v in values), values[:5]
    assert page.locator('[data-bind="host.cpu"]').inner_text() in ("87.2 %", "87.3 %")
    assert "alice" in page.locator('table[data-rows="sample.users"]').inner_text()
    page.screenshot(path=str(ARTIFACTS / "host.png"), full_page=True)
    watched.assert_clean()


def test_range_switch_changes_the_charts(base_url: str, watched: Watched) -> None:
    page = watched.page
    page.goto(base_url + "hosts/web1?range=24h")
    before = page.locator("img[data-chart]").first.get_attribute("src")
    assert before.endswith("range=24h")
    day_svg = fetch_text(page, before)
    page.get_by_role("link", name="1h", exact=True).click()
    page.wait_for_url(re.compile(r".*/hosts/web1\?range=1h$"))
    sources = [img.get_attribute("src") for img in page.locator("img[data-chart]").all()]
    assert all(src.endswith("range=1h") for src in sources)
    hour_svg = fetch_text(page, sources[0])
    assert "last 1h" in hour_svg and "last 24h" in day_svg and hour_svg != day_svg
    assert page.locator('.ranges a[aria-current="page"]').inner_text() == "1h"
    watched.assert_clean()


def test_fleet_charts_show_every_host_and_follow_new_samples(base_url: str,
                                                             watched: Watched) -> None:
    page = watched.page
    page.goto(base_url + "charts?range=1h")
    images = page.locator("img[data-chart]")
    assert images.count() == 6
    page.wait_for_function("() => [...document.querySelectorAll('img[data-chart]')]"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    first = images.first.get_attribute("src")
    assert first == "/charts/cpu.svg?range=1h"
    svg = fetch_text(page, first)
    for host in ("central", "web1", "web2", "live1"):
        assert f">{host}</text>" in svg, host  # one line per host, named in the legend
    page.screenshot(path=str(ARTIFACTS / "charts.png"), full_page=True)
    # The feeder writes a sample every 2 s: the next live refresh reloads the charts.
    page.wait_for_function(
        "src => document.querySelector('img[data-chart]').getAttribute('src') !== src",
        arg=first)
    assert images.first.get_attribute("src").startswith(first + "&v=")
    watched.assert_clean()


def test_hostile_host_data_shows_as_text_and_runs_nothing(base_url: str,
                                                          watched: Watched) -> None:
    page = watched.page
    page.goto(base_url + "hosts/evil")
    processes = page.locator('table[data-rows="sample.processes.top"] tbody td')
    assert processes.nth(1).text_content() == XSS_PROCESS
    assert processes.nth(2).text_content() == XSS_USER
    generated = page.locator('footer [data-bind="generated"]').inner_text()
    # Wait for a live refresh: the tables are then rebuilt by the script, not the server.
    page.wait_for_function(
        "g => document.querySelector('footer [data-bind=\"generated\"]').textContent !== g",
        arg=generated)
    assert processes.nth(1).text_content() == XSS_PROCESS
    assert page.locator('table[data-rows="sample.disks"] tbody td').first.text_content() == (
        XSS_MOUNT)
    assert page.locator("img[src='x']").count() == 0
    assert page.locator("main script, main b").count() == 0
    page.screenshot(path=str(ARTIFACTS / "hostile.png"), full_page=True)
    watched.assert_clean()


def test_live_refresh_shows_new_data_without_reload(feeder: Feeder, base_url: str,
                                                    browser: Browser, watched: Watched) -> None:
    page = watched.page
    page.goto(base_url + "hosts/live1")
    assert page.locator('[data-bind="host.cpu"]').inner_text() == "10.0 %"
    chart = page.locator("img[data-chart]").first.get_attribute("src")
    overview_watch = Watched(browser)
    overview = overview_watch.page
    overview.goto(base_url)
    page.evaluate("window.osmonNotReloaded = true")
    feeder.cpu["live1"] = 42.5
    page.wait_for_function(
        "() => document.querySelector('[data-bind=\"host.cpu\"]').textContent === '42.5 %'",
        timeout=TIMEOUT_MS)
    assert page.evaluate("window.osmonNotReloaded") is True
    assert page.locator("img[data-chart]").first.get_attribute("src").startswith(chart + "&v=")
    overview.wait_for_function(
        "() => [...document.querySelectorAll('table.hosts tbody tr')].some(r => "
        "r.cells[1].textContent === 'live1' && r.cells[4].textContent === '42.5 %')",
        timeout=TIMEOUT_MS)
    overview_watch.assert_clean()
    overview.close()
    watched.assert_clean()
