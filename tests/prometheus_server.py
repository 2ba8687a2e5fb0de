"""A real Prometheus server for the tests: Debian's ``prometheus`` on a free loopback port.

``bash .ci/test`` installs the package.  Each server has its own temporary TSDB and config
(scraping every second), so no test depends on the packaged service or on port 9090.
``query(promql)`` goes through the HTTP API, as Grafana would.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sshd import free_port

SCRAPE_INTERVAL = "1s"


class Prometheus:
    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"
        self.log = log

    def get(self, path: str, timeout: float = 10) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=timeout) as response:  # noqa: S310
            return json.loads(response.read())

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector of ``promql`` now: ``[{"metric": {...}, "value": [t, "v"]}]``."""
        answer = self.get("/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def value(self, promql: str) -> float | None:
        """The single value of ``promql``, or None while it has none."""
        result = self.query(promql)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.process.poll() is None, self.log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, f"Prometheus: timed out waiting for {what}; " \
                f"its log: {self.log.read_text(errors='replace')[-2000:]}"
            time.sleep(0.2)


def scrape_config(target: str, token_file: Path | None = None) -> str:
    """The scrape job of README.md, for one osmon at ``target`` (host:port)."""
    lines = ["global:", f"  scrape_interval: {SCRAPE_INTERVAL}", "  evaluation_interval: 1s",
             "scrape_configs:", "  - job_name: osmon", "    honor_labels: true",
             "    metrics_path: /metrics"]
    if token_file is not None:
        lines += ["    authorization:", "      type: Bearer",
                  f"      credentials_file: {token_file}"]
    lines += ["    static_configs:", f"      - targets: ['{target}']"]
    return "\n".join(lines) + "\n"


@contextmanager
def running_prometheus(workdir: Path, config_text: str) -> Iterator[Prometheus]:
    """Start Prometheus on a free port (another one if a concurrent test took that port
    between our probe and its bind), wait until it is ready, stop it afterwards."""
    binary = shutil.which("prometheus")
    assert binary, "prometheus is missing: bash .ci/test installs Debian's prometheus package"
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(config_text)
    for attempt in range(3):
        server = _start(binary, config, workdir, attempt)
        try:
            server.wait_for(lambda s=server: _ready(s) or s.process.poll() is not None,
                            "its /-/ready")
            if server.process.poll() is None:
                break
            log = server.log.read_text(errors="replace")
            assert "address already in use" in log and attempt < 2, log[-3000:]
        except BaseException:
            _stop(server)
            raise
    try:
        yield server
    finally:
        _stop(server)


def _start(binary: str, config: Path, workdir: Path, attempt: int) -> Prometheus:
    port = free_port()
    log = workdir / f"prometheus-{attempt}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    return Prometheus(process, port, log)


def _stop(server: Prometheus) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(15)


def _ready(server: Prometheus) -> bool:
    try:
        with urllib.request.urlopen(server.url + "/-/ready", timeout=2) as response:  # noqa: S310
            return response.status == 200
    except OSError:
        return False
