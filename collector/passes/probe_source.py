"""The probes' sources as a pass sends them, read again only when their file changed.

``osmon run`` starts a pass every few seconds; reading ``probe.py`` each time, and hashing it
to see whether the resident sessions must start the new one, was a fixed cost of every pass
for a file that changes only with an upgrade.  The file's identity (inode, modification
time, size) says when to read it again, so an upgrade in place is still seen at the next pass.
"""

from __future__ import annotations

from pathlib import Path

import remote_probe
from collector.store.statefile import FileIdentity, file_identity

_FOLDER = Path(remote_probe.__file__).resolve().parent
_read: dict[str, tuple[FileIdentity | None, bytes]] = {}


def probe_source(name: str) -> bytes:
    """The bytes of ``remote_probe/<name>``: the same object as long as the file is unchanged
    (its readers may compare it by identity)."""
    path = _FOLDER / name
    identity = file_identity(path)
    seen = _read.get(name)
    if seen is not None and identity is not None and seen[0] == identity:
        return seen[1]
    source = path.read_bytes()  # changed since the stat: the next pass reads it again
    _read[name] = (identity, source)
    return source
