"""system: who the host is (hostname, kernel, boot time).  Facts, no chart or threshold."""

from __future__ import annotations

from collections.abc import Iterator

from collector.metrics.exports import field, gauge_series
from collector.metrics.family import Fact, Family, Point, Sample
from collector.metrics.schema import number, record, string
from collector.metrics.values import section

#: node_uname_info's labels (alphabetical, as node_exporter has them) -> the sample's fields.
#: osmon has no ``version`` (uname -v) nor ``domainname``: those labels are left out.
UNAME = {"machine": "arch", "nodename": "hostname", "release": "kernel", "sysname": "os"}


def uname(sample: Sample) -> Iterator[Point]:
    system = section(sample, "system")
    if system:
        yield tuple(str(system.get(key) or "") for key in UNAME.values()), 1.0

FAMILY = Family(
    name="system",
    doc="identity and uptime: hostname, OS, kernel, architecture, boot time, the probe's Python",
    section="system",
    schema=record({
        "hostname": string(255),
        "os": string(64),
        "kernel": string(255, nullable=True),
        "arch": string(64, nullable=True),
        "boot_time": number(integer=True, nullable=True, unit="epoch s"),
        "uptime_s": number(nullable=True, unit="s"),
        "python": string(32, nullable=True),
    }),
    facts=(Fact("Hostname", "system.hostname", "text"), Fact("OS", "system.os", "text"),
           Fact("Kernel", "system.kernel", "text"), Fact("Architecture", "system.arch", "text"),
           Fact("Uptime", "system.uptime_s", "duration"),
           Fact("Python", "system.python", "text")),
    exported=(
        gauge_series("node_boot_time_seconds", "Node boot time, in unixtime.",
                     field("system", "boot_time")),
        gauge_series("node_uname_info",
                     "Labeled system information as provided by the uname system call.",
                     uname, tuple(UNAME)),
    ),
)
