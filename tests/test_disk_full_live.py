"""Disk-full forecasts through real passes: the central host's real "/" is measured by the
pass, its trend state says how it grew over the last hour (written as earlier passes would
have), and the alert fires, is stored, served and mailed; then the growth stops, and it
clears.

A real pass cannot wait hours for a trend, so the earlier passes' state is built by the very
function the pass runs (``disk_trend.update``, one pass a minute), ending at the real disk's
use now: an hour of growth for the first real pass; for the second, the same growth followed
by an hour and a half of the disk standing still, observed pass by pass.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import psutil
from mail_fixtures import SmtpSink

from collector import config as config_mod
from collector.metrics import disk_trend
from collector.passes.collect import run_pass
from collector.store import disk_trend as trend_store
from collector.store.samples import Store
from web import create_app

HOUR = 3600.0


def write_config(tmp_path: Path, smtp_port: int) -> config_mod.Config:
    path = tmp_path / "hosts.toml"
    path.write_text(f"""
[settings]
data_dir = "data"

[thresholds]
# Hours until full: a real disk is not filling fast, the trend below says it is, slowly.
disk_full = {{ warning_h = 2000, critical_h = 1000, for = 1 }}
disk = {{ warning = false, critical = false }}
cpu = {{ warning = false, critical = false }}
memory = {{ warning = false, critical = false }}
swap = {{ warning = false, critical = false }}
load = {{ warning = false, critical = false }}

[smtp]
host = "127.0.0.1"
port = {smtp_port}
from = "osmon@example.org"
to = ["ops@example.org"]

[certfr]
enabled = false

[[hosts]]
name = "central"
local = true
""", encoding="utf-8")
    return config_mod.load(path)


def seed_trend(config: config_mod.Config, full_in_h: float, *, flat_min: int = 0
               ) -> tuple[float, list[float | None]]:
    """The state the passes of the last hours would have left for "/", one a minute: filling
    for an hour at the rate that makes it full in ``full_in_h``, then, for the last
    ``flat_min`` minutes, flat at the real disk's use now.  Returns that use, in percent,
    and the forecast (hours) of each flat pass, as ``disk_trend.update`` gave it."""
    usage = psutil.disk_usage("/")
    room = usage.used + usage.free
    now_percent = 100.0 * usage.used / room
    rate = (100.0 - now_percent) / full_in_h
    state: Any = None
    now = time.time()
    flat: list[float | None] = []
    for minute in range(60 + flat_min, 0, -1):
        percent = now_percent - rate * max(0, minute - flat_min) / 60.0
        used = int(room * percent / 100)
        disks = [{"mount": "/", "total": usage.total, "used": used, "free": room - used,
                  "percent": round(percent, 1)}]
        out, new = disk_trend.update(state, disks, now - minute * 60.0, "central")
        state = new if new is not None else state
        if minute <= flat_min:
            full_in = out[0]["full_in_s"]
            flat.append(None if full_in is None else full_in / HOUR)
    trend_store.save(config.state_dir, "central", state)
    return now_percent, flat


def root_disk(sample: dict[str, Any]) -> dict[str, Any]:
    return next(d for d in sample["disks"] if d["mount"] == "/")


def test_a_real_pass_forecasts_alerts_stores_serves_and_clears(tmp_path: Path) -> None:
    with SmtpSink() as sink:
        config = write_config(tmp_path, sink.port)
        percent, _flat = seed_trend(config, full_in_h=600.0)
        result = run_pass(config)
        sample = result.outcomes[0].sample
        assert sample["ok"], sample.get("error")
        full_in = root_disk(sample)["full_in_s"]
        assert full_in is not None and abs(full_in / HOUR - 600.0) < 30.0

        stored = Store(config.settings.data_dir).latest("central")
        assert stored is not None and root_disk(stored)["full_in_s"] == full_in
        assert len(sink.messages) == 1
        assert sink.messages[0]["Subject"] == "[osmon] CRITICAL central disk_full / 25 d"
        text = sink.messages[0].get_body(("plain",)).get_content()
        assert "disk_full / on central will be full in about 25 d, around " in text
        assert f"; {percent:.1f} % used now (critical under 42 d)" in text

        client = create_app(config).test_client()
        data = client.get("/api/hosts/central").get_json()
        assert [d["full_in_s"] for d in data["disks"] if d["mount"] == "/"] == [full_in]
        assert data["disks_ts"] == stored["ts"]
        assert data["host"]["disk_mark"] == "/ full in about 25 d"
        assert data["host"]["levels"]["disk_full"] == "critical"

        # The same growth, which stopped 90 minutes ago: pass after pass, the forecast never
        # got worse than when it stopped, then said "not filling"; the real pass agrees.
        _percent, flat = seed_trend(config, full_in_h=600.0, flat_min=90)
        assert flat[0] is not None and abs(flat[0] - 600.0) < 30.0
        assert all(f is None or f >= flat[0] - 0.25 for f in flat)
        assert flat[-30:] == [None] * 30
        run_pass(config)
        assert root_disk(Store(config.settings.data_dir).latest("central"))["full_in_s"] is None
        assert len(sink.messages) == 2
        assert sink.messages[1]["Subject"] == "[osmon] RESOLVED central disk_full / not filling"
        assert "disk_full / on central is no longer filling up" in \
            sink.messages[1].get_body(("plain",)).get_content()
    state = json.loads((config.state_dir / "disk-trend" / "central.json").read_text())
    assert state["version"] == 1 and "/" in state["mounts"]
