"""disk_io: byte and operation counters of whole physical disks, rates between passes."""

from __future__ import annotations

from typing import Any

from collector.metrics.family import Family
from collector.metrics.schema import array, counter, record, string
from collector.metrics.values import counter_rates

_RATES = counter_rates("device", {"read_bps": "read_bytes", "write_bps": "write_bytes",
                                  "busy_ms_per_s": "busy_ms"})


def derive_disk_io(entries: Any, previous: Any, seconds: float | None) -> list[dict[str, Any]]:
    """Byte rates, and utilisation like iostat %util: busy milliseconds per elapsed ms."""
    disks = _RATES(entries, previous, seconds)
    for disk in disks:
        busy_ms_per_s = disk.pop("busy_ms_per_s")
        disk["busy_percent"] = None if busy_ms_per_s is None or seconds is None else \
            round(min(100.0, busy_ms_per_s / 10.0), 1)
    return disks


FAMILY = Family(
    name="disk_io",
    doc="bytes and operations read and written per physical disk; rates between passes",
    section="disk_io",
    schema=array(record({
        "device": string(256), "read_bytes": counter(unit="bytes"),
        "write_bytes": counter(unit="bytes"), "reads": counter(), "writes": counter(),
        "busy_ms": counter(unit="ms"),
    })),
    derive=derive_disk_io,
    stored=(("disk_io[].read_bps", "number >= 0 or null", "bytes/s"),
            ("disk_io[].write_bps", "number >= 0 or null", "bytes/s"),
            ("disk_io[].busy_percent", "number 0..100 or null", "%")),
)
