"""Benchmark: the dashboard's overview of 1,000 hosts must render in at most 300 ms.

Builds a throw-away data folder with 1,000 hosts and a few realistic samples each (written with
``Store.append``, as a pass would), then times ``/`` and ``/api/hosts`` through Flask's test
client and prints the median of several runs.  Run from the repository root:

    python3 bench/bench_web.py [--hosts 1000] [--runs 7] [--silences 20]
    python3 bench/bench_web.py --samples 60 --rollups     # an hour each: the sparklines

``--silences N`` adds N silences (half of a rack tag, half of one host's disk) and an alert state
with a problem on every tenth host: the overview then matches every host against them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from web_fixtures import NOW, fill, make_site  # noqa: E402

TARGET_MS = 300.0
PROCESSES = [{"pid": 1000 + i, "user": "www-data", "name": f"worker-{i}",
              "cmdline": f"/usr/bin/python3 -m app.worker --queue q{i} --concurrency 4",
              "cpu_percent": 3.5 * i, "mem_percent": 1.2 * i, "rss": 50_000_000 + i}
             for i in range(10)]


def build(directory: Path, count: int, samples: int, rollups: bool = False
          ):  # -> web_fixtures.Site
    hosts = [{"name": f"host{i:04d}", "tags": [f"rack{i % 20}"]} for i in range(count)]
    site = make_site(directory, hosts)
    for i, host in enumerate(hosts):
        fill(site.store, host["name"], NOW, count=samples, cpu=float(i % 100),
             disk=float(50 + i % 50), processes=PROCESSES)
        if rollups:  # what the passes' rollup hook would have written
            from collector.store import rollup

            rollup.rebuild(site.store, host["name"])
    return site


def silence(site, count: int, silences: int) -> None:  # web_fixtures.Site
    """Alerts on every tenth host, and ``silences`` silences of tags and single disks."""
    from collector.alerts import muting_store
    from collector.alerts import rules as alert_rules
    from collector.alerts import state as alert_store
    from collector.alerts.muting_input import SilenceRequest

    hot = {f"host{i:04d}": dict(site.store.latest(f"host{i:04d}"), disks=[
        {"mount": "/", "percent": 99.0}]) for i in range(0, count, 10)}
    state, _notes = alert_rules.evaluate(site.config, None, hot, NOW)
    alert_store.save_state(site.config.state_dir, state)
    for i in range(silences):
        request = (SilenceRequest(tag=f"rack{i % 20}", duration="2h", reason="maintenance")
                   if i % 2 else SilenceRequest(host=f"host{i:04d}", metric="disk", item="/",
                                                duration="2h", reason="resizing"))
        muting_store.add_silence(site.config, request, author="bench", now=NOW, zone=None)


def median_ms(client, url: str, runs: int) -> tuple[float, float, int]:  # FlaskClient
    """Median wall and CPU (this process) milliseconds: on a busy machine the CPU time is the
    steadier figure, the wall time is what a user waits."""
    times = []
    cpu = []
    size = 0
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        response = client.get(url)
        size = len(response.data)
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return statistics.median(times), statistics.median(cpu), size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=5, help="samples per host")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--silences", type=int, default=0,
                        help="silences to add (and alerts on every tenth host)")
    parser.add_argument("--rollups", action="store_true",
                        help="write the hosts' rollups (with --samples 60: the sparklines' hour)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="osmon-bench-web-") as tmp:
        start = time.perf_counter()
        site = build(Path(tmp), args.hosts, args.samples, args.rollups)
        if args.silences:
            silence(site, args.hosts, args.silences)
        print(f"built {args.hosts} hosts x {args.samples} samples in "
              f"{time.perf_counter() - start:.1f} s")
        client = site.client()
        start = time.perf_counter()
        client.get("/")  # warm up: template compilation, imports, caches filled
        print(f"first /         {(time.perf_counter() - start) * 1000:7.1f} ms (cold)")
        worst = 0.0
        for url in ("/", "/api/hosts", "/api/overview"):
            ms, cpu_ms, size = median_ms(client, url, args.runs)
            worst = max(worst, ms)
            print(f"{url:15} median {ms:7.1f} ms (CPU {cpu_ms:6.1f} ms) over {args.runs} runs "
                  f"({size / 1024:.0f} KiB)")
    verdict = "OK" if worst <= TARGET_MS else "OVER"
    print(f"target {TARGET_MS:.0f} ms: {verdict}")
    return 0 if worst <= TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
