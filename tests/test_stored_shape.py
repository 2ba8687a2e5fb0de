"""A stored line that is valid JSON but not a sample (edited by hand, damaged, written by
something else) shows as a bad sample in ``osmon status`` and on the dashboard, never as
``ok`` with ``-`` everywhere; an older but well-formed sample is still good."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from web_fixtures import fill, make_site

from collector.times import format_ts, utc_now

OSMON = Path(sys.executable).with_name("osmon")


def status_json(config_path: Path) -> dict[str, Any]:
    run = subprocess.run([str(OSMON), "--config", str(config_path), "status", "--json"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return {h["name"]: h for h in json.loads(run.stdout)["hosts"]}


@pytest.mark.parametrize(("line", "reason"), [
    ({"ok": True}, "v: expected 1"),
    ({"v": 1, "host": "web1", "ok": True, "error": None}, "no section of any family"),
    ({"v": 1, "host": "web1", "ok": True, "cpu": "busy"}, "cpu: expected an object"),
    ({"v": 1, "host": "web1", "ok": "yes", "memory": {"percent": 5.0}}, "ok: expected true"),
    ({"v": 1, "host": "web1", "ok": True, "memory": {"percent": 250.0}}, "memory.percent"),
    ({"v": 1, "host": "web1", "ok": True, "disks": {"/": 50}}, "disks: expected a list"),
    ({"v": 1, "host": "web1", "ok": False, "error": "timeout"}, "error: expected an object"),
])
def test_a_stored_line_of_the_wrong_shape_is_a_bad_sample(tmp_path: Path, line: dict[str, Any],
                                                           reason: str) -> None:
    now = utc_now()
    site = make_site(tmp_path, [{"name": "web1"}], now=now)
    fill(site.store, "web1", now, count=2, step_s=30)
    day = site.store.day_files("web1")[-1].path
    with open(day, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"ts": format_ts(now), **line}) + "\n")

    host = status_json(site.config.path)["web1"]
    assert host["status"] == "down"
    assert host["error"].startswith("invalid-output: the stored sample has the wrong shape (")
    assert reason in host["error"]
    # The dashboard reads the same store through the same check.
    data = site.app(OSMON_CLOCK=lambda: now).test_client().get("/api/hosts/web1").get_json()
    assert data["host"]["status"] == "down" and data["sample"]["ok"] is False


def test_an_older_sample_without_todays_fields_is_still_good(tmp_path: Path) -> None:
    """Reading checks types and bounds, not completeness: a family that gained a field must
    not turn every stored sample of an older osmon into a bad one."""
    now = utc_now()
    site = make_site(tmp_path, [{"name": "web1"}], now=now)
    site.store.append("web1", {"v": 1, "ts": format_ts(now), "host": "web1", "ok": True,
                               "error": None, "collect": {"transport": "ssh"},
                               "memory": {"total": 8 << 30, "percent": 41.0}, "errors": {}})
    host = status_json(site.config.path)["web1"]
    assert host["status"] == "ok" and host["memory"] == 41.0
