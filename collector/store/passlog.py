"""``<data_dir>/state/passes.jsonl``: one line per pass, skipped and failed passes included.

The dashboard reads the last line to say "collector stopped" when cron no longer runs passes,
or "collector failing" when the last pass could not store its samples, and an admin reads the
file to see how long passes take.  It is capped by rotating to ``passes.jsonl.1`` (a rename,
atomic) once it passes :data:`MAX_BYTES`, so a year of passes every minute cannot fill the
disk.

A pass killed with SIGKILL (or by a power cut) cannot write its line.  So a pass leaves a
marker, ``state/pass-running.json``, while it runs, and removes it when its line is written;
the next pass, holding the lock (the killed one's ``flock`` died with it), finds the marker
and logs that pass as ``interrupted``, which explains the gap in every chart.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from collector.store.samples import append_whole_lines, tail_lines
from collector.store.statefile import atomic_write_json, read_json

FILE_NAME = "passes.jsonl"
MARKER_NAME = "pass-running.json"
MARKER_VERSION = 1
MAX_BYTES = 1024 * 1024
_TAIL = 16 * 1024


def record(state_dir: Path, entry: dict[str, Any]) -> None:
    """Append ``entry`` as one whole line: ``ts``, ``duration_s``, ``hosts``, ``ok``,
    ``failed``, ``skipped`` (with ``reason``: another process held the lock), and when the
    pass itself failed ``problem`` (one sentence), ``unstored`` (samples not stored) or
    ``interrupted`` (true: the line of a pass that was killed, written by the next one);
    ``after_interrupted`` is the ``ts`` of such a pass, on the line of the pass that found it;
    ``shard`` ("2/3") when the collector is one of several."""
    path = state_dir / FILE_NAME
    try:
        if path.stat().st_size > MAX_BYTES:
            os.replace(path, path.with_name(FILE_NAME + ".1"))
    except FileNotFoundError:
        pass
    append_whole_lines(
        path, json.dumps(entry, separators=(",", ":"), allow_nan=False).encode() + b"\n")


def last_pass(state_dir: Path) -> dict[str, Any] | None:
    """The newest readable entry (a skipped pass counts: the collector is alive), or None."""
    for name in (FILE_NAME, FILE_NAME + ".1"):
        entry = _last_entry(state_dir / name)
        if entry is not None:
            return entry
    return None


def _last_entry(path: Path) -> dict[str, Any] | None:
    try:
        lines, _cut = tail_lines(path, _TAIL)
    except FileNotFoundError:
        return None
    for line in reversed(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # empty, torn or cut by the tail window
        if isinstance(entry, dict) and isinstance(entry.get("ts"), str):
            return entry
    return None


def mark_running(state_dir: Path, ts: str, hosts: int) -> None:
    """Leave the marker of a running pass (the caller holds the data lock).

    Not synced to disk: the page cache outlives a killed process, which is what the marker
    is for, and two ``fsync`` per pass were a millisecond of every pass of ``osmon run``.
    After a power cut the marker may be lost or empty; an empty one still reads as an
    interrupted pass ("at an unknown time"), and the reboot explains the gap anyway."""
    atomic_write_json(Path(state_dir) / MARKER_NAME,
                      {"version": MARKER_VERSION, "ts": ts, "pid": os.getpid(), "hosts": hosts},
                      durable=False)


def mark_finished(state_dir: Path) -> None:
    """The pass wrote its line: remove its marker."""
    with contextlib.suppress(FileNotFoundError):
        (Path(state_dir) / MARKER_NAME).unlink()


def take_unfinished(state_dir: Path) -> dict[str, Any] | None:
    """The log entry of a pass that left its marker and never finished, marker removed; None
    when the last pass finished.  Call it holding the data lock: no live pass is running."""
    path = Path(state_dir) / MARKER_NAME
    marker, _problem = read_json(path, MARKER_VERSION)
    if not path.exists():
        return None
    marker = marker if isinstance(marker, dict) else {}
    ts = marker.get("ts") if isinstance(marker.get("ts"), str) else None
    pid = marker.get("pid") if isinstance(marker.get("pid"), int) else None
    hosts = marker.get("hosts") if isinstance(marker.get("hosts"), int) else 0
    when = ts.replace("T", " ").replace("Z", " UTC") if ts else "an unknown time"
    entry: dict[str, Any] = {
        "ts": ts or "", "duration_s": None, "hosts": hosts, "ok": 0, "failed": 0,
        "skipped": False, "interrupted": True,
        "problem": (f"the pass started at {when}" + (f" (pid {pid})" if pid else "")
                    + " was interrupted before it finished (killed, or the machine stopped); "
                      "hosts it had not stored yet have no sample for that pass")}
    path.unlink()
    return entry
