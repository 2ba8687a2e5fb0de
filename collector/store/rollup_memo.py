"""What the rollup hook last brought each host's rollups up to, in this process.

Why: a pass that has crossed no bucket boundary since a host's rollups were brought up to
date has nothing to write, yet finding that out reads and decodes the end of two rollup
files.  In ``osmon run`` at a 10 s interval that is 29 passes in 30, and the largest part of
what the collector spends per host and pass.  The files stay the truth: the memo holds the
identity (inode, size, modification time) of the file of the newest complete bucket, so a
changed file (a repair, a restore, a torn line) or a new boundary reads the watermark from
the files again (:func:`collector.store.rollup.catch_up`).
"""

from __future__ import annotations

from pathlib import Path

from collector.store.statefile import FileIdentity, file_identity

#: (data dir, host) -> (boundary, the newest bucket's file, its identity then)
_memo: dict[tuple[str, str], tuple[float, Path, FileIdentity | None]] = {}


def up_to_date(data_dir: Path, host: str, boundary: float) -> bool:
    """True when the host's rollups were complete up to ``boundary`` and the file of the
    newest bucket is as it was then (one ``stat``: its name is kept, not made again)."""
    seen = _memo.get((str(data_dir), host))
    return seen is not None and seen[0] == boundary and seen[2] == file_identity(seen[1])


def remember(data_dir: Path, host: str, boundary: float, newest_file: Path) -> None:
    _memo[(str(data_dir), host)] = (boundary, newest_file, file_identity(newest_file))
