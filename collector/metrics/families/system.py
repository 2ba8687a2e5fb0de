"""system: who the host is (hostname, kernel, boot time).  Facts, no chart or threshold."""

from __future__ import annotations

from collector.metrics.family import Fact, Family
from collector.metrics.schema import number, record, string

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
)
