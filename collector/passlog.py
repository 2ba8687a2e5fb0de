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

FILE_NAME = "passes.jsonl"
MAX_BYTES = 1024 * 1024
_TAIL = 16 * 1024


def record(state_dir: Path, entry: dict[str, Any]) -> None:
    """Append ``entry`` (``ts``, ``duration_s``, ``hosts``, ``ok``, ``failed``, ``skipped``,
    optional ``reason``) as one whole line."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / FILE_NAME
    try:
        if path.stat().st_size > MAX_BYTES:
            os.replace(path, path.with_name(FILE_NAME + ".1"))
    except FileNotFoundError:
        pass
    line = json.dumps(entry, separators=(",", ":"), allow_nan=False).encode() + b"\n"
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line  # a killed writer's torn line stays a line of its own
        os.write(fd, line)
    finally:
        os.close(fd)


def last_pass(state_dir: Path) -> dict[str, Any] | None:
    """The newest readable entry (a skipped pass counts: the collector is alive), or None."""
    for name in (FILE_NAME, FILE_NAME + ".1"):
        entry = _last_entry(state_dir / name)
        if entry is not None:
            return entry
    return None


def _last_entry(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - _TAIL))
            lines = fh.read().split(b"\n")
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
