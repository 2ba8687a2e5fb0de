"""SSH transport: run the probe on one host and bring back its bounded, raw output.

Why a raw socket and ``paramiko.Transport`` rather than ``SSHClient``: every step gets its own
timeout and its own error kind (an admin acts differently on "connection refused", "host key
changed" and "key refused"), and the coordinating thread can :meth:`Session.abort` a host from
outside by shutting its socket down.  paramiko's own timeouts do not cover every hang (waiting
for the reply to ``exec`` has none), so the pass never relies on them alone.

The remote command is one fixed string per host (``collector.passes.probe_call``): the probe
arrives on stdin, so nothing is installed on the host and no value from a host is ever put in
a shell string; ``Host.python``, the one value from the config, is validated as an absolute
path or a bare command name of characters no shell treats specially, and quoted all the same.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paramiko

from collector.config import Host, Settings
from collector.transport.credentials import Credentials
from collector.transport.failures import (
    AUTH,
    HOSTKEY,
    INVALID_OUTPUT,
    PROBE,
    TIMEOUT,
    UNREACHABLE,
    SshFailure,
    clean,
    first_line,
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

# paramiko logs a traceback at ERROR for every connection we abort or that fails, already one
# short line per host of ours (noise in cron mail); left alone if configured on purpose.
if logging.getLogger("paramiko").level == logging.NOTSET:
    logging.getLogger("paramiko").setLevel(logging.CRITICAL)

__all__ = [  # the failure kinds and key helpers are read through this module by callers
    "AUTH", "HOSTKEY", "INVALID_OUTPUT", "PROBE", "TIMEOUT", "UNREACHABLE", "CommandResult",
    "Credentials", "HostKeyChecker", "Session", "SshFailure", "WriteGuard", "first_line",
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
    ``step`` names what the session is waiting for, so a timeout says where it was stuck."""

    def __init__(self, host: Host, settings: Settings, host_keys: HostKeyChecker,
                 credentials: Credentials,
                 write_guard: WriteGuard = contextlib.nullcontext) -> None:
        self.host, self.timeout, self.write_guard = host, settings.ssh_timeout_s, write_guard
        self.host_keys, self.credentials = host_keys, credentials
        self.step = "waiting"
        self._sock: socket.socket | None = None
        self._transport: paramiko.Transport | None = None
        self._aborted = False
        self._lock = threading.Lock()

    def abort(self) -> None:
        """Close the connection from another thread; whatever the worker waits on fails."""
        with self._lock:
            self._aborted = True
            sock, transport = self._sock, self._transport
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if transport is not None:
            transport.close()
        if sock is not None:
            sock.close()

    def run(self, command: str, stdin: bytes, extra_s: float = 0.0,
            retry: Callable[[CommandResult], bytes | None] | None = None) -> CommandResult:
        """Connect, check the host key, authenticate, run ``command`` fed with ``stdin``.

        ``extra_s`` lengthens the command step beyond ``ssh_timeout_s`` by what the command is
        allowed to spend on purpose (the host's custom checks, each with its own timeout).
        ``retry`` may turn the result into the stdin of a second run on this same connection.
        """
        start = time.monotonic()
        try:
            transport = self._connect()
            connect_s, budget = time.monotonic() - start, self.timeout + extra_s
            result = self._command(transport, command, stdin, connect_s, budget)
            again = retry(result) if retry is not None else None
            return result if again is None else self._command(transport, command, again,
                                                              connect_s, budget)
        finally:
            self.abort()

    # -- steps ---------------------------------------------------------------------------------
    def _connect(self) -> paramiko.Transport:
        host = self.host
        where = f"{host.address}:{host.port}"
        self.step = "connect"
        try:
            infos = socket.getaddrinfo(host.address, host.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise SshFailure(UNREACHABLE, f"cannot resolve {host.address}: {exc.strerror}"
                             ) from None
        failure = SshFailure(UNREACHABLE, f"no address for {host.address}")
        for family, socktype, proto, _name, addr in infos:  # as ssh does: each in turn
            try:
                sock = self._connect_to(family, socktype, proto, addr)
                break
            except SshFailure as exc:
                failure = exc
        else:
            raise failure
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        self.step = "SSH handshake"
        transport = paramiko.Transport(sock)
        transport.banner_timeout = transport.handshake_timeout = self.timeout
        transport.auth_timeout = self.timeout
        known = self.host_keys.known_types(known_hosts_name(host.address, host.port))
        if known:  # ask for a key type we can check, as OpenSSH does
            options = transport.get_security_options()
            preferred = [t for t in _algorithms_for(known) if t in options.key_types]
            options.key_types = tuple(preferred) + tuple(
                t for t in options.key_types if t not in preferred)
        with self._lock:
            if self._aborted:
                raise SshFailure(TIMEOUT, "aborted")
            self._transport = transport
        done = threading.Event()
        transport.start_client(event=done)
        if not done.wait(self.timeout):
            raise SshFailure(TIMEOUT, self._no_answer("SSH handshake"))
        if not transport.is_active():
            raise _handshake_failure(transport.get_exception(), where)

        self.step = "host key check"
        self.host_keys.verify(host, transport.get_remote_server_key(), self.write_guard)
        self.step = "authentication"
        self._authenticate(transport)
        return transport

    def _connect_to(self, family: int, socktype: int, proto: int,
                    addr: tuple[Any, ...]) -> socket.socket:
        where = f"{self.host.address}:{self.host.port}"
        sock = socket.socket(family, socktype, proto)
        with self._lock:
            if self._aborted:
                sock.close()
                raise SshFailure(TIMEOUT, "aborted")
            self._sock = sock
        sock.settimeout(self.timeout)
        try:
            sock.connect(addr)
            return sock
        except socket.timeout:
            failure = SshFailure(TIMEOUT, self._no_answer("connect"))
        except ConnectionRefusedError:
            failure = SshFailure(UNREACHABLE, f"connection refused on {where}")
        except OSError as exc:
            failure = SshFailure(UNREACHABLE, f"cannot connect to {where}: "
                                              f"{exc.strerror or exc}")
        sock.close()
        raise failure

    def _authenticate(self, transport: paramiko.Transport) -> None:
        host = self.host
        agent = None
        if host.identity_file is not None:
            keys = [(str(host.identity_file), self.credentials.identity(host.identity_file))]
        else:
            keys = []
            if os.environ.get("SSH_AUTH_SOCK"):
                agent = paramiko.Agent()
                keys.extend(("ssh-agent", k) for k in agent.get_keys())
            keys.extend(self.credentials.default_keys())
        try:
            if not keys:
                raise SshFailure(AUTH, "no key to try: set identity_file for this host (or "
                                       "load a key into ssh-agent)")
            for _label, key in keys:
                try:
                    transport.auth_publickey(host.user, key)
                    return
                except paramiko.BadAuthenticationType as exc:
                    raise SshFailure(AUTH, (
                        f"{host.address} does not accept public keys for {host.user} "
                        f"(it allows: {', '.join(exc.allowed_types) or 'nothing'})")) from None
                except paramiko.AuthenticationException as exc:
                    if "timeout" in str(exc).lower():
                        raise SshFailure(TIMEOUT, self._no_answer("authentication")) from None
                    if not transport.is_active():
                        raise SshFailure(UNREACHABLE, "connection closed during "
                                                      "authentication") from None
        finally:
            if agent is not None:
                agent.close()
        tried = ", ".join(label for label, _key in keys)
        raise SshFailure(AUTH, (
            f"{host.user}@{host.address} refused the key ({tried}); add its public key to "
            f"~{host.user}/.ssh/authorized_keys on the host"))

    def _command(self, transport: paramiko.Transport, command: str, stdin: bytes,
                 connect_s: float, budget_s: float) -> CommandResult:
        self.step = "command"
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
        return f"no answer within {seconds or self.timeout:g} s ({step})"


def _algorithms_for(key_types: list[str]) -> list[str]:
    """known_hosts says ``ssh-rsa``; the SSH algorithms for such a key are the rsa-sha2 ones."""
    names: list[str] = []
    for key_type in key_types:
        names.extend(("rsa-sha2-512", "rsa-sha2-256") if key_type == "ssh-rsa" else (key_type,))
    return names


def _handshake_failure(exc: BaseException | None, where: str) -> SshFailure:
    text = str(exc) if exc is not None else "negotiation failed"
    banner = "Error reading SSH protocol banner"
    if text.startswith(banner) and text[len(banner):].strip() in ("", "timed out"):
        return SshFailure(TIMEOUT, f"{where} accepted the connection but sent no SSH banner")
    if isinstance(exc, EOFError) or "EOFError" in text or "reset" in text.lower():
        return SshFailure(UNREACHABLE, f"{where} closed the connection during the SSH "
                                       f"handshake (is it an SSH server?)")
    if "timed out" in text or "timeout" in text.lower():
        return SshFailure(TIMEOUT, f"no SSH answer from {where} (SSH handshake)")
    if isinstance(exc, paramiko.IncompatiblePeer) or "Incompatible" in text:
        return SshFailure(UNREACHABLE, f"{where}: no common SSH algorithms ({clean(text)})")
    return SshFailure(UNREACHABLE, f"{where}: SSH handshake failed: {clean(text)}")


