"""``<data_dir>/state/passes.jsonl``: one line per pass, skipped passes included.

The dashboard reads the last line to say "collector stopped" when cron no longer runs passes,
and an admin reads the file to see how long passes take.  It is capped by rotating to
``passes.jsonl.1`` (a rename, atomic) once it passes :data:`MAX_BYTES`, so a year of passes
every minute cannot fill the disk.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from collector.store.samples import append_whole_lines, tail_lines

FILE_NAME = "passes.jsonl"
MAX_BYTES = 1024 * 1024
_TAIL = 16 * 1024


def record(state_dir: Path, entry: dict[str, Any]) -> None:
    """Append ``entry`` (``ts``, ``duration_s``, ``hosts``, ``ok``, ``failed``, ``skipped``,
    optional ``reason``, and ``shard`` ("2/3") when the collector is one of several) as one
    whole line."""
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
