"""Benchmark: the alert hook of one pass (rules, history, state, silences), for N hosts.

Calls ``collector.alerts.hook.on_pass`` the way the collection pass does, with e-mail off and
every tenth host over its disk threshold, and prints the median wall and CPU time of a pass.
``--silences N`` adds N silences first (half of a tag, half of one host's disk), so the cost of
reading them and matching every host against them shows.  Run from the repository root:

    python3 bench/bench_alerts.py [--hosts 1000] [--passes 9] [--silences 20]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from mail_fixtures import T0, make_config, ok_sample  # noqa: E402

from collector.alerts import hook  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--passes", type=int, default=9)
    parser.add_argument("--silences", type=int, default=0)
    args = parser.parse_args()
    names = tuple(f"host{i:04d}" for i in range(args.hosts))
    with tempfile.TemporaryDirectory(prefix="osmon-bench-alerts-") as tmp:
        config = make_config(Path(tmp), hosts=names, host_options={
            name: f'tags = ["rack{i % 20}"]' for i, name in enumerate(names)})
        if args.silences:
            add_silences(config, args.silences)
        walls, cpus = [], []
        for n in range(args.passes):
            now = T0 + dt.timedelta(minutes=n)
            samples = {name: ok_sample(name, now, disks={"/": 97.0 if i % 10 == 0 else 50.0})
                       for i, name in enumerate(names)}
            start, start_cpu = time.perf_counter(), time.process_time()
            hook.on_pass(config, None, samples, now, time.monotonic() + 60)
            walls.append((time.perf_counter() - start) * 1000)
            cpus.append((time.process_time() - start_cpu) * 1000)
    print(f"alert hook, {args.hosts} hosts, {args.silences} silences: median "
          f"{statistics.median(walls):.1f} ms (CPU {statistics.median(cpus):.1f} ms) a pass over "
          f"{args.passes} passes")
    return 0


def add_silences(config, count: int) -> None:  # collector.config.Config
    from collector.alerts import muting_store
    from collector.alerts.muting_input import SilenceRequest

    for i in range(count):
        request = (SilenceRequest(tag=f"rack{i % 20}", duration="2h", reason="maintenance")
                   if i % 2 else SilenceRequest(host=f"host{i:04d}", metric="disk", item="/",
                                                duration="2h", reason="resizing"))
        muting_store.add_silence(config, request, author="bench", now=T0, zone=None)


if __name__ == "__main__":
    sys.exit(main())
