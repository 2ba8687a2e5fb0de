"""Silences and acknowledgements in a real browser (Debian's headless chromium) against
``osmon serve`` run for real: an admin logs in, silences a host and acknowledges an alert with
the page's forms, and what they typed (hostile on purpose) shows as text, also after the
page's script has rebuilt the tables from the API."""

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
from web_fixtures import PASSWORD, Site, make_site, sample

from collector.alerts import rules as alert_rules
from collector.alerts import state as alert_store
from collector.times import utc_now

HOSTILE_REASON = "<img src=x onerror=alert('reason')>"
HOSTILE_ACK = "</td><script>alert('ack')</script>"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    s = make_site(tmp_path_factory.mktemp("browser-silences"),
                  [{"name": "central", "local": True}, {"name": "web1", "tags": ["web"]}],
                  interval_s=5)
    s.set_password()
    now = utc_now().replace(microsecond=0)
    state, _notes = alert_rules.evaluate(s.config, None, {"web1": sample("web1", now, disk=97.0)},
                                         now)
    alert_store.save_state(s.config.state_dir, state)
    return s


@pytest.fixture(scope="module")
def feeder(site: Site) -> Iterator[Feeder]:
    f = Feeder(site)
    f.cpu = {"central": 20.0, "web1": 30.0}
    f.feed()
    f.start()
    yield f
    f.stop.set()
    f.join(timeout=30)


def test_silence_and_acknowledge_from_the_pages(
        base_url: str, watched: Watched) -> None:  # noqa: F811 - the fixtures imported above
    page = watched.page
    page.goto(base_url + "login?next=/hosts/web1")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/hosts/web1")
    form = page.locator("#silence-form")
    form.locator("input[name=duration]").fill("45m")
    form.locator("input[name=reason]").fill(HOSTILE_REASON)
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/hosts/web1")
    assert "Silenced web1 until" in page.locator(".banner-info").inner_text()
    assert page.locator("h1 .status-silenced").is_visible()
    ack = page.locator("#ack-form")
    ack.locator("input[name=reason]").fill(HOSTILE_ACK)
    ack.locator("button[type=submit]").click()
    page.wait_for_url("**/hosts/web1")
    cells = page.locator('table[data-rows="active_alerts"] tbody tr').first.locator("td")
    generated = page.locator('footer [data-bind="generated"]').inner_text()
    page.wait_for_function(  # a live refresh: the table is now the script's, not the server's
        "g => document.querySelector('footer [data-bind=\"generated\"]').textContent !== g",
        arg=generated, timeout=TIMEOUT_MS)
    assert cells.nth(6).inner_text().endswith(f"by admin: {HOSTILE_REASON}")
    assert cells.nth(7).inner_text().endswith(f": {HOSTILE_ACK}")
    page.screenshot(path=str(ARTIFACTS / "silences-host.png"), full_page=True)
    page.goto(base_url)
    generated = page.locator('footer [data-bind="generated"]').inner_text()
    page.wait_for_function(
        "g => document.querySelector('footer [data-bind=\"generated\"]').textContent !== g",
        arg=generated, timeout=TIMEOUT_MS)
    status = page.locator("table.hosts tbody tr", has_text="web1").locator("td").first
    assert status.inner_text().split() == ["critical", "silenced"]  # its alert: still shown
    assert page.locator("img[src='x'], main script").count() == 0
    page.goto(base_url + "alerts")
    page.screenshot(path=str(ARTIFACTS / "silences-alerts.png"), full_page=True)
    watched.assert_clean()
