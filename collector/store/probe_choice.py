"""Which probe a host with ``probe = "auto"`` needs: `<data_dir>/state/probe-choice/<host>.json`.

A host without a usable Python costs a failed start of the Python probe before the shell
probe runs (one more channel on the same connection).  Once the shell probe has answered, the
choice is kept here so later passes send the shell probe at once; it expires after
:data:`RECHECK_S`, so a host that gained a Python (or a new image) goes back to the Python
probe within a day.  Only the shell choice is written: a host whose Python works has no file.
Written atomically (collector.store.statefile); host names are path-safe (config.SAFE_NAME).
"""

from __future__ import annotations

import contextlib
import logging
import math
from pathlib import Path

from collector.store.statefile import atomic_write_json, read_json

log = logging.getLogger(__name__)

VERSION = 1
DIRECTORY = "probe-choice"
#: A remembered choice is tried again after this long (the issue's "re-checked daily").
RECHECK_S = 86400.0
SHELL = "sh"


def path_for(state_dir: Path, host: str) -> Path:
    return Path(state_dir) / DIRECTORY / f"{host}.json"


def remembered(state_dir: Path, host: str, now_epoch: float) -> str | None:
    """``"sh"`` while a fresh choice of the shell probe is kept, else None (try Python).

    A damaged file costs one failed Python start, never the pass: it is logged and ignored.
    A choice from the future (the clock went back) counts as stale.
    """
    value, problem = read_json(path_for(state_dir, host), VERSION)
    if problem:
        log.warning("%s", problem)
        return None
    if value is None:
        return None
    chosen, since = value.get("probe"), value.get("since")
    if chosen != SHELL or isinstance(since, bool) or not isinstance(since, (int, float)) \
            or not math.isfinite(since):
        log.warning("%s: unexpected content; it will be rebuilt", path_for(state_dir, host))
        return None
    return SHELL if 0 <= now_epoch - since < RECHECK_S else None


def remember_shell(state_dir: Path, host: str, now_epoch: float) -> None:
    """Keep the shell probe for this host until :data:`RECHECK_S` from now."""
    atomic_write_json(path_for(state_dir, host),
                      {"version": VERSION, "probe": SHELL, "since": now_epoch}, 0o640)


def forget(state_dir: Path, host: str) -> None:
    """The host's Python works (again): send the Python probe from now on."""
    with contextlib.suppress(FileNotFoundError):
        path_for(state_dir, host).unlink()
