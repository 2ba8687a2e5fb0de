"""Disk-full forecasts where the admin looks: the API (even after failed passes), the host
page's disks table, the overview's fullest-disk cell; stored samples built for the purpose."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from web_fixtures import NOW, XSS_MOUNT, failed_sample, make_site, sample

from collector.store.samples import Store

HOUR = 3600


def forecast_sample(host: str, when, *, disk: float = 62.0, mount: str = "/var",
                    full_in_h: float | None = 5.0) -> dict:
    s = sample(host, when, disk=disk, mount=mount)
    s["disks"][0]["full_in_s"] = None if full_in_h is None else round(full_in_h * HOUR)
    return s


def test_the_api_gives_the_last_good_disks_even_after_failed_passes(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    good = NOW - timedelta(minutes=30)
    site.store.append("web1", forecast_sample("web1", good))
    for minutes in range(29, -1, -1):
        site.store.append("web1", failed_sample("web1", NOW - timedelta(minutes=minutes)))
    data = site.client().get("/api/hosts/web1").get_json()
    assert data["sample"]["ok"] is False and data["host"]["status"] == "down"
    assert data["disks_ts"] == "2026-11-21T22:11:00Z"
    assert [(d["mount"], d["percent"], d["full_in_s"]) for d in data["disks"]] == [
        ("/var", 62.0, 5 * HOUR)]



def test_a_down_hosts_last_good_disks_are_read_once_per_change_of_its_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A host page polls /api/hosts/<name>: for a down host, its day files are searched for
    its last good disks when they change (a pass), not at every poll of every tab."""
    site = make_site(tmp_path)
    site.store.append("web1", forecast_sample("web1", NOW - timedelta(minutes=30)))
    for minutes in range(29, 0, -1):
        site.store.append("web1", failed_sample("web1", NOW - timedelta(minutes=minutes)))
    searches: list[str] = []
    search = Store.latest_good

    def counted(self: Store, host: str, *args: Any, **kwargs: Any) -> Any:
        searches.append(host)
        return search(self, host, *args, **kwargs)

    monkeypatch.setattr(Store, "latest_good", counted)
    client = site.client()
    for _ in range(3):
        data = client.get("/api/hosts/web1").get_json()
        assert data["disks_ts"] == "2026-11-21T22:11:00Z" and len(data["disks"]) == 1
    assert searches == ["web1"]
    site.store.append("web1", failed_sample("web1", NOW))  # the next pass failed too
    data = client.get("/api/hosts/web1").get_json()
    assert data["sample"]["ts"] == "2026-11-21T22:41:00Z"
    assert data["disks_ts"] == "2026-11-21T22:11:00Z"
    assert searches == ["web1", "web1"]


def test_a_good_line_of_the_wrong_shape_is_not_the_last_good_disks(tmp_path: Path) -> None:
    """The last good sample is checked on read as the newest one is (an edited or damaged
    line must not show a disk at 250 %): the one before it is taken."""
    site = make_site(tmp_path)
    site.store.append("web1", forecast_sample("web1", NOW - timedelta(minutes=30)))
    damaged = forecast_sample("web1", NOW - timedelta(minutes=20))
    damaged["disks"][0]["percent"] = 250.0
    site.store.append("web1", damaged)
    for minutes in range(19, -1, -1):
        site.store.append("web1", failed_sample("web1", NOW - timedelta(minutes=minutes)))
    data = site.client().get("/api/hosts/web1").get_json()
    assert data["disks_ts"] == "2026-11-21T22:11:00Z"
    assert [(d["mount"], d["percent"]) for d in data["disks"]] == [("/var", 62.0)]

def test_the_api_gives_the_newest_disks_when_the_pass_went_well(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    site.store.append("web1", forecast_sample("web1", NOW - timedelta(minutes=1)))
    site.store.append("web1", forecast_sample("web1", NOW, full_in_h=None))
    data = site.client().get("/api/hosts/web1").get_json()
    assert data["disks_ts"] == "2026-11-21T22:41:00Z"
    assert [d["full_in_s"] for d in data["disks"]] == [None]
    (tmp_path / "never").mkdir()
    never = make_site(tmp_path / "never").client().get("/api/hosts/web1").get_json()
    assert never["disks"] == [] and never["disks_ts"] is None


def test_the_host_page_has_a_full_in_column_and_a_line(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    site.store.append("web1", forecast_sample("web1", NOW, full_in_h=26.5))
    html = site.client().get("/hosts/web1").get_data(as_text=True)
    assert 'data-key="full_in_s" data-format="duration">Full in</th>' in html
    assert "<td class=\"num\">1 d 2 h</td>" in html
    assert re.search(r"<dt>Disk full in</dt><dd[^>]*>1 d 2 h <span class=\"mount\">/var</span>",
                     html)


def test_the_overview_marks_the_disk_that_will_be_full_soon(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    site.store.append("web1", forecast_sample("web1", NOW, full_in_h=3.0))
    site.store.append("central", forecast_sample("central", NOW, full_in_h=30.0))
    client = site.client()
    html = client.get("/").get_data(as_text=True)
    assert ('data-mark="disk_mark" data-mark-level="levels.disk_full"') in html
    assert '<span class="mark level-critical">/var full in about 3 h</span>' in html
    assert html.count('class="mark ') == 1  # central fills, but not within 24 h
    hosts = {h["name"]: h for h in client.get("/api/overview").get_json()["hosts"]}
    assert hosts["web1"]["disk_mark"] == "/var full in about 3 h"
    assert hosts["web1"]["levels"]["disk_full"] == "critical"
    assert hosts["web1"]["status"] == "critical"
    assert "critical: /var full in about 3 h" in hosts["web1"]["reasons"]
    assert hosts["central"]["disk_mark"] is None


def test_a_hostile_mount_in_the_mark_is_text(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    site.store.append("web1", forecast_sample("web1", NOW, mount=XSS_MOUNT, full_in_h=2.0))
    html = site.client().get("/").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt; full in about 2 h" in html
