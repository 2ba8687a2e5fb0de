"""Samples with every family ``/metrics`` exports, for its tests and its benchmark.

``rich_sample(host, ts, step=k)`` is a good sample of ``cores`` cores, ``mounts`` mounts and
``ifaces`` interfaces whose counters have all moved ``k`` passes on: what a fleet looks like
pass after pass.  Shaped like the stored sample of docs/architecture.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from collector.times import format_ts

CPU_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
NET_COUNTERS = ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets", "rx_errors", "tx_errors",
                "rx_drops", "tx_drops")
MEM_TOTAL = 8334774272
#: The top processes a real sample carries (the probe sends its 10 busiest by CPU and by
#: memory): most of a sample's bytes, so most of the cost of reading one back.
TOP = [{"pid": 1000 + i, "user": "www-data", "name": f"worker-{i}",
        "cmdline": f"/usr/bin/python3 -m app.worker --queue q{i} --concurrency 4",
        "cpu_percent": 3.5 * i, "mem_percent": 1.2 * i, "rss": 50_000_000 + i}
       for i in range(10)]
DISK_TOTAL = 107374182400


def rich_sample(host: str, ts: datetime, *, step: int = 0, cores: int = 4, mounts: int = 3,
                ifaces: int = 3, checks: dict[str, Any] | None = None) -> dict[str, Any]:
    mount_names = ["/", "/var", "/home", "/srv", "/data"] + [f"/mnt/d{i}" for i in range(100)]
    sample: dict[str, Any] = {
        "v": 1, "ts": format_ts(ts), "host": host, "ok": True, "error": None,
        "collect": {"transport": "ssh", "duration_s": 0.41, "connect_s": 0.12,
                    "epoch": ts.timestamp()},
        "system": {"hostname": f"{host}.example.org", "os": "Linux",
                   "kernel": "6.1.0-18-amd64", "arch": "x86_64", "boot_time": 1763700000,
                   "uptime_s": 86400.0 + 60 * step, "python": "3.11.2"},
        "cpu": {"count": cores,
                "times": {m: 4000.25 * cores + 60.5 * step * (i + 1)
                          for i, m in enumerate(CPU_MODES)},
                "per_core_times": [{m: 4000.25 + 15.125 * step * (i + 1) + c
                                    for i, m in enumerate(CPU_MODES)} for c in range(cores)],
                "load": [0.12, 0.2, 0.31], "percent": 12.5, "per_core": [12.5] * cores,
                "percent_source": "interval"},
        "memory": {"total": MEM_TOTAL, "available": 5000000000 - 4096 * step,
                   "used": MEM_TOTAL - 5000000000 + 4096 * step, "percent": 40.0,
                   "buffers": 120000000, "cached": 2000000000},
        "swap": {"total": 2147483648, "used": 1048576, "percent": 0.05},
        "disks": [{"mount": mount_names[i], "device": f"/dev/vd{chr(97 + i % 26)}{i // 26 + 1}",
                   "fstype": "ext4", "total": DISK_TOTAL,
                   "used": 53687091200 + 4096 * step + i,
                   "free": 48318382080 - 4096 * step - i, "percent": 52.6,
                   "full_in_s": 18000 - 60 * step if i == 0 else None}
                  for i in range(mounts)],
        "disk_io": [{"device": "vda", "read_bytes": 10 ** 9 + 4096 * step,
                     "write_bytes": 2 * 10 ** 9 + 8192 * step, "reads": 30000 + step,
                     "writes": 40000 + 2 * step, "busy_ms": 500000 + 35 * step,
                     "read_bps": 68.3, "write_bps": 136.5, "busy_percent": 0.1}],
        "net": [{"iface": f"eth{i}", **{key: 10 ** 6 * (i + 1) + 1000 * step * (j + 1)
                                        for j, key in enumerate(NET_COUNTERS)},
                 "rx_bps": 1000.0, "tx_bps": 2000.0} for i in range(ifaces)],
        "pressure": {
            "cpu": {"some": {"avg10": 0.5, "avg60": 0.3, "avg300": 0.1,
                             "total": 123456789 + 1000 * step}},
            "memory": {"some": {"avg10": 0.0, "avg60": 0.0, "avg300": 0.0,
                                "total": 2500000 + 10 * step},
                       "full": {"avg10": 0.0, "avg60": 0.0, "avg300": 0.0,
                                "total": 1500000 + 5 * step}},
            "io": {"some": {"avg10": 0.1, "avg60": 0.1, "avg300": 0.1,
                            "total": 45000000 + 100 * step},
                   "full": {"avg10": 0.0, "avg60": 0.0, "avg300": 0.0,
                            "total": 30000000 + 50 * step}}},
        "processes": {"count": 180, "scanned": 180, "cpu_basis": "interval",
                      "top": [dict(p) for p in TOP]},
        "users": [{"name": "alice", "tty": "pts/0", "from": "10.0.0.9",
                   "since": "2026-11-21T20:00:00Z"}],
        "errors": {},
    }
    if checks is not None:
        sample["checks"] = checks
    return sample
