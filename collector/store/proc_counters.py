"""Per-host process CPU counters between passes: `<data_dir>/state/proc-counters/<host>.json`.

Per-process CPU percent needs two readings. The probe reports every scanned process's
counters (`processes.counters`: boot-clock uptime and {pid: [starttime, ticks]}); they are
kept here, not in the JSON Lines log (which must not grow by a map of every pid each
minute), and sent back as the probe's `proc_prev` parameter on the next pass, so the probe
computes CPU percent over the interval between passes without sleeping. `osmon collect` is a
new process every minute, hence a file rather than memory.

The file is written atomically (collector.store.statefile) and carries the collector's epoch of
the reading: counters older than rates.MAX_INTERVAL_S are not sent back (a percentage over
hours is no "current" figure), and then the probe falls back to the lifetime average. Host
names are path-safe (config.SAFE_NAME), so they name the files directly.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from collector.metrics.values import MAX_INTERVAL_S
from collector.store.statefile import atomic_write_bytes, read_json

log = logging.getLogger(__name__)

VERSION = 1
DIRECTORY = "proc-counters"


def path_for(state_dir: Path, host: str) -> Path:
    return Path(state_dir) / DIRECTORY / f"{host}.json"


def take_counters(raw: dict[str, Any]) -> dict[str, Any] | None:
    """Remove `processes.counters` from validated probe output and return it (or None)."""
    processes = raw.get("processes")
    if not isinstance(processes, dict):
        return None
    counters = processes.pop("counters", None)
    return counters if isinstance(counters, dict) else None


def save(state_dir: Path, host: str, counters: dict[str, Any], epoch: float) -> None:
    """Keep this pass's counters for the next one; compact JSON (tens of thousands of pids)."""
    data = json.dumps({"version": VERSION, "epoch": epoch, "counters": counters},
                      separators=(",", ":"), allow_nan=False)
    atomic_write_bytes(path_for(state_dir, host), data.encode("ascii") + b"\n")


def load(state_dir: Path, host: str, now_epoch: float) -> dict[str, Any] | None:
    """The counters to send as `proc_prev`, or None when missing, unreadable or too old.

    A damaged file costs one pass of interval percentages, never the pass: it is logged
    and ignored, and the next save replaces it. The probe checks each entry again.
    """
    value, problem = read_json(path_for(state_dir, host), VERSION)
    if problem:
        log.warning("%s", problem)
        return None
    if value is None:
        return None
    epoch, counters = value.get("epoch"), value.get("counters")
    if isinstance(epoch, bool) or not isinstance(epoch, (int, float)) or \
            not math.isfinite(epoch) or not isinstance(counters, dict):
        log.warning("%s: unexpected content; it will be rebuilt", path_for(state_dir, host))
        return None
    if not 0 < now_epoch - epoch <= MAX_INTERVAL_S:
        return None
    return counters
