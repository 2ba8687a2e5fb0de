"""Benchmark: ``GET /metrics`` for 1,000 hosts of 4 cores, 3 mounts and 3 interfaces each must
answer in at most 300 ms.

Builds a throw-away data folder (samples written with ``Store.append``, as a pass would), then
times ``/metrics`` through Flask's test client, in the three situations a scraper meets:

* **after a pass**: every host has a new sample in which every counter has moved (the normal
  case when Prometheus scrapes as often as osmon collects); this is the one held to the goal;
* **nothing new**: a scrape between two passes;
* **first scrape**: the first one after the dashboard started (nothing cached yet);

and, for comparison, **after a pass** with prometheus_client's own ``generate_latest`` over
the same custom collector in place of osmon's writer (the straightforward implementation).

Each prints the median of several runs, wall and CPU time, and the size.  Run from the
repository root:

    python3 bench/bench_metrics.py [--hosts 1000] [--runs 7] [--openmetrics]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from exposition_fixtures import rich_sample  # noqa: E402
from prometheus_client.exposition import generate_latest  # noqa: E402
from prometheus_client.openmetrics.exposition import (  # noqa: E402
    generate_latest as generate_openmetrics,
)
from web_fixtures import NOW, make_site  # noqa: E402

from collector.views.exposition import OsmonCollector, Snapshot  # noqa: E402

TARGET_MS = 300.0
ACCEPT_OPENMETRICS = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"


def timed(get: Callable[[], object], before: Callable[[], None], runs: int
          ) -> tuple[float, float, int]:
    """Median wall and CPU milliseconds of ``get()``, ``before()`` run (untimed) each time."""
    walls, cpus, size = [], [], 0
    for _ in range(runs):
        before()
        start, start_cpu = time.perf_counter(), time.process_time()
        response = get()
        walls.append((time.perf_counter() - start) * 1000)
        cpus.append((time.process_time() - start_cpu) * 1000)
        assert response.status_code == 200, response.status_code  # type: ignore[attr-defined]
        size = len(response.data)  # type: ignore[attr-defined]
    return statistics.median(walls), statistics.median(cpus), size


class Reference:
    """The straightforward writer: prometheus_client's generate_latest over the collector."""

    @staticmethod
    def render(snapshot: Snapshot, openmetrics: bool = False) -> bytes:
        write = generate_openmetrics if openmetrics else generate_latest
        return write(OsmonCollector(snapshot))  # type: ignore[arg-type]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--openmetrics", action="store_true",
                        help="ask for OpenMetrics, as Prometheus does, instead of the text format")
    args = parser.parse_args()
    headers = {"Accept": ACCEPT_OPENMETRICS} if args.openmetrics else {}
    with tempfile.TemporaryDirectory(prefix="osmon-bench-metrics-") as tmp:
        start = time.perf_counter()
        names = [f"host{i:04d}" for i in range(args.hosts)]
        site = make_site(Path(tmp), [{"name": n, "tags": [f"rack{i % 20}"]}
                                     for i, n in enumerate(names)])
        for name in names:
            site.store.append(name, rich_sample(name, NOW))
        print(f"built {args.hosts} hosts (4 cores, 3 mounts, 3 interfaces) in "
              f"{time.perf_counter() - start:.1f} s")
        step = 0

        def new_pass() -> None:
            nonlocal step
            step += 1
            for name in names:
                site.store.append(name, rich_sample(name, NOW, step=step))

        def fresh_client() -> None:
            holder[0] = site.app().test_client()

        holder = [site.app().test_client()]
        get = lambda: holder[0].get("/metrics", headers=headers)  # noqa: E731
        rows = [("first scrape", timed(get, fresh_client, max(3, args.runs // 2)))]
        get()
        rows.append(("after a pass", timed(get, new_pass, args.runs)))
        rows.append(("nothing new", timed(get, lambda: None, args.runs)))
        fleet = holder[0].application.extensions["osmon.fleet"]
        fleet._exposition = Reference()
        rows.append(("after a pass, prometheus_client writing",
                     timed(get, new_pass, max(3, args.runs // 2))))
    for label, (ms, cpu_ms, size) in rows:
        print(f"/metrics {label:39} median {ms:7.1f} ms (CPU {cpu_ms:6.1f} ms) "
              f"({size / 1024 / 1024:.1f} MiB)")
    after_pass = rows[1][1][0]
    verdict = "OK" if after_pass <= TARGET_MS else "OVER"
    print(f"target {TARGET_MS:.0f} ms after a pass: {verdict}")
    return 0 if after_pass <= TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
