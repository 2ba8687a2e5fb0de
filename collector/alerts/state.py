"""Alert state and history on disk, and the read API the dashboard uses.

* ``<data_dir>/state/alerts.json``: the rules' memory between passes (versioned, written
  atomically).  A corrupt file is set aside as ``alerts.json.corrupt`` for inspection and the
  state rebuilt from nothing: the worst outcome is that current problems are confirmed and
  mailed again, never a crashed pass.  A file that cannot be read (an I/O error) or that a
  newer osmon wrote is not corrupt: it is left alone and alerts wait (:class:`StateUnusable`).
* ``<data_dir>/state/alert-history.jsonl``: every event, one JSON line each, append-only.
  When it passes :data:`HISTORY_MAX_BYTES` it is renamed to ``alert-history.jsonl.1``
  (replacing the older one), so the history is bounded without a cleanup job.  Several
  processes append (the pass, ``osmon silence``, the dashboard): each append and rotation
  holds ``alert-history.lock``.

The readers (:func:`active_alerts`, :func:`history`) never write and never raise on damage.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from collector.alerts import rules as alert_rules
from collector.alerts.notification import LEVEL_RANK
from collector.store.lock import wait_for_flock
from collector.store.samples import append_whole_lines
from collector.store.statefile import (
    StateFileUnusable,
    atomic_write_json,
    give_to_dir_owner,
    make_dirs,
    read_for_update,
    read_json,
)

log = logging.getLogger(__name__)

STATE_FILE = "alerts.json"
HISTORY_FILE = "alert-history.jsonl"
HISTORY_MAX_BYTES = 8 * 1024 * 1024
HISTORY_LOCK_FILE = "alert-history.lock"
#: An append holds the lock for a millisecond; a holder this slow is stuck.
HISTORY_LOCK_WAIT_S = 5.0
_CHUNK = 64 * 1024


class StateUnusable(Exception):
    """The alert state exists but must not be rebuilt: it could not be read (an I/O error,
    no permission: maybe only for now) or it was written by a newer osmon.  Rebuilding would
    forget every open alert, whose recoveries would then never be mailed, and saving would
    overwrite the newer file; so the pass judges nothing and leaves the file alone."""


def load_state(state_dir: Path) -> tuple[dict[str, Any], str | None]:
    """The saved state, or an empty one and the reason it could not be used.

    Only a file that is really corrupt (not JSON, not osmon's alert state, an older format)
    is set aside as ``alerts.json.corrupt`` and rebuilt; raises :class:`StateUnusable` for a
    file that cannot be read or comes from a newer osmon.
    """
    path = Path(state_dir) / STATE_FILE
    try:
        value, problem = read_for_update(path, alert_rules.STATE_VERSION)
    except StateFileUnusable as exc:
        then = ("alerts are not evaluated and the file is left as it is: run the newer osmon"
                if exc.newer else "alerts are not evaluated until it can be read")
        raise StateUnusable(f"{exc}; {then}") from None
    if problem is not None:
        return _set_aside(path, problem)
    if value is None:
        return alert_rules.empty_state(), None
    return alert_rules.normalize_state(value), None


def _set_aside(path: Path, problem: str) -> tuple[dict[str, Any], str]:
    """Keep a corrupt state file for inspection; start again from an empty state."""
    with contextlib.suppress(OSError):
        os.replace(path, path.with_name(STATE_FILE + ".corrupt"))
    return alert_rules.empty_state(), problem


def read_state(state_dir: Path) -> tuple[dict[str, Any], str | None]:
    """The saved state for a reader (the dashboard, ``osmon ack``): never writes, never
    raises; damage reads as an empty state and the reason."""
    value, problem = read_json(Path(state_dir) / STATE_FILE, alert_rules.STATE_VERSION)
    return alert_rules.normalize_state(value), problem


def save_state(state_dir: Path, state: dict[str, Any]) -> None:
    atomic_write_json(Path(state_dir) / STATE_FILE, state)


def append_history(state_dir: Path, records: Iterable[dict[str, Any]]) -> None:
    """Append whole lines in one ``write``: a crash leaves at worst a torn last line."""
    data = b"".join(json.dumps(r, ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n"
                    for r in records)
    if not data:
        return
    path = Path(state_dir) / HISTORY_FILE
    with _history_lock(path.parent) as locked:
        if locked:  # alone: nobody renames a fresh file over the one just rotated
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_size > HISTORY_MAX_BYTES:
                    os.replace(path, path.with_name(HISTORY_FILE + ".1"))
        append_whole_lines(path, data)
    give_to_dir_owner(path)  # made by `sudo osmon silence ...`: the collector's user appends too


@contextlib.contextmanager
def _history_lock(state_dir: Path) -> Iterator[bool]:
    """The history's own ``flock``: the pass appends under the data lock, but ``osmon
    silence``, ``osmon ack`` and the dashboard append beside it, and both the rotation (stat,
    then rename) and :func:`append_whole_lines` (which cuts a failed write back to the size
    it saw) assume one writer.  Held for one append.  Yields False when it cannot be had
    (a lock file another user made, a stuck holder): the event is still appended (one whole
    line is safe with ``O_APPEND``), only the rotation waits for the next append."""
    lock = state_dir / HISTORY_LOCK_FILE
    try:
        make_dirs(state_dir, dir_owner=True)
        fd = os.open(lock, os.O_RDONLY | os.O_CREAT, 0o644)  # flock needs no more
    except OSError as exc:
        log.warning("alert history appended without its lock %s: %s", lock, exc)
        yield False
        return
    try:
        give_to_dir_owner(lock)
        locked = wait_for_flock(fd, HISTORY_LOCK_WAIT_S)
        if not locked:
            log.warning("alert history appended without its lock: %s stays held", lock)
        yield locked
    finally:
        os.close(fd)  # releases the lock


def active_alerts(state_dir: Path) -> list[dict[str, Any]]:
    """Confirmed problems, worst first: ``{"host","metric","item","level","value",
    "threshold","since","message"}``."""
    state, _problem = read_state(state_dir)
    rows = []
    for host, hs in state["hosts"].items():
        for alert in hs["alerts"].values():
            if alert.get("level") not in ("warning", "critical"):
                continue
            rows.append({"host": host, "metric": alert["metric"], "item": alert.get("item"),
                         "level": alert["level"], "value": alert.get("value"),
                         "threshold": alert.get("threshold"), "since": alert["since"],
                         "message": alert.get("message", "")})
    rows.sort(key=lambda r: (LEVEL_RANK[r["level"]], r["since"], r["host"],
                             r["metric"], r["item"] or ""))
    return rows


def history(state_dir: Path, limit: int = 200, host: str | None = None) -> list[dict[str, Any]]:
    """The newest ``limit`` events (of ``host`` only, if given), newest first."""
    rows: list[dict[str, Any]] = []
    if limit <= 0:
        return rows
    base = Path(state_dir) / HISTORY_FILE
    for path in (base, base.with_name(HISTORY_FILE + ".1")):
        for line in _lines_backwards(path):
            record = _decode(line)
            if record is None or (host is not None and record.get("host") != host):
                continue
            rows.append(record)
            if len(rows) >= limit:
                return rows
    return rows


def _decode(line: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None  # a torn line
    return value if isinstance(value, dict) and isinstance(value.get("ts"), str) else None


def _lines_backwards(path: Path) -> Iterator[bytes]:
    """Lines of a file from the last one up, reading only as much of the end as needed."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed in the finally below
    except FileNotFoundError:
        return
    try:
        position = fh.seek(0, os.SEEK_END)
        rest = b""
        while position > 0:
            step = min(_CHUNK, position)
            position -= step
            fh.seek(position)
            block = fh.read(step) + rest
            lines = block.split(b"\n")
            rest = lines[0]  # may be the end of a line that starts in the previous block
            for line in reversed(lines[1:]):
                if line.strip():
                    yield line
        if rest.strip():
            yield rest
    finally:
        fh.close()
