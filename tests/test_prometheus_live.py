"""A real Prometheus scrapes osmon's /metrics after passes over the test sshd, with the scrape
job and the rules file the README ships; PromQL through its HTTP API returns what osmon stored."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_server import running_prometheus, scrape_config

from collector.config import Config
from collector.metrics.families.cpu import CPU_FIELDS
from collector.passes import collect
from collector.store.samples import Store
from web.cmd_serve import serve

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "docs" / "prometheus-rules.yml"
TOKEN = "9c1e5b7a3d2f4e6a8b0c1d2e3f4a5b6c"
Inventory = Callable[..., Config]


def busy_seconds(sample: dict[str, Any]) -> float:
    """Seconds all CPUs spent on anything but idling and waiting for I/O, as stored."""
    return sum(core[mode] for core in sample["cpu"]["per_core_times"] for mode in CPU_FIELDS
               if mode not in ("idle", "iowait") and mode in core)


def test_promtool_accepts_the_shipped_rules_file() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: bash .ci/test installs Debian's prometheus package"
    result = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_prometheus_scrapes_the_fleet_and_promql_gives_the_stored_values(
        inventory: Inventory, refused_port: int, tmp_path: Path) -> None:
    token_file = tmp_path / "metrics.token"
    token_file.write_text(TOKEN + "\n")
    config = inventory(["h1", "h2", "refused"], hosts={"refused": {"port": refused_port}},
                       extra=f'[web]\nrequire_login = true\nmetrics_token_file = "{token_file}"\n')
    first = collect.run_pass(config)
    assert (first.ok, first.failed) == (2, 1)
    server = serve(config, "127.0.0.1", 0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    target = f"127.0.0.1:{server.port}"
    prometheus_yml = scrape_config(target, token_file) + \
        f"rule_files:\n  - {RULES}\n"
    try:
        with running_prometheus(tmp_path / "prometheus", prometheus_yml) as prom:
            prom.wait_for(lambda: prom.value('osmon_up{instance="h1"}') == 1.0,
                          "the first scrape of h1")
            stored = Store(config.settings.data_dir).latest("h1")
            assert stored is not None
            # honor_labels: the host's name is the instance, not the scraped address.
            assert prom.value('node_memory_MemTotal_bytes{instance="h1"}') == \
                stored["memory"]["total"]
            assert prom.value('osmon_up{instance="refused"}') == 0.0
            assert prom.value('osmon_scrape_error_info{instance="refused",kind="unreachable"}') \
                == 1.0
            assert prom.value(f'osmon_hosts{{instance="{target}",job="osmon"}}') == 3.0
            device = stored["net"][0]["iface"]
            assert prom.value(f'node_network_receive_bytes_total{{instance="h1",'
                              f'device="{device}"}}') == stored["net"][0]["rx_bytes"]

            second = collect.run_pass(config)
            assert second.ok == 2
            newer = Store(config.settings.data_dir).latest("h1")
            idle = newer["cpu"]["per_core_times"][0]["idle"]
            prom.wait_for(lambda: prom.value(
                'node_cpu_seconds_total{instance="h1",cpu="0",mode="idle"}') == idle,
                "the scrape after the second pass")
            rates = prom.query('rate(node_network_receive_bytes_total{instance="h1"}[1m])')
            assert rates and all(float(r["value"][1]) >= 0 for r in rates)
            # The CPUs worked between the two passes (they ran the second one): the stored
            # counters moved, Prometheus holds the newer ones and its rate over both is > 0.
            busy_query = 'node_cpu_seconds_total{instance="h1",mode!~"idle|iowait"}'
            assert busy_seconds(newer) > busy_seconds(stored)
            assert prom.value(f"sum({busy_query})") == pytest.approx(busy_seconds(newer))
            busy = prom.value(f"sum(rate({busy_query}[1m]))")
            assert busy is not None and busy > 0

            # The shipped rules load and evaluate without an error over osmon's series.
            prom.wait_for(lambda: _rules_evaluated(prom.get("/api/v1/rules")),
                          "an evaluation of every rule")
            health = {rule["name"]: (rule["health"], rule.get("lastError", ""))
                      for group in prom.get("/api/v1/rules")["data"]["groups"]
                      for rule in group["rules"]}
            assert len(health) >= 10
            assert all(state == "ok" for state, _error in health.values()), \
                json.dumps(health, indent=1)
    finally:
        server.close()
        thread.join(10)


def _rules_evaluated(answer: dict) -> bool:
    rules = [r for g in answer["data"]["groups"] for r in g["rules"]]
    return bool(rules) and all(r.get("lastEvaluation", "").startswith("2") and
                               not r["lastEvaluation"].startswith("0001") for r in rules)
