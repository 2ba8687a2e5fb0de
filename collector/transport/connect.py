"""Opening one authenticated SSH connection: TCP (or a ``direct-tcpip`` channel through a
bastion), the key exchange, the host key check, the login.

Each step has its own timeout and error kind (an admin acts differently on "connection
refused", "host key changed" and "key refused"), and a :class:`Link` lets the coordinating
thread abort the whole thing from outside by closing what it holds: paramiko's own timeouts
do not cover every hang, so a pass never relies on them alone.

A connection the server drops before the handshake got anywhere (a reset, an end of stream
before the banner: what a busy sshd does beyond ``MaxStartups``) is tried again after a
jittered back-off, as long as the host's deadline leaves room; a refused key or a wrong host
key never is.  Every attempt takes a slot of the :class:`~collector.transport.gate.HandshakeGate`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import paramiko

from collector.config import Host, Settings
from collector.transport.credentials import Credentials
from collector.transport.failures import AUTH, TIMEOUT, UNREACHABLE, SshFailure
from collector.transport.gate import HandshakeGate
from collector.transport.host_keys import HostKeyChecker, WriteGuard, known_hosts_name
from collector.transport.host_text import clean

if TYPE_CHECKING:
    from collector.transport.jump import Bastions

# paramiko logs a traceback at ERROR for every connection we abort or that fails, already one
# short line per host of ours (noise in cron mail); left alone if configured on purpose.
if logging.getLogger("paramiko").level == logging.NOTSET:
    logging.getLogger("paramiko").setLevel(logging.CRITICAL)

#: Back-off before the second attempt (at most this, jittered down to nothing), doubled for
#: each next one up to :data:`BACKOFF_MAX_S`.
BACKOFF_FIRST_S = 0.25
BACKOFF_MAX_S = 2.0
#: An attempt is not started with less time left than this before the host's deadline.
MIN_ATTEMPT_S = 1.0
#: How long the reader thread of a connection kept open while idle (a resident session, a
#: bastion) waits for data before it looks around (paramiko: 0.1 s).  Each of those wake-ups
#: costs about 0.12 ms of CPU, so at 5 s an idle session cost more between two passes 10 s
#: apart than its pass did.  Nothing waits on them: closing a connection of ours shuts its
#: socket down first, which wakes the thread at once; this bounds only how long a thread
#: could stay on a socket closed some other way.
IDLE_POLL_S = 300.0


@dataclass
class Dialer:
    """What every connection of a pass (``osmon collect``) or of a service (``osmon run``)
    shares: settings, known host keys, loaded client keys, the handshake gate, the bastions."""

    settings: Settings
    host_keys: HostKeyChecker
    credentials: Credentials
    gate: HandshakeGate
    bastions: Bastions

    @property
    def timeout(self) -> float:
        return self.settings.ssh_timeout_s


class Link:
    """The abortable state of one host's connection: what to close, the step it is in.

    The worker registers each thing it opens (socket, transport, channel) with :meth:`hold`;
    :meth:`abort`, from any thread, closes them all in that order, so whatever the worker
    waits on fails at once, and a worker that opens something after the abort closes it
    and stops."""

    def __init__(self, write_guard: WriteGuard = contextlib.nullcontext) -> None:
        self.write_guard = write_guard
        self.step = "waiting"
        self._closers: list[Callable[[], Any]] = []
        self._aborted = False
        self._lock = threading.Lock()
        self._woken = threading.Event()

    @property
    def aborted(self) -> bool:
        return self._aborted

    def hold(self, close: Callable[[], Any]) -> None:
        with self._lock:
            if not self._aborted:
                self._closers.append(close)
                return
        close()
        raise SshFailure(TIMEOUT, "aborted")

    def abort(self) -> None:
        with self._lock:
            self._aborted = True
            closers, self._closers = self._closers, []
        self._woken.set()
        for close in closers:
            with contextlib.suppress(Exception):  # closing a broken connection may complain
                close()

    @contextlib.contextmanager
    def attempt(self) -> Iterator[None]:
        """Around one connection attempt: what it opened is closed if it fails, so a failed
        attempt leaves nothing open while the next one is made."""
        with self._lock:
            mark = len(self._closers)
        try:
            yield
        except BaseException:
            with self._lock:
                failed, self._closers = self._closers[mark:], self._closers[:mark]
            for close in failed:
                with contextlib.suppress(Exception):
                    close()
            raise

    def pause(self, seconds: float) -> None:
        """Sleep between two attempts; an abort ends the sleep and the attempts."""
        if self._woken.wait(seconds) or self._aborted:
            raise SshFailure(TIMEOUT, "aborted")


def open_transport(dialer: Dialer, link: Link, host: Host, deadline: float) -> paramiko.Transport:
    """An authenticated transport to ``host``, tried again on transient failures until
    ``deadline`` (a ``time.monotonic()`` value) leaves too little room."""
    delay = BACKOFF_FIRST_S
    while True:
        try:
            with link.attempt():
                return _attempt(dialer, link, host, deadline)
        except SshFailure as exc:
            wait = random.uniform(0.0, delay)
            if not exc.transient or link.aborted or \
                    deadline - time.monotonic() < wait + MIN_ATTEMPT_S:
                raise
        link.step = "waiting to try again"
        link.pause(wait)
        delay = min(2 * delay, BACKOFF_MAX_S)


def _attempt(dialer: Dialer, link: Link, host: Host, deadline: float) -> paramiko.Transport:
    # The bastion first: its own connection takes its own slot of the gate.
    channel = dialer.bastions.channel(dialer, link, host, deadline) if host.jump else None
    with dialer.gate.slot(deadline):
        return _login(dialer, link, host, channel)


def _login(dialer: Dialer, link: Link, host: Host, channel: Any) -> paramiko.Transport:
    sock: Any = channel if channel is not None else _tcp(link, host, dialer.timeout)
    link.step = "SSH handshake"
    transport = paramiko.Transport(sock)
    if channel is not None:
        channel.reader = transport  # a jump.Tunnel: closed once this transport stops reading
    link.hold(transport.close)
    transport.banner_timeout = transport.handshake_timeout = dialer.timeout
    transport.auth_timeout = dialer.timeout
    known = dialer.host_keys.known_types(known_hosts_name(host.address, host.port))
    if known:  # ask for a key type we can check, as OpenSSH does
        options = transport.get_security_options()
        preferred = [t for t in _algorithms_for(known) if t in options.key_types]
        options.key_types = tuple(preferred) + tuple(
            t for t in options.key_types if t not in preferred)
    done = threading.Event()
    transport.start_client(event=done)
    if not done.wait(dialer.timeout):
        raise SshFailure(TIMEOUT, no_answer("SSH handshake", dialer.timeout))
    if not transport.is_active():
        raise handshake_failure(transport.get_exception(), f"{host.address}:{host.port}")
    link.step = "host key check"
    dialer.host_keys.verify(host, transport.get_remote_server_key(), link.write_guard)
    link.step = "authentication"
    _authenticate(dialer, host, transport)
    return transport


def _tcp(link: Link, host: Host, timeout: float) -> socket.socket:
    where = f"{host.address}:{host.port}"
    link.step = "connect"
    try:
        infos = socket.getaddrinfo(host.address, host.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise SshFailure(UNREACHABLE, f"cannot resolve {host.address}: {exc.strerror}") from None
    failure = SshFailure(UNREACHABLE, f"no address for {host.address}")
    for family, socktype, proto, _name, addr in infos:  # as ssh does: each in turn
        sock = socket.socket(family, socktype, proto)
        link.hold(lambda s=sock: _close(s))
        sock.settimeout(timeout)
        try:
            sock.connect(addr)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        except socket.timeout:
            failure = SshFailure(TIMEOUT, no_answer("connect", timeout))
        except ConnectionRefusedError:
            failure = SshFailure(UNREACHABLE, f"connection refused on {where}")
        except OSError as exc:
            failure = SshFailure(UNREACHABLE, f"cannot connect to {where}: "
                                              f"{exc.strerror or exc}")
        sock.close()
        if link.aborted:
            raise SshFailure(TIMEOUT, "aborted")
    raise failure


def _close(sock: socket.socket) -> None:
    """Shut down first: a thread blocked reading it (paramiko's) wakes up at once."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def _authenticate(dialer: Dialer, host: Host, transport: paramiko.Transport) -> None:
    agent = None
    credentials = dialer.credentials
    if host.identity_file is not None:
        keys = [(str(host.identity_file), credentials.identity(host.identity_file))]
    else:
        keys = []
        if os.environ.get("SSH_AUTH_SOCK"):
            agent = paramiko.Agent()
            keys.extend(("ssh-agent", k) for k in agent.get_keys())
        keys.extend(credentials.default_keys())
    try:
        if not keys:
            raise SshFailure(AUTH, "no key to try: set identity_file for this host (or load a "
                                   "key into ssh-agent)")
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
                    raise SshFailure(TIMEOUT, no_answer("authentication", dialer.timeout)
                                     ) from None
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


def no_answer(step: str, seconds: float) -> str:
    return f"no answer within {seconds:g} s ({step})"


def _algorithms_for(key_types: list[str]) -> list[str]:
    """known_hosts says ``ssh-rsa``; the SSH algorithms for such a key are the rsa-sha2 ones."""
    names: list[str] = []
    for key_type in key_types:
        names.extend(("rsa-sha2-512", "rsa-sha2-256") if key_type == "ssh-rsa" else (key_type,))
    return names


def handshake_failure(exc: BaseException | None, where: str) -> SshFailure:
    """What a failed key exchange means.  paramiko wraps the cause of a banner it could not
    read ("Error reading SSH protocol banner" + the cause's text, often empty) and chains it:
    an end of stream or a reset there is a server dropping us (MaxStartups: transient), a
    timeout a server that accepted the connection and said nothing."""
    text = str(exc) if exc is not None else "negotiation failed"
    cause = exc.__context__ if exc is not None else None
    if isinstance(cause, EOFError) or isinstance(exc, EOFError) or \
            isinstance(cause, ConnectionResetError) or "reset" in text.lower():
        return SshFailure(UNREACHABLE, f"{where} closed the connection before the SSH "
                                       f"handshake (a busy sshd: MaxStartups?)", transient=True)
    banner = "Error reading SSH protocol banner"
    if text.startswith(banner) and (isinstance(cause, socket.timeout)
                                    or text[len(banner):].strip() in ("", "timed out")):
        return SshFailure(TIMEOUT, f"{where} accepted the connection but sent no SSH banner")
    if "EOFError" in text:
        return SshFailure(UNREACHABLE, f"{where} closed the connection during the SSH "
                                       f"handshake (is it an SSH server?)")
    if "timed out" in text or "timeout" in text.lower():
        return SshFailure(TIMEOUT, f"no SSH answer from {where} (SSH handshake)")
    if isinstance(exc, paramiko.IncompatiblePeer) or "Incompatible" in text:
        return SshFailure(UNREACHABLE, f"{where}: no common SSH algorithms ({clean(text)})")
    return SshFailure(UNREACHABLE, f"{where}: SSH handshake failed: {clean(text)}")
