"""How collecting one host can fail: the error kinds of a sample and the exception that carries
them (docs/architecture.md, "The sample").

Every message may end up in a log line, a mail and a page: text that came from a host goes
through :mod:`collector.transport.host_text` first (one short printable line).
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

