"""What ``osmon status`` shows: the fleet from the store, as aligned text lines or as JSON.

:func:`build_report` reads the store, the alert state and the pass log (never a host) and
applies the same rules as the dashboard (:mod:`collector.views.health`), so the terminal and the web
page agree on every host's word and order.  Rendering is a pure function of the report, so
tests pin ``now`` and need no terminal.

Mounts, check names and error messages come from hosts or files we do not trust.  Every one
goes through :func:`terminal_safe` before it is printed: control and format characters are
replaced by ``?``, so an ANSI or OSC escape planted by a hostile host shows up as harmless text
and never recolours, retitles or clears the admin's terminal.  JSON output needs no such step:
``json.dumps`` escapes every control character (``\\u001b``).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from collector.alerts import muting_store
from collector.alerts import state as alert_store
from collector.config import Config
from collector.metrics.family import Family
from collector.metrics.registry import SUMMARIZED
from collector.redact import Redactor
from collector.store import passlog
from collector.store.samples import Store
from collector.times import format_ts
from collector.views.health import (
    SEVERITY,
    STATUSES,
    CollectorState,
    HostStatus,
    ShardInfo,
    collector_state,
    failing_checks,
    fleet_status,
    format_age,
    shard_info,
)
from collector.views.words import counted

#: SGR colour of each status word (and of a value at that level); a silenced host's is cyan.
COLOURS = {"ok": "32", "stale": "35", "warning": "33", "critical": "31", "down": "1;31",
           "silenced": "36"}
#: After the status word of a host under a silence of the whole host.
SILENCED = " (silenced)"
RESET = "\x1b[0m"
DASH = "-"
#: Column caps: a host may name a mount with thousands of characters; a line stays a line.
MAX_MOUNT = 32
MAX_CHECKS = 60
MAX_NOTE = 80
#: The collector line says why the last pass failed in at most this many characters.
MAX_PROBLEM = 300
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


@dataclass(frozen=True)
class HostLine:
    status: HostStatus
    failing_checks: tuple[tuple[str, str], ...]

    def as_dict(self) -> dict[str, Any]:
        data = self.status.as_dict()
        data["failing_checks"] = [{"name": n, "state": s} for n, s in self.failing_checks]
        return data


@dataclass(frozen=True)
class Report:
    now: datetime
    collector: CollectorState
    last_pass: Mapping[str, Any] | None
    hosts: list[HostLine]
    #: None unless this collector is one shard of several.
    shard: ShardInfo | None = None
    #: Why ``hosts`` is empty, said in place of the lines (an unknown tag, no enabled host).
    empty: str = "(no enabled host in the config)"

    def as_dict(self) -> dict[str, Any]:
        counts = dict.fromkeys(STATUSES, 0)
        for line in self.hosts:
            counts[line.status.status] += 1
        # Not in counts: those partition the hosts by status; a silenced host has one too.
        silenced = sum(1 for line in self.hosts if line.status.silenced is not None)
        return {"generated": format_ts(self.now), "collector": self.collector.as_dict(),
                "shard": self.shard.as_dict() if self.shard else None,
                "counts": counts, "silenced": silenced,
                "hosts": [line.as_dict() for line in self.hosts]}


def build_report(config: Config, now: datetime, tag: str | None = None) -> Report:
    """Every enabled host (or those with ``tag``), worst first, as the dashboard orders them.

    Error messages and reasons are redacted like the dashboard's (:class:`Redactor`), so the
    JSON a script forwards reveals no key or data path."""
    store = Store(config.settings.data_dir)
    latest = store.latest_all(h.name for h in config.enabled_hosts)
    redact = Redactor(config)
    muting, _problems = muting_store.read(config.state_dir)
    alerts = muting.annotate(alert_store.active_alerts(config.state_dir),
                             {h.name: h.tags for h in config.hosts}, now)
    lines = []
    for status in fleet_status(config, latest, alerts, now, muting):
        if tag is not None and tag not in status.tags:
            continue
        clean = replace(status, error=redact(status.error),
                        reasons=tuple(redact(r) or "" for r in status.reasons))
        lines.append(HostLine(clean, tuple(failing_checks(latest.get(status.name)))))
    last = passlog.last_pass(config.state_dir)
    state = collector_state(last, now, config.settings.interval_s)
    return Report(now, replace(state, problem=redact(state.problem)), last, lines,
                  shard_info(config), _why_empty(config, tag))


def _why_empty(config: Config, tag: str | None) -> str:
    """What to say when no line is shown: a typo in ``--tag`` is not an empty config, and a
    shard's share of the hosts is not the whole config."""
    shard = config.settings.shard
    if tag is None:
        return (f"(no enabled host in shard {shard})" if shard and config.fleet_hosts
                else "(no enabled host in the config)")
    if shard and any(tag in h.tags for h in config.fleet_hosts):
        return f"(no host of shard {shard} has the tag {tag!r})"
    if any(tag in h.tags for h in config.hosts):
        return f"(no enabled host has the tag {tag!r})"
    return f"(no host has the tag {tag!r})"


def to_json(report: Report) -> str:
    return json.dumps(report.as_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n"


def terminal_safe(text: Any, limit: int | None = None) -> str:
    """``text`` with every control, format or separator character replaced by ``?``, cut to
    ``limit`` characters ("..." marks the cut)."""
    text = "".join("?" if unicodedata.category(ch) in _UNSAFE_CATEGORIES else ch
                   for ch in str(text))
    if limit is not None and len(text) > limit:
        text = text[:max(0, limit - 3)] + "..."
    return text


#: The families with a column of their own (``Summary.terminal``), in registry order.
COLUMNS = tuple(f for f in SUMMARIZED if f.summary is not None and f.summary.terminal)


def render(report: Report, colour: bool = False) -> str:
    """The collector line, a header line and one aligned line per host."""
    heads = tuple(f.summary.terminal or "" for f in COLUMNS if f.summary is not None)
    rows = [("STATUS", "HOST", "LAST SEEN", *heads, "ALERTS", "CHECKS", "NOTE")]
    # Numbers are right-aligned; a value with its item ("/var 97.0 %") reads from the left.
    right = {3 + i for i, f in enumerate(COLUMNS) if f.summary and not f.summary.item_field}
    right.add(3 + len(COLUMNS))  # ALERTS
    levels: list[tuple[str, ...]] = [("",) * len(rows[0])]
    for line in report.hosts:
        rows.append(_cells(line))
        s = line.status
        word = "silenced" if s.silenced is not None else s.status
        levels.append((word, "", "", *(_hot(_column_level(s, f)) for f in COLUMNS), "",
                       _worst_check(line), "" if s.status == "ok" else word))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = [collector_line(report, colour)]
    if report.shard is not None:
        out.append(report.shard.describe())
    for row, row_levels in zip(rows, levels):
        cells = []
        for i, cell in enumerate(row):
            pad = " " * (widths[i] - len(cell))
            painted = _paint(cell, row_levels[i], colour)
            cells.append(pad + painted if i in right else painted + pad)
        out.append("  ".join(cells).rstrip())
    if not report.hosts:
        out.append(terminal_safe(report.empty))
    return "\n".join(out) + "\n"


def collector_line(report: Report, colour: bool = False) -> str:
    """When the collector last ran, and whether it looks stopped (the dashboard's banner)."""
    state, last = report.collector, report.last_pass or {}
    if state.ts is None:
        return ("collector: " + _paint("stale", "stale", colour)
                + ", no pass recorded yet (is `osmon collect` in cron? see `osmon cron`)")
    when = terminal_safe(state.ts).replace("T", " ").replace("Z", " UTC")
    text = f"last pass {when} ({format_age(state.age_s)})"
    if last.get("skipped"):
        text += ", skipped"
    elif isinstance(last.get("hosts"), int):
        text += f", {counted(last['hosts'], 'host')}, {_int(last.get('failed'))} failed"
    if isinstance(last.get("duration_s"), (int, float)):
        text += f", {last['duration_s']:.1f} s"
    if state.interrupted:
        text += (f", after an interrupted pass (started "
                 f"{terminal_safe(state.interrupted).replace('T', ' ').replace('Z', ' UTC')})")
    if state.stale:
        return ("collector: " + _paint("stale", "stale", colour) + f", {text}: "
                "it has stopped (is `osmon collect` in cron? see `osmon cron`)")
    if state.problem:
        return ("collector: " + _paint("failing", "critical", colour) + f", {text}: "
                + terminal_safe(state.problem, MAX_PROBLEM))
    return "collector: " + _paint("ok", "ok", colour) + f", {text}"


def _cells(line: HostLine) -> tuple[str, ...]:
    s = line.status
    values = []
    for family in COLUMNS:
        value, item = s.values.get(family.name), s.items.get(family.name)
        text = _percent(value) if family.summary and family.summary.format == "percent" else (
            DASH if value is None else f"{value:.2f}")
        if value is not None and family.summary is not None and family.summary.item_field:
            text = f"{terminal_safe(item or '?', MAX_MOUNT)} {text}"
        mark = s.marks.get(family.name)
        if mark:  # "/ 62.0 % (/var full in about 5 h)"
            text = f"{text} ({terminal_safe(mark, MAX_MOUNT + 24)})"
        values.append(text)
    checks = ", ".join(f"{terminal_safe(n)} {state}" for n, state in line.failing_checks)
    note = terminal_safe(s.error, MAX_NOTE) if s.error else ""
    if not note and s.status == "stale" and s.ts is None:
        note = "no data yet"
    status = s.status
    if s.silenced is not None:
        status += SILENCED
        silence = s.silenced
        until = str(silence.get("until", "?")).replace("T", " ").replace("Z", " UTC")
        said = terminal_safe(f"silenced until {until} by {silence.get('author')}: "
                             f"{silence.get('reason')}", MAX_NOTE)
        note = f"{note}; {said}" if note else said
    return (status, terminal_safe(s.name), format_age(s.seen_age_s), *values, str(s.alerts),
            terminal_safe(checks, MAX_CHECKS) or DASH, note)


def _column_level(status: HostStatus, family: Family) -> str | None:
    """A column's level: its family's, or its mark's when that is worse (a disk at 60 % that
    will be full in 3 hours is painted critical)."""
    level = status.levels.get(family.name)
    mark = family.summary.mark if family.summary is not None else None
    if mark is not None and status.marks.get(family.name):
        marked = status.levels.get(mark)
        if SEVERITY.get(marked or "ok", 0) > SEVERITY.get(level or "ok", 0):
            return marked
    return level


def _worst_check(line: HostLine) -> str:
    labels = [state for _name, state in line.failing_checks]
    if "CRITICAL" in labels:
        return "critical"
    return "warning" if labels else ""


def _hot(level: str | None) -> str:
    """A value's level worth colouring ("ok" values stay plain, only the status word is green)."""
    return level if level in ("warning", "critical") else ""


def _paint(text: str, level: str, colour: bool) -> str:
    code = COLOURS.get(level)
    return f"\x1b[{code}m{text}{RESET}" if colour and code and text and text != DASH else text


def _percent(value: float | None) -> str:
    return DASH if value is None else f"{value:.1f} %"


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
