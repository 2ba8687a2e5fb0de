"""Jump hosts: one SSH connection to a bastion carries every host behind it.

A host with a ``jump`` (hosts.toml) or a ``ProxyJump`` (~/.ssh/config) is reached through a
``direct-tcpip`` channel of its bastion's connection, as ``ssh -J`` does; its own key exchange,
host key check and login then run inside that channel, end to end.  Both host keys are
checked: the bastion's under its own address, the host's under its own (as OpenSSH does).

The connection to a bastion is opened by the first host that needs it and shared: fifty hosts
behind one bastion cost it one login, not fifty.  A bastion that cannot be reached is tried
once per pass; every host behind it is then reported ``unreachable``, naming the bastion.
"""

from __future__ import annotations

import contextlib
import threading
import time

import paramiko

from collector.config import Host, Jump
from collector.transport.connect import IDLE_POLL_S, Dialer, Link, no_answer, open_transport
from collector.transport.failures import TIMEOUT, UNREACHABLE, SshFailure
from collector.transport.host_text import clean


class Bastions:
    """The bastion connections of a pass (``osmon collect``) or of a service (``osmon run``)."""

    def __init__(self) -> None:
        self._entries: dict[Jump, _Bastion] = {}
        self._lock = threading.Lock()
        self._generation = 0

    def new_pass(self) -> None:
        """A bastion that failed is tried again from the next pass on."""
        with self._lock:
            self._generation += 1

    def channel(self, dialer: Dialer, link: Link, host: Host, deadline: float) -> Tunnel:
        """A ``direct-tcpip`` channel to ``host`` through its bastion, held by ``link``."""
        jump = host.jump
        assert jump is not None
        with self._lock:
            entry = self._entries.setdefault(jump, _Bastion(jump))
            generation = self._generation
        link.step = f"connect to the bastion {jump.label}"
        transport = entry.transport(dialer, link, deadline, generation)
        link.step = f"connect through the bastion {jump.label}"
        where = f"{host.address}:{host.port}"
        try:
            channel = transport.open_channel("direct-tcpip", (host.address, host.port),
                                             ("127.0.0.1", 0), timeout=dialer.timeout)
        except paramiko.ChannelException as exc:  # the bastion could not, or may not
            raise SshFailure(UNREACHABLE, f"the bastion {jump.label} could not connect to "
                                          f"{where}: {clean(exc.text)}") from None
        except paramiko.SSHException as exc:
            if "Timeout" in str(exc):
                raise SshFailure(TIMEOUT, f"the bastion {jump.label}: " + no_answer(
                    f"connect to {where}", dialer.timeout)) from None
            raise SshFailure(UNREACHABLE, f"the bastion {jump.label} closed the connection "
                                          f"({clean(str(exc))})") from None
        except (OSError, EOFError):
            raise SshFailure(UNREACHABLE, f"the connection to the bastion {jump.label} was "
                                          "lost") from None
        tunnel = Tunnel(channel)
        link.hold(tunnel.close)
        entry.last_used = time.monotonic()
        return tunnel

    def close_unused(self, keep: set[Jump], used_before: float) -> None:
        """Close the connections no host in ``keep`` needs and none used since
        ``used_before`` (a ``time.monotonic()`` value)."""
        with self._lock:
            idle = [j for j, e in self._entries.items()
                    if j not in keep and e.last_used < used_before]
            closing = [self._entries.pop(j) for j in idle]
        for entry in closing:
            entry.close()

    def close_all(self) -> None:
        with self._lock:
            closing, self._entries = list(self._entries.values()), {}
        for entry in closing:
            entry.close()


#: How long a tunnel whose transport is still reading stays open after it was closed: the
#: transport's reader closes it itself on its way out, within its poll of 0.1 s.
TUNNEL_GRACE_S = 0.5


class Tunnel:
    """A ``direct-tcpip`` channel as the socket of the host's own transport (``reader``).

    Why not the channel itself: paramiko closes a transport's socket at once when the
    transport is closed, while the transport's reader thread may be sending a message it
    has just built (its reply to the server's close of the probe's channel, a window
    adjustment).  That message then follows our close of the channel, and OpenSSH answers
    "data packet referred to nonexistent channel" by dropping the bastion's whole
    connection, and with it every host behind it, in the middle of their probes (seen in
    one pass in ten).  So a tunnel closed while its reader runs is closed by that reader
    when it ends (paramiko closes the socket last thing), or after :data:`TUNNEL_GRACE_S`
    should the reader still wait in a long read (a resident session's)."""

    def __init__(self, channel: paramiko.Channel) -> None:
        self.channel = channel
        self.reader: threading.Thread | None = None
        self._closing = False

    def send(self, data: bytes) -> int:
        return self.channel.send(data)

    def recv(self, size: int) -> bytes:
        return self.channel.recv(size)

    def settimeout(self, timeout: float | None) -> None:
        self.channel.settimeout(timeout)

    @property
    def _closed(self) -> bool:  # read by paramiko.Transport.stop_thread, as a socket's
        return bool(self.channel.closed)

    def close(self) -> None:
        reader = self.reader
        if reader is None or reader is threading.current_thread() or not reader.is_alive():
            self._close_channel()
        elif not self._closing:
            self._closing = True
            timer = threading.Timer(TUNNEL_GRACE_S, self._close_channel)
            timer.daemon = True
            timer.start()

    def _close_channel(self) -> None:
        with contextlib.suppress(Exception):  # the bastion's connection may be gone already
            self.channel.close()


class _Bastion:
    """One bastion's shared connection, opened by the first host that needs it."""

    def __init__(self, jump: Jump) -> None:
        self.jump = jump
        self.last_used = time.monotonic()
        self._lock = threading.Lock()
        self._transport: paramiko.Transport | None = None
        self._link: Link | None = None
        self._failure: SshFailure | None = None
        self._failed_in = -1

    def transport(self, dialer: Dialer, link: Link, deadline: float,
                  generation: int) -> paramiko.Transport:
        label = self.jump.label
        if not self._lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise SshFailure(TIMEOUT, f"the bastion {label}: still connecting at the deadline")
        try:
            if self._transport is not None and self._transport.is_active():
                return self._transport
            if self._failure is not None and self._failed_in == generation:
                raise self._failure.again()
            own = Link(link.write_guard)  # its own: a host that gives up must not close it
            try:
                self._transport = open_transport(dialer, own, bastion_host(self.jump), deadline)
                self._transport.sock.settimeout(IDLE_POLL_S)  # as a resident session's
            except SshFailure as exc:
                own.abort()
                kind = UNREACHABLE if exc.kind in (UNREACHABLE, TIMEOUT) else exc.kind
                self._failure = SshFailure(kind, f"through the bastion {label}: {exc.message}")
                self._failed_in = generation
                raise self._failure.again() from None
            if self._link is not None:
                self._link.abort()  # the previous, broken connection
            self._link, self._failure = own, None
            return self._transport
        finally:
            self._lock.release()

    def close(self) -> None:
        if self._link is not None:
            self._link.abort()


def bastion_host(jump: Jump) -> Host:
    """The bastion as a host to log in to (its name only appears in messages)."""
    return Host(name=jump.label, address=jump.address, user=jump.user, port=jump.port,
                identity_file=jump.identity_file)
