"""Disk-full forecasts in a real browser (Debian's headless chromium) against ``osmon serve``
run for real: the overview's fullest-disk cell carries its mark as the server wrote it and as
the page's script rebuilds it from the API at each live refresh, a hostile mount as text."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from test_browser import (  # noqa: F401 - fixtures, used by name
    ARTIFACTS,
    TIMEOUT_MS,
    Feeder,
    Watched,
    base_url,
    browser,
    watched,
)
from web_fixtures import XSS_MOUNT, Site, make_site, sample

from collector.store import passlog
from collector.times import format_ts, utc_now

#: host -> (mount, use in percent, hours until full or None)
DISKS = {"central": ("/", 41.0, None), "web1": ("/var", 62.0, 3.0),
         "evil": (XSS_MOUNT, 50.0, 20.0)}


class ForecastFeeder(Feeder):
    def feed(self) -> None:
        now = utc_now().replace(microsecond=0)
        for host, (mount, percent, hours) in DISKS.items():
            s = sample(host, now, disk=percent, mount=mount)
            s["disks"][0]["full_in_s"] = None if hours is None else round(hours * 3600)
            self.site.store.append(host, s)
        passlog.record(self.site.config.state_dir, {
            "ts": format_ts(now), "duration_s": 0.1, "hosts": 3, "ok": 3, "failed": 0,
            "skipped": False})


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return make_site(tmp_path_factory.mktemp("browser-forecast"),
                     [{"name": "central", "local": True}, {"name": "web1"}, {"name": "evil"}],
                     interval_s=5)


@pytest.fixture(scope="module")
def feeder(site: Site) -> Iterator[Feeder]:
    f = ForecastFeeder(site)
    f.feed()
    f.start()
    yield f
    f.stop.set()
    f.join(timeout=30)


def marks(page) -> dict[str, tuple[str, str]]:
    """host -> (mark text, its class), read from the overview's rows."""
    return page.evaluate("""() => Object.fromEntries(
        [...document.querySelectorAll('table.hosts tbody tr')]
          .filter(r => r.querySelector('.mark'))
          .map(r => [r.cells[1].textContent, [r.querySelector('.mark').textContent,
                                              r.querySelector('.mark').className]]))""")


def test_the_fullest_disk_is_marked_before_and_after_a_live_refresh(
        base_url: str, watched: Watched) -> None:  # noqa: F811 - the fixtures imported above
    page = watched.page
    page.goto(base_url)
    expected = {"web1": ["/var full in about 3 h", "mark level-critical"],
                "evil": [f"{XSS_MOUNT} full in about 20 h", "mark level-warning"]}
    assert marks(page) == expected  # as the server wrote them
    generated = page.locator('footer [data-bind="generated"]').inner_text()
    page.wait_for_function(  # a live refresh: the rows are now the script's
        "g => document.querySelector('footer [data-bind=\"generated\"]').textContent !== g",
        arg=generated, timeout=TIMEOUT_MS)
    assert marks(page) == expected
    assert page.locator("main script").count() == 0
    page.screenshot(path=str(ARTIFACTS / "forecast-overview.png"), full_page=True)
    watched.assert_clean()
