"""How collecting one host can fail: the error kinds of a sample and the exception that carries
them (docs/architecture.md, "The sample").

Every message may end up in a log line, a mail and a page: text that came from a host goes
through :func:`clean` or :func:`first_line` first (one short printable line).
"""

from __future__ import annotations

# Error kinds (docs/architecture.md, "The sample").
UNREACHABLE, TIMEOUT, AUTH, HOSTKEY = "unreachable", "timeout", "auth", "hostkey"
PROBE, INVALID_OUTPUT = "probe", "invalid-output"


class SshFailure(Exception):
    """One host could not be collected; ``kind`` is one of the error kinds above, ``message``
    is short.  ``transient``: the server dropped the connection before the SSH handshake got
    anywhere (a busy sshd's MaxStartups), so trying again shortly may well succeed."""

    def __init__(self, kind: str, message: str, *, transient: bool = False) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind, self.message, self.transient = kind, message, transient

    def again(self) -> SshFailure:
        """A fresh copy, for another thread to raise (an exception keeps its traceback)."""
        return SshFailure(self.kind, self.message, transient=self.transient)


def clean(text: str, limit: int = 200) -> str:
    """Untrusted text (it may come from the host) made one short printable line."""
    line = "".join(c if c.isprintable() else " " for c in text.strip().split("\n", 1)[0])
    return line[:limit] + ("…" if len(line) > limit else "")


def first_line(data: bytes, limit: int = 200) -> str:
    """The first non-empty line of a host's stderr, safe to print and store."""
    for raw in data.decode("utf-8", "replace").splitlines():
        if raw.strip():
            return clean(raw, limit)
    return ""
