"""SSH transport: run the probe on one host and bring back its bounded, raw output.

Why a raw socket and ``paramiko.Transport`` rather than ``SSHClient``: every step gets its own
timeout and its own error kind (an admin acts differently on "connection refused", "host key
changed" and "key refused"), and the coordinating thread can :meth:`Session.abort` a host from
outside by shutting its socket down.  paramiko's own timeouts do not cover every hang (waiting
for the reply to ``exec`` has none), so the pass never relies on them alone.  Opening the
connection (retries, the handshake gate, bastions) is :mod:`collector.transport.connect`; a
resident session of ``osmon run`` is :mod:`collector.transport.resident`.

The remote command is one fixed string per host (``collector.passes.probe_call``): the probe
arrives on stdin, so nothing is installed on the host and no value from a host is ever put in
a shell string; ``Host.python``, the one value from the config, is validated as an absolute
path or a bare command name of characters no shell treats specially, and quoted all the same.
"""

from __future__ import annotations

import contextlib
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import paramiko

from collector.config import Host
from collector.transport.connect import Dialer, Link, no_answer, open_transport
from collector.transport.credentials import Credentials
from collector.transport.failures import (
    AUTH,
    HOSTKEY,
    INVALID_OUTPUT,
    PROBE,
    TIMEOUT,
    UNREACHABLE,
    SshFailure,
)
from collector.transport.host_keys import (
    HostKeyChecker,
    WriteGuard,
    known_hosts_name,
)

#: More stdout than this is not a probe answer (a normal one is tens of KiB).
MAX_STDOUT = 4 * 1024 * 1024
#: Kept for the error message; more is read and dropped so the channel window stays open.
MAX_STDERR_KEPT = 16 * 1024
#: Beyond this much stderr the host is only wasting our time.
MAX_STDERR = 1024 * 1024
_READ_CHUNK = 1024 * 1024

__all__ = [  # the failure kinds and key helpers are read through this module by callers
    "AUTH", "HOSTKEY", "INVALID_OUTPUT", "PROBE", "TIMEOUT", "UNREACHABLE", "CommandResult",
    "Credentials", "Dialer", "HostKeyChecker", "Session", "SshFailure", "WriteGuard",
    "known_hosts_name",
]


@dataclass(frozen=True)
class CommandResult:
    stdout: bytes
    stderr: bytes
    exit_status: int
    #: TCP connect + key exchange + authentication, in seconds.
    connect_s: float
    #: Unix time when the first byte of stdout arrived: the moment of the reading, for rates.
    reading_epoch: float


# -- one session -------------------------------------------------------------------------------
class Session:
    """One host's connection.  The worker calls :meth:`run`; the coordinator may :meth:`abort`.
    ``step`` names what the session is waiting for, so a timeout says where it was stuck.
    ``deadline`` (a ``time.monotonic()`` value, the host's) bounds the attempts to connect."""

    def __init__(self, host: Host, dialer: Dialer,
                 write_guard: WriteGuard = contextlib.nullcontext,
                 deadline: float | None = None) -> None:
        self.host, self.dialer, self.timeout = host, dialer, dialer.settings.ssh_timeout_s
        self.deadline = deadline if deadline is not None else \
            time.monotonic() + dialer.settings.host_deadline_s
        self.link = Link(write_guard)
        self.connect_s = 0.0
        self._transport: paramiko.Transport | None = None

    @property
    def step(self) -> str:
        return self.link.step

    def abort(self) -> None:
        """Close the connection from another thread; whatever the worker waits on fails."""
        self.link.abort()

    def connect(self) -> paramiko.Transport:
        """The session's authenticated transport, opened on first use (``connect_s`` says
        how long that took)."""
        if self._transport is None:
            start = time.monotonic()
            self._transport = open_transport(self.dialer, self.link, self.host, self.deadline)
            self.connect_s = time.monotonic() - start
        return self._transport

    def run(self, command: str, stdin: bytes, extra_s: float = 0.0,
            retry: Callable[[CommandResult], bytes | None] | None = None) -> CommandResult:
        """Connect, check the host key, authenticate, run ``command`` fed with ``stdin``.

        ``extra_s`` lengthens the command step beyond ``ssh_timeout_s`` by what the command is
        allowed to spend on purpose (the host's custom checks, each with its own timeout).
        ``retry`` may turn the result into the stdin of a second run on this same connection.
        """
        try:
            transport = self.connect()
            budget = self.timeout + extra_s
            result = self._command(transport, command, stdin, self.connect_s, budget)
            again = retry(result) if retry is not None else None
            return result if again is None else self._command(transport, command, again,
                                                              self.connect_s, budget)
        finally:
            self.abort()

    def _command(self, transport: paramiko.Transport, command: str, stdin: bytes,
                 connect_s: float, budget_s: float) -> CommandResult:
        self.link.step = "command"
        deadline = time.monotonic() + budget_s
        try:
            channel = transport.open_session(timeout=self.timeout)
            channel.settimeout(self.timeout)
            channel.exec_command(command)
        except socket.timeout:
            raise SshFailure(TIMEOUT, self._no_answer("command")) from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise SshFailure(UNREACHABLE, f"could not start the probe: {exc}") from None
        try:
            channel.sendall(stdin)
            channel.shutdown_write()
        except socket.timeout:
            raise SshFailure(TIMEOUT, self._no_answer("sending the probe")) from None
        except OSError:
            pass  # it ended without reading its input (no python3?): its exit status says why
        try:
            stdout, stderr, reading_epoch = self._read(channel, deadline, budget_s)
            if not channel.status_event.wait(max(0.0, deadline - time.monotonic())):
                raise SshFailure(TIMEOUT, self._no_answer("exit status of the command",
                                                          budget_s))
            return CommandResult(stdout, stderr, channel.exit_status, connect_s, reading_epoch)
        finally:
            channel.close()  # also closes the pipe behind fileno(), which nothing else does

    def _read(self, channel: paramiko.Channel, deadline: float,
              budget_s: float) -> tuple[bytes, bytes, float]:
        """Drain stdout and stderr together (they share the channel window), both bounded."""
        out: list[bytes] = []
        err: list[bytes] = []
        out_size = err_size = 0
        reading_epoch = 0.0
        poller = select.poll()  # not select(): it fails on descriptors above 1023
        poller.register(channel.fileno(), select.POLLIN)
        while True:
            while channel.recv_stderr_ready():
                chunk = channel.recv_stderr(_READ_CHUNK)
                if err_size < MAX_STDERR_KEPT:
                    err.append(chunk)
                err_size += len(chunk)
                if err_size > MAX_STDERR:
                    raise SshFailure(INVALID_OUTPUT, "more than 1 MiB on stderr")
            while channel.recv_ready():
                chunk = channel.recv(_READ_CHUNK)
                if not reading_epoch:
                    reading_epoch = time.time()
                out.append(chunk)
                out_size += len(chunk)
                if out_size > MAX_STDOUT:
                    raise SshFailure(INVALID_OUTPUT, f"more than {MAX_STDOUT >> 20} MiB of "
                                                     f"output; stopped reading")
            if channel.closed or (channel.eof_received and not channel.recv_ready()
                                  and not channel.recv_stderr_ready()):
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SshFailure(TIMEOUT, self._no_answer("command", budget_s))
            poller.poll(remaining * 1000)
        if not channel.eof_received:
            raise SshFailure(UNREACHABLE, "connection lost while the probe ran")
        return b"".join(out), b"".join(err), reading_epoch or time.time()

    def _no_answer(self, step: str, seconds: float | None = None) -> str:
        return no_answer(step, seconds or self.timeout)

