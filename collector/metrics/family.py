"""What a metric family is: one frozen descriptor that says everything osmon does with it.

A family (cpu, memory, disk, ...) is data, not a class hierarchy: a
:class:`Family` names where its values sit in a sample, the schema gate's checks for them,
how the collector derives rates, which numbers make chart lines and which one the fleet
chart draws, its default thresholds and how they are compared, and how it shows in the
overview, the host page, ``osmon status`` and the alert mail.  Validation, rates, series,
rules, status, charts and pages loop over :data:`collector.metrics.registry.FAMILIES`
instead of naming families; a family that is truly special (per-process counters, per-mount
disks, check states) keeps a small function of its own, referenced from here.

See docs/architecture.md, "How to add a metric family".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from collector.metrics.schema import Check

Sample = Mapping[str, Any]
#: One number per chart line: ``{label: value}``.
Values = dict[str, float]

# Units of chart axes and values.
PERCENT = "percent"
LOAD = "load"
RATE = "bytes/s"      # base-1000 units (kB/s, MB/s), as network people count
BYTES = "bytes"       # base-1024 units (KiB, MiB), as the kernel counts memory and disks
SECONDS = "seconds"
NUMBER = "number"
#: The unit of judged times (hours until a disk is full): messages say "5 h", "40 min".
HOURS = "h"


@dataclass(frozen=True)
class Level:
    """Thresholds of one metric: a value >= warning (critical) for ``for_passes`` passes alerts.

    ``None`` switches a level off (``warning = false`` in hosts.toml)."""

    warning: float | None
    critical: float | None
    for_passes: int = 1


class Judged(NamedTuple):
    """One value a family puts before its thresholds.

    ``item`` names the part it is about (a mount, a check, a resource), ``value`` is
    what people read, ``score`` what is compared with the levels (the same, but for check
    states and load per core), ``detail`` a line of context (a check's output)."""

    item: str | None
    value: float
    score: float
    detail: str = ""


@dataclass(frozen=True)
class ChartSpec:
    """How a family becomes a chart at ``/hosts/<name>/charts/<family>.svg``."""

    title: str
    unit: str
    #: sample -> {line label: value}; lines that have no value in a sample are left out.
    lines: Callable[[Sample], Values]
    #: The one number per host that ``/charts/<family>.svg`` draws (worst disk, load1, ...).
    fleet: Callable[[Values], float | None]
    #: Line label -> legend text ("rx" -> "received").
    legend: Mapping[str, str] = field(default_factory=dict)
    #: For families whose unit depends on the sample (check perfdata).
    unit_of: Callable[[Sample], str | None] | None = None


@dataclass(frozen=True)
class ThresholdSpec:
    """How a family is judged: its built-in levels and how values are compared with them.

    Resolution, most specific first: an item's own level (a mount in ``mounts``, a fixed
    item), the host's ``thresholds``, ``[thresholds]``, then :attr:`default`."""

    #: sample -> what is judged; ``None`` when the section is missing (the family's alerts are
    #: then left alone, neither raised nor cleared).
    judge: Callable[[Sample], list[Judged] | None]
    default: Level
    #: Per-item overrides under this key of the family's table (``disk = { mounts = ... }``).
    item_key: str | None = None
    #: Items with levels of their own, each a table of its own (``<family> = { io = ... }``).
    fixed_items: Mapping[str, Level] = field(default_factory=dict)
    #: How a judged value reads in messages: "%" or "/core".
    unit: str = "%"
    #: Hysteresis in percent of the threshold instead of points (load is not a percentage).
    relative_margin: bool = False
    #: False: the levels are fixed (check states), not settable in hosts.toml.
    configurable: bool = True
    #: Values that are states: value -> word ("CRITICAL"), for messages and headlines.
    states: Mapping[int, str] = field(default_factory=dict)
    #: Said of the thresholds in the docs and the shipped hosts.toml ("load is per core").
    note: str = ""
    #: True: the lower the value, the worse (hours until a disk is full); ``warning`` is then
    #: above ``critical`` and a problem clears once the value is ``margin`` above it.
    lower_is_worse: bool = False
    #: The names of the two levels in hosts.toml, when they carry a unit ("warning_h").
    level_keys: tuple[str, str] = ("warning", "critical")
    #: The family's own hysteresis, instead of ``[alerts] hysteresis`` (in percent of the
    #: threshold when ``relative_margin``).
    margin: float | None = None
    #: What an item is in labels (the webhook's): "mount", "resource", "check".
    item_label: str = "item"
    #: The chart an alert of this family links to, when not the family's own.
    chart: str | None = None
    #: How a problem and a recovery read after "<metric> <item> on <host>", from the value and
    #: the judged detail, when "is at 97 %" does not fit (a time until full).
    says: Callable[[float, str], str] | None = None
    clears: Callable[[float, str], str] | None = None
    #: A finding in a few words, for a host's reasons and marks ("/var full in about 5 h").
    short: Callable[[str | None, float], str] | None = None


@dataclass(frozen=True)
class Summary:
    """How a family shows as one value: an overview column, a host page line, ``osmon status``.

    The value is the headline number (CPU percent, the fullest disk); its level is the worst
    of the family's judged values against the host's thresholds."""

    label: str
    #: sample -> (headline number, the item it is about).
    value: Callable[[Sample], tuple[float | None, str | None]]
    #: A format of web/formats.py.
    format: str = "percent"
    #: Key of the item in the host's JSON status ("disk_mount"); None: no item shown.
    item_field: str | None = None
    overview: bool = False
    #: Column heading in ``osmon status`` (None: not a column).
    terminal: str | None = None
    #: A judged family whose finding, at warning or critical, marks this headline (the fullest
    #: disk carries "/var full in about 5 h"), and the key of that mark in the host's JSON.
    mark: str | None = None
    mark_field: str | None = None


class Fact(NamedTuple):
    """One line of the host page's "System" list: label, dotted path in the sample, format."""

    label: str
    path: str
    format: str


class Column(NamedTuple):
    key: str
    label: str
    format: str = "text"


@dataclass(frozen=True)
class Table:
    """A table of the host page over a list in the sample (disks, top processes, users)."""

    title: str
    #: Dotted path of the rows in the sample ("processes.top").
    rows: str
    columns: tuple[Column, ...]
    empty: str


# Kinds of exported series (the Prometheus metric types osmon uses).
COUNTER = "counter"
GAUGE = "gauge"
INFO = "info"
#: One exported value: its label values (in the order of :attr:`Exported.labels`) and value.
Point = tuple[tuple[str, ...], float]


@dataclass(frozen=True)
class Exported:
    """One series family of ``GET /metrics``, read from a host's newest good sample.

    ``name`` is the name people query (``node_cpu_seconds_total``, ``node_uname_info``):
    a counter's ends in ``_total``, an info's in ``_info``.  ``labels`` are the labels besides
    ``instance`` (the host name, added to every series); ``points`` turns a sample into
    values, in base units (seconds, bytes), skipping what the sample lacks.  Where osmon has
    what node_exporter exports, the name, unit, labels and help are node_exporter's, so
    dashboards written for it work unchanged."""

    name: str
    kind: str
    help: str
    points: Callable[[Sample], Iterable[Point]]
    labels: tuple[str, ...] = ()


#: (section now, previous sample's section, seconds between the readings or None) -> stored.
Derive = Callable[[Any, Any, "float | None"], Any]
#: (previous sample, now as epoch seconds, previous reading's epoch or None) -> probe params.
Params = Callable[[Any, float, "float | None"], dict[str, Any]]


@dataclass(frozen=True)
class Family:
    #: The metric's name in URLs, thresholds, alerts and the API ("disk", "load").
    name: str
    #: One line for the docs.
    doc: str
    #: The key of the sample the family owns ("disks"); None when its values sit in another
    #: family's section (load is ``cpu.load``).
    section: str | None = None
    #: The section its values sit in, when it owns none (for the docs: "in `cpu`").
    within: str | None = None
    #: The schema gate's check of that section.
    schema: Check | None = None
    #: True: the section may be absent without an error (a kernel that lacks the feature).
    optional: bool = False
    derive: Derive | None = None
    params: Params | None = None
    chart: ChartSpec | None = None
    #: Dynamic charts: ``<prefix><name>`` resolved by :attr:`chart_for` (``check.<name>``).
    chart_prefix: str | None = None
    chart_for: Callable[[str], ChartSpec] | None = None
    chart_names: Callable[[Sample], list[str]] | None = None
    thresholds: ThresholdSpec | None = None
    summary: Summary | None = None
    facts: tuple[Fact, ...] = ()
    table: Table | None = None
    #: How the central host gets the section: "psutil" (collector.transport.local has a
    #: reader of its own) or "probe" (the probe's own reader, run in-process).
    local: str = "psutil"
    #: What ``derive`` adds to the stored section, as schema rows (path, value, unit) ...
    stored: tuple[tuple[str, str, str], ...] = ()
    #: ... and the probe's fields it does not store (paths; their sub-fields go too).
    not_stored: tuple[str, ...] = ()
    #: Its series in ``GET /metrics`` (node_exporter's names where they exist).
    exported: tuple[Exported, ...] = ()
