"""disk_io: byte and operation counters of whole physical disks, rates between passes."""

from __future__ import annotations

from typing import Any

from collector.metrics.exports import counter_series, per_item
from collector.metrics.family import Family
from collector.metrics.schema import array, counter, record, string
from collector.metrics.values import counter_rates

_RATES = counter_rates("device", {"read_bps": "read_bytes", "write_bps": "write_bytes",
                                  "busy_ms_per_s": "busy_ms"})


#: node_exporter's diskstats series -> (our counter, factor to the base unit, help).
NODE_SERIES = {
    "reads_completed": ("reads", 1.0, "The total number of reads completed successfully."),
    "writes_completed": ("writes", 1.0, "The total number of writes completed successfully."),
    "read_bytes": ("read_bytes", 1.0, "The total number of bytes read successfully."),
    "written_bytes": ("write_bytes", 1.0, "The total number of bytes written successfully."),
    "io_time_seconds": ("busy_ms", 0.001, "Total seconds spent doing I/Os."),
}


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
    exported=tuple(
        counter_series(f"node_disk_{name}_total", help_text,
                per_item("disk_io", {"device": "device"}, key, scale), ("device",))
        for name, (key, scale, help_text) in NODE_SERIES.items()),
)
