"""Each host's disk trend between passes: ``<data_dir>/state/disk-trend/<host>.json``.

The pure part, what the file holds and how a pass changes it, is
:mod:`collector.metrics.disk_trend`: every mount's readings of the last hours, thinned to one
per five minutes, and its last fit.  The worker collecting a host reads the file; only the
pass's coordinator writes it, after the host's sample is stored, so a worker the pass gave
up on (a hung host) never writes after the pass has released the data lock.  The file is
written atomically (:mod:`collector.store.statefile`: a reader sees the old or the new one)
and only when it changed, about once per five minutes per host, but without fsync: the
coordinator saves one after another for about a host in five, and two fsyncs each (~2 ms)
would be seconds of every pass at 10,000 hosts, for a file that is disposable.  A crash of
the machine may lose its last version or leave it empty, and a damaged file is logged and
rebuilt: the forecasts of that host start again (30 minutes without one), nothing else is
lost.  Host names are path-safe
(``config.SAFE_NAME``), so they name the files directly.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from collector.metrics.disk_trend import VERSION
from collector.store.statefile import atomic_write_bytes, read_json

log = logging.getLogger(__name__)

DIRECTORY = "disk-trend"


def path_for(state_dir: Path, host: str) -> Path:
    return Path(state_dir) / DIRECTORY / f"{host}.json"


def load(state_dir: Path, host: str) -> dict[str, Any] | None:
    """The host's trend state, or None when missing, unreadable or of another version."""
    value, problem = read_json(path_for(state_dir, host), VERSION)
    if problem:
        log.warning("%s", problem)
        return None
    return value


def save(state_dir: Path, host: str, state: dict[str, Any]) -> None:
    """Keep the host's trend state for the next pass (compact JSON)."""
    data = json.dumps(state, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    atomic_write_bytes(path_for(state_dir, host), data.encode("utf-8") + b"\n", durable=False)
