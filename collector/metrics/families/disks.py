"""disk: usage of each real file system, judged per mount (each mount may have its levels).

Each mount of a stored sample also carries ``full_in_s``, when it will be full at its current
growth (:mod:`collector.metrics.disk_trend`), which the ``disk_full`` family judges.
"""

from __future__ import annotations

from collections.abc import Iterator

from collector.metrics.exports import gauge_series, per_item
from collector.metrics.family import (
    PERCENT,
    ChartSpec,
    Column,
    Family,
    Judged,
    Level,
    Point,
    Sample,
    Summary,
    Table,
    ThresholdSpec,
    Values,
)
from collector.metrics.schema import array, counter, percent, record, string
from collector.metrics.values import highest, items, largest, num


def mount_percents(sample: Sample) -> list[tuple[str, float]]:
    """(mount, percent) of every mount that has both, in the sample's order."""
    out = []
    for disk in items(sample, "disks"):
        mount, value = disk.get("mount"), num(disk.get("percent"))
        if isinstance(mount, str) and value is not None:
            out.append((mount, value))
    return out


def disk_lines(sample: Sample) -> Values:
    return dict(mount_percents(sample))


def per_mount(sample: Sample) -> list[Judged] | None:
    if not isinstance(sample.get("disks"), list):
        return None
    return [Judged(mount, value, value) for mount, value in mount_percents(sample)]


#: node_exporter's filesystem labels -> the fields of a ``disks`` entry.
FS_LABELS = {"device": "device", "fstype": "fstype", "mountpoint": "mount"}
_FS_LABELS = tuple(FS_LABELS)


def free_bytes(sample: Sample) -> Iterator[Point]:
    """node_filesystem_free_bytes (f_bfree, root's reserve included): ``used`` is
    ``(f_blocks - f_bfree) * f_frsize`` (probe and psutil alike), so it is ``total - used``."""
    for disk in items(sample, "disks"):
        labels = tuple(disk.get(key) for key in FS_LABELS.values())
        total, used = num(disk.get("total")), num(disk.get("used"))
        if total is not None and used is not None and all(isinstance(v, str) for v in labels):
            yield labels, max(0.0, total - used)  # type: ignore[misc]


def fullest(sample: Sample) -> tuple[float | None, str | None]:
    """The fullest mount point of a sample, as (percent, mount)."""
    return highest(mount_percents(sample))


FAMILY = Family(
    name="disk",
    doc="size, used and free bytes of each real file system (network file systems on request)",
    section="disks",
    schema=array(record({
        "mount": string(4096), "device": string(4096), "fstype": string(64),
        "total": counter(unit="bytes"), "used": counter(unit="bytes"),
        "free": counter(unit="bytes"), "percent": percent(nullable=True),
    })),
    chart=ChartSpec("Disk usage", PERCENT, disk_lines, largest),
    thresholds=ThresholdSpec(per_mount, Level(85, 95, 1), item_key="mounts", item_label="mount"),
    summary=Summary("Fullest disk", fullest, item_field="disk_mount", overview=True,
                    terminal="DISK", mark="disk_full", mark_field="disk_mark"),
    table=Table("Disks", "disks", (
        Column("mount", "Mount"), Column("device", "Device"), Column("fstype", "Type"),
        Column("total", "Size", "size"), Column("used", "Used", "size"),
        Column("free", "Free", "size"), Column("percent", "Use", "percent"),
        Column("full_in_s", "Full in", "duration")),
        "No disk reported."),
    stored=(("disks[].full_in_s", "number >= 0 or null: time until full at the growth of the "
             "last hours (null: not filling, or no trusted trend)", "s"),),
    # The sample's "free" is f_bavail (what non-root users may write): node_exporter's avail.
    exported=(
        gauge_series("node_filesystem_size_bytes", "Filesystem size in bytes.",
                     per_item("disks", FS_LABELS, "total"), _FS_LABELS),
        gauge_series("node_filesystem_free_bytes", "Filesystem free space in bytes.",
                     free_bytes, _FS_LABELS),
        gauge_series("node_filesystem_avail_bytes",
                     "Filesystem space available to non-root users in bytes.",
                     per_item("disks", FS_LABELS, "free"), _FS_LABELS),
        gauge_series("osmon_filesystem_full_in_seconds",
                     "Seconds until the filesystem is full at its growth of the last hours "
                     "(absent: not filling, or no trusted trend).",
                     per_item("disks", FS_LABELS, "full_in_s"), _FS_LABELS),
    ),
)
