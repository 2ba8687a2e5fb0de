"""Write realistic samples for the chart and overview benchmarks.

    python3 bench/gen_samples.py DATA_DIR [--days 30] [--hosts 0] [--seed 1]

* one host, ``bench-30d``, with ``--days`` days of one sample a minute (30 days = 43,200
  lines, a few KiB each, like the sample in docs/architecture.md: two disks, two interfaces, top
  processes, logged-in users), a failed pass now and then and a ten-minute outage a day;
  then its rollups are built with ``collector.rollup.rebuild``;
* ``--hosts N`` more hosts (``host-0001`` ...) with the last 15 minutes of samples, for the
  overview benchmark of the dashboard.

Written through ``Store.append``, so the files are in the real stored format.  The same seed
gives the same data.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collector.store import rollup  # noqa: E402
from collector.store.samples import Store, encode_line  # noqa: E402
from collector.times import format_ts

BENCH_HOST = "bench-30d"
_PROCS = ("systemd", "sshd", "postgres", "nginx", "python3", "cron", "rsyslogd", "java",
          "node", "redis-server", "dockerd", "containerd", "journald", "chronyd", "bash")


def make_sample(host: str, moment: datetime, rng: random.Random, load_base: float = 0.5,
                ok: bool = True) -> dict[str, Any]:
    """One stored sample as the collector writes it (derived values beside raw counters)."""
    ts = format_ts(moment)
    if not ok:
        return {"v": 1, "ts": ts, "host": host, "ok": False,
                "error": {"kind": "timeout", "message": "no answer within 10 s (connect)"},
                "collect": {"transport": "ssh", "duration_s": 10.0}}
    minute = moment.timestamp() / 60
    daily = 0.5 + 0.5 * math.sin(minute / 1440 * 2 * math.pi)
    cpu = min(100.0, max(0.0, 10 + 40 * daily + rng.gauss(0, 5)))
    if rng.random() < 0.002:
        cpu = 99.0  # a rare one-minute spike: charts must keep it visible
    cores = [round(min(100.0, max(0.0, cpu + rng.gauss(0, 8))), 1) for _ in range(4)]
    total_mem = 8334774272
    mem_pct = 35 + 20 * daily + rng.gauss(0, 2)
    used = int(total_mem * mem_pct / 100)
    load1 = max(0.0, load_base + 2 * daily + rng.gauss(0, 0.2))
    days = minute / 1440 % 60  # slow growth, refilled every 60 days
    root_pct = 40 + days * 0.3
    var_pct = 60 + days * 0.5
    disks = []
    for mount, device, pct in (("/", "/dev/vda1", root_pct), ("/var", "/dev/vdb1", var_pct)):
        total = 107374182400
        used_d = int(total * pct / 100)
        disks.append({"mount": mount, "device": device, "fstype": "ext4", "total": total,
                      "used": used_d, "free": total - used_d, "percent": round(pct, 1)})
    net = []
    for iface, scale in (("eth0", 2e6), ("eth1", 2e5)):
        rx = scale * (0.2 + daily) * rng.uniform(0.5, 1.5)
        tx = scale * 0.4 * (0.2 + daily) * rng.uniform(0.5, 1.5)
        counter = int(minute * 60 * scale)
        net.append({"iface": iface, "rx_bytes": counter, "tx_bytes": counter // 3,
                    "rx_bps": round(rx, 1), "tx_bps": round(tx, 1),
                    "rx_packets": counter // 900, "tx_packets": counter // 1200,
                    "rx_errors": 0, "tx_errors": 0, "rx_dropped": 0, "tx_dropped": 0})
    top = [{"pid": 100 + i * 37, "user": "root" if i % 3 else "www-data", "name": name,
            "cmdline": f"/usr/bin/{name} --config /etc/{name}/{name}.conf --workers 4",
            "cpu_percent": round(rng.uniform(0, 20), 1), "mem_percent": round(rng.uniform(0, 5), 1),
            "rss": rng.randrange(5_000_000, 500_000_000)}
           for i, name in enumerate(_PROCS)]
    return {
        "v": 1, "ts": ts, "host": host, "ok": True, "error": None,
        "collect": {"transport": "ssh", "duration_s": round(rng.uniform(0.3, 0.6), 2),
                    "connect_s": round(rng.uniform(0.08, 0.2), 2)},
        "system": {"hostname": host, "os": "Linux", "kernel": "6.1.0-18-amd64",
                   "arch": "x86_64", "boot_time": 1763700000,
                   "uptime_s": int(moment.timestamp()) - 1763700000, "python": "3.11.2"},
        "cpu": {"count": 4, "percent": round(cpu, 1), "per_core": cores,
                "load": [round(load1, 2), round(load1 * 0.8, 2), round(load1 * 0.6, 2)],
                "times": {"user": int(minute * 30), "system": int(minute * 9),
                          "idle": int(minute * 200), "iowait": int(minute), "steal": 0}},
        "memory": {"total": total_mem, "available": total_mem - used, "used": used,
                   "percent": round(mem_pct, 1), "buffers": 200000000, "cached": 1500000000},
        "swap": {"total": 2147483648, "used": 0, "percent": 0.0},
        "disks": disks,
        "net": net,
        "processes": {"count": 180 + rng.randrange(20), "top": top},
        "users": [{"name": "alice", "tty": "pts/0", "from": "10.0.0.9",
                   "since": "2026-11-21T20:00:00Z"}],
        "errors": {},
    }


def write_history(store: Store, host: str, end: datetime, days: int, seed: int) -> int:
    """``days`` days of one-minute samples ending at ``end``; returns the lines written.

    Whole days are written with one file write each (Store.append per line would take
    minutes); the bytes are Store's own ``encode_line`` output, so the format is the same.
    """
    rng = random.Random(seed)
    start = end - timedelta(days=days)
    moment = start.replace(second=0, microsecond=0)
    by_day: dict[str, list[bytes]] = {}
    count = 0
    while moment < end:
        minute_of_day = moment.hour * 60 + moment.minute
        outage = 600 <= minute_of_day < 610  # ten minutes down every day at 10:00
        ok = not outage and rng.random() > 0.001
        sample = make_sample(host, moment, rng, ok=ok)
        by_day.setdefault(moment.date().isoformat(), []).append(encode_line(sample))
        count += 1
        moment += timedelta(minutes=1)
    directory = store.host_dir(host)
    directory.mkdir(parents=True, exist_ok=True)
    for day, lines in by_day.items():
        (directory / f"{day}.jsonl").write_bytes(b"".join(lines))
    return count


def write_fleet(store: Store, hosts: int, end: datetime, seed: int, minutes: int = 15) -> None:
    rng = random.Random(seed + 1)
    for index in range(1, hosts + 1):
        host = f"host-{index:04d}"
        down = index % 50 == 0  # a few dead hosts, as in a real fleet
        for back in range(minutes, 0, -1):
            moment = end - timedelta(minutes=back)
            store.append(host, make_sample(host, moment, rng, ok=not down))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--hosts", type=int, default=0, help="more hosts with recent samples")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--end", help="UTC end time YYYY-MM-DDTHH:MM:SSZ (default: now)")
    args = parser.parse_args(argv)
    store = Store(args.data_dir)
    end = (datetime.strptime(args.end, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
           if args.end else datetime.now(timezone.utc).replace(second=0, microsecond=0))
    if args.days:
        began = time.perf_counter()
        lines = write_history(store, BENCH_HOST, end, args.days, args.seed)
        size = sum(p.stat().st_size for p in store.host_dir(BENCH_HOST).iterdir())
        print(f"{BENCH_HOST}: {lines} samples, {size / 1e6:.0f} MB, "
              f"{size / lines / 1024:.1f} KiB per line ({time.perf_counter() - began:.1f} s)")
        began = time.perf_counter()
        records = rollup.rebuild(store, BENCH_HOST)
        print(f"{BENCH_HOST}: {records} rollup records ({time.perf_counter() - began:.1f} s)")
    if args.hosts:
        began = time.perf_counter()
        write_fleet(store, args.hosts, end, args.seed)
        print(f"{args.hosts} hosts with recent samples ({time.perf_counter() - began:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
