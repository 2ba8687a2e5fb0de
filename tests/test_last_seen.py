""""Last seen" is when a host last answered, not when we last tried: a host that never
answered says "never" on the overview, the host page, the API and ``osmon status``.

Real passes against the real test sshd (a refused port plays the dead host); the failure line
carries ``last_ok``, the time of the host's newest good sample, so readers need no search.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import sshd as harness
from web_fixtures import failed_sample, sample

from collector import config as config_mod
from collector.config import Config
from collector.passes import collect
from collector.store.samples import Store
from collector.times import format_ts
from web import create_app

NOW = datetime(2026, 11, 21, 22, 41, 0, tzinfo=timezone.utc)
OSMON = Path(sys.executable).with_name("osmon")
Inventory = Callable[..., Config]


def app_client(config: Config, now: datetime):  # noqa: ANN201 - Flask's test client
    return create_app(config, test_config={"TESTING": True,
                                           "OSMON_CLOCK": lambda: now}).test_client()


def overview_last_seen(config: Config, now: datetime) -> dict[str, str]:
    html = app_client(config, now).get("/").get_data(as_text=True)
    rows = re.findall(r'<a href="/hosts/(\w+)">\w+</a></td><td[^>]*>([^<]*)</td>', html)
    return dict(rows)


def test_a_host_that_never_answered_was_never_seen(sshd: harness.Sshd, tmp_path: Path,
                                                  refused_port: int) -> None:
    path = sshd.write_hosts_toml(tmp_path / "hosts.toml", ["web1", "dead"],
                                 hosts={"dead": {"port": refused_port}})
    config = config_mod.load(path)
    collect.run_pass(config, now=NOW)
    later = NOW + timedelta(seconds=2)
    store = Store(config.settings.data_dir)
    assert store.latest("dead")["last_ok"] is None  # stored: no good sample, ever
    assert overview_last_seen(config, later) == {"dead": "never", "web1": "2 s ago"}
    host = app_client(config, later).get("/api/hosts/dead").get_json()["host"]
    assert (host["last_seen"], host["last_seen_age_s"]) == (None, None)
    assert host["status"] == "down" and host["ts"] == format_ts(NOW)  # the try is still there
    page = app_client(config, later).get("/hosts/dead").get_data(as_text=True)
    assert re.search(r"<dt>Last seen</dt><dd[^>]*>never</dd>", page)


def test_a_host_that_stopped_answering_was_last_seen_when_it_did(
        sshd: harness.Sshd, tmp_path: Path, refused_port: int) -> None:
    path = sshd.write_hosts_toml(tmp_path / "hosts.toml", ["web1"])
    config = config_mod.load(path)
    collect.run_pass(config, now=NOW)
    sshd.write_hosts_toml(path, ["web1"], hosts={"web1": {"port": refused_port}})
    config = config_mod.load(path)
    for minutes in (1, 2, 3):  # carried from failure to failure
        collect.run_pass(config, now=NOW + timedelta(minutes=minutes))
    store = Store(config.settings.data_dir)
    assert store.latest("web1")["last_ok"] == format_ts(NOW)
    later = NOW + timedelta(minutes=3, seconds=5)
    assert overview_last_seen(config, later) == {"web1": "3 min ago"}
    host = app_client(config, later).get("/api/hosts/web1").get_json()["host"]
    assert host["last_seen"] == format_ts(NOW) and host["last_seen_age_s"] == 185.0


def test_failure_lines_written_before_last_ok_existed_are_searched_once(tmp_path: Path,
                                                                       sshd: harness.Sshd,
                                                                       refused_port: int
                                                                       ) -> None:
    path = sshd.write_hosts_toml(tmp_path / "hosts.toml", ["web1"],
                                 hosts={"web1": {"port": refused_port}})
    config = config_mod.load(path)
    store = Store(config.settings.data_dir)
    good = NOW - timedelta(days=1, hours=2)
    store.append("web1", sample("web1", good))
    for hours in (25, 3, 1):  # an older osmon's failure lines: no last_ok
        store.append("web1", failed_sample("web1", NOW - timedelta(hours=hours)))
    collect.run_pass(config, now=NOW)
    assert store.latest("web1")["last_ok"] == format_ts(good)


def test_status_says_never_for_a_host_never_seen(sshd: harness.Sshd, tmp_path: Path,
                                                 refused_port: int) -> None:
    path = sshd.write_hosts_toml(tmp_path / "hosts.toml", ["dead"],
                                 hosts={"dead": {"port": refused_port}})
    collect.run_pass(config_mod.load(path))
    out = subprocess.run([str(OSMON), "--config", str(path), "status"], capture_output=True,
                         text=True, timeout=60).stdout
    assert re.search(r"^down +dead +never +", out, re.M), out
    data = json.loads(subprocess.run([str(OSMON), "--config", str(path), "status", "--json"],
                                     capture_output=True, text=True, timeout=60).stdout)
    assert data["hosts"][0]["last_seen"] is None
