"""A resident session of ``osmon run``: one SSH connection and one probe process on a host,
asked once per pass (docs/architecture.md, "Resident sessions").

The session is started with the host's usual remote command (one fixed string per host, the
same as cron's) fed ``resident``, the probe's length and source
(``probe_call.resident_stdin``); each pass then writes one request line and reads one frame,
``osmon <id> <length>\\n`` and that many bytes of JSON.  Everything read is bounded: a header
longer than :data:`HEADER_MAX` bytes, a length over ``MAX_STDOUT``, an answer to another
request, output between two requests or a megabyte of stderr is ``invalid-output``, and the
caller closes the session (the next pass opens a new one).  A session whose probe never
answered at all (no usable Python there) raises :class:`ResidentStartFailed`, and the pass
falls back to the one-shot probe on the same connection.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import time
from collections.abc import Callable
from typing import Any

import paramiko

from collector.transport.connect import IDLE_POLL_S, no_answer
from collector.transport.failures import (
    INVALID_OUTPUT,
    PROBE,
    TIMEOUT,
    UNREACHABLE,
    SshFailure,
)
from collector.transport.host_text import first_line
from collector.transport.ssh import (
    MAX_STDERR,
    MAX_STDERR_KEPT,
    MAX_STDOUT,
    CommandResult,
    Session,
)

#: The longest frame header: "osmon", a request id and a length.
HEADER_MAX = 64
_CHUNK = 256 * 1024


class ResidentStartFailed(Exception):
    """The resident probe ended before its first answer: its output so far, for the one-shot
    fallback to judge (a missing or too old Python is the shell probe's case)."""

    def __init__(self, stderr: bytes, exit_status: int) -> None:
        super().__init__("the resident probe did not start")
        self.stderr, self.exit_status = stderr, exit_status


class ResidentSession(Session):
    """A :class:`~collector.transport.ssh.Session` kept open across passes, with its probe."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.opened_at = 0.0
        self.answered = 0
        self._channel: paramiko.Channel | None = None
        self._next_id = 1

    def start(self, command: str, stdin: bytes) -> None:
        """Connect and start the probe (the first request may follow at once)."""
        transport = self.connect()
        transport.sock.settimeout(IDLE_POLL_S)  # not paramiko's 0.1 s: see IDLE_POLL_S
        self.link.step = "starting the probe"
        try:
            channel = transport.open_session(timeout=self.timeout)
            channel.settimeout(self.timeout)
            channel.exec_command(command)
            channel.sendall(stdin)
        except socket.timeout:
            raise SshFailure(TIMEOUT, no_answer("starting the probe", self.timeout)) from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise SshFailure(UNREACHABLE, f"could not start the probe: {exc}") from None
        self._channel = channel
        self.opened_at = time.monotonic()

    def alive(self) -> bool:
        """Whether the session can take a request: connected, its probe still running."""
        channel = self._channel
        return (channel is not None and not self.link.aborted and not channel.closed
                and not channel.eof_received and not channel.exit_status_ready()
                and self._transport is not None and self._transport.is_active())

    def close(self) -> None:
        """End the probe's input (it exits, ending its checks), then the connection."""
        channel = self._channel
        if channel is not None and not channel.closed:
            # Already gone: closing the connection is all there is to do.
            with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
                channel.shutdown_write()
        self.abort()

    def ask(self, params: dict[str, Any], *, limit_s: float, idle_s: float, counters: bool,
            budget_s: float) -> CommandResult:
        """One request and its answer within ``budget_s``; the answer's JSON is the result's
        stdout.  Raises :class:`SshFailure` (the caller then closes the session) or
        :class:`ResidentStartFailed`."""
        frame = self._request(params, limit_s, idle_s, counters, budget_s)
        poller = select.poll()  # not select(): it fails on descriptors above 1023
        poller.register(frame.channel.fileno(), select.POLLIN)
        while True:
            result = frame.step()
            if result is not None:
                return result
            poller.poll(max(0.0, frame.deadline - time.monotonic()) * 1000)

    def send(self, params: dict[str, Any], *, limit_s: float, idle_s: float, counters: bool,
             budget_s: float, wake: Callable[[], None]) -> PendingAnswer:
        """Send one request and return at once: ``wake()`` is called (from paramiko's reader
        thread) whenever more of the answer may be there, and :meth:`PendingAnswer.step`
        reads it.  So one thread can wait for the answers of every session of a pass.
        Raises :class:`SshFailure` when the request cannot be sent."""
        frame = self._request(params, limit_s, idle_s, counters, budget_s)
        return PendingAnswer(frame, wake)

    def _request(self, params: dict[str, Any], limit_s: float, idle_s: float, counters: bool,
                 budget_s: float) -> _Frame:
        channel = self._channel
        assert channel is not None, "start() first"
        self.link.step = "resident request"
        deadline = time.monotonic() + budget_s
        if channel.recv_ready():
            raise SshFailure(INVALID_OUTPUT, "the probe wrote output between two requests")
        request_id, self._next_id = self._next_id, self._next_id + 1
        line = json.dumps({"id": request_id, "params": params, "limit_s": limit_s,
                           "idle_s": idle_s, "counters": counters},
                          separators=(",", ":"), allow_nan=False).encode("ascii") + b"\n"
        try:
            channel.sendall(line)
        except socket.timeout:
            raise SshFailure(TIMEOUT, no_answer("sending the request", budget_s)) from None
        except OSError:
            pass  # the probe is gone: reading says how
        return _Frame(self, request_id, deadline, budget_s)

    def _answered(self, frame: _Frame, body: bytes) -> CommandResult:
        self.answered += 1
        return CommandResult(body, frame.stderr(), 0, self.connect_s if self.answered == 1
                             else 0.0, frame.epoch)


class PendingAnswer:
    """The answer to a request sent by :meth:`ResidentSession.send`, read as it arrives.

    paramiko sets an event on a channel's buffers when data comes in or the channel closes
    (the pipe behind ``Channel.fileno()`` is such an event); this stands in for it, calling
    ``wake`` besides setting the original, until :meth:`step` has the whole answer or fails.
    """

    def __init__(self, frame: _Frame, wake: Callable[[], None]) -> None:
        self.frame = frame
        self._hooks = [_WakeHook(buffer, wake) for buffer in
                       (frame.channel.in_buffer, frame.channel.in_stderr_buffer)]

    @property
    def deadline(self) -> float:
        return self.frame.deadline

    def step(self) -> CommandResult | None:
        """The result once the whole answer is there, else None (wait for the next wake-up).
        Raises :class:`SshFailure` as :meth:`ResidentSession.ask` does (the budget included:
        past ``deadline`` it is a timeout)."""
        try:
            result = self.frame.step()
        except BaseException:
            self.release()
            raise
        if result is not None:
            self.release()
        return result

    def release(self) -> None:
        """Hand the buffers their own events back."""
        for hook in self._hooks:
            hook.remove()
        self._hooks = []


class _WakeHook:
    """Set on a paramiko ``BufferedPipe`` in place of its event (``set_event``): sets the
    event it replaced, if any, and calls ``wake``."""

    def __init__(self, buffer: Any, wake: Callable[[], None]) -> None:
        self.buffer, self.wake = buffer, wake
        self.inner = getattr(buffer, "_event", None)  # the fileno() pipe's, once made
        buffer.set_event(self)

    def set(self) -> None:
        if self.inner is not None:
            self.inner.set()
        self.wake()

    def clear(self) -> None:
        if self.inner is not None:
            self.inner.clear()

    def remove(self) -> None:
        if self.inner is not None:
            self.buffer.set_event(self.inner)
        else:
            with self.buffer._lock:  # no public way to unset it; set_event takes this lock
                self.buffer._event = None


def _frame_length(header: bytes, request_id: int) -> int:
    parts = header.split(b" ")
    if len(parts) != 3 or parts[0] != b"osmon" or not parts[1].isdigit() or \
            not parts[2].isdigit():
        raise SshFailure(INVALID_OUTPUT, "not an answer of the probe (no frame header)")
    if int(parts[1]) != request_id:
        raise SshFailure(INVALID_OUTPUT, f"an answer to request {int(parts[1])}, not to "
                                         f"{request_id}")
    length = int(parts[2])
    if length > MAX_STDOUT:
        raise SshFailure(INVALID_OUTPUT, f"an answer of {length >> 20} MiB, over the "
                                         f"{MAX_STDOUT >> 20} MiB an answer may hold")
    return length


class _Frame:
    """One answer frame as it arrives on the channel: bounded, within its deadline, stderr
    drained beside it (the two share the channel's window).  :meth:`step` never waits."""

    def __init__(self, session: ResidentSession, request_id: int, deadline: float,
                 budget_s: float) -> None:
        self.session, self.request_id = session, request_id
        self.channel: paramiko.Channel = session._channel  # type: ignore[assignment]
        self.deadline, self.budget_s = deadline, budget_s
        self.first = session.answered == 0
        self.data = b""
        self.got_any = False
        self.epoch = 0.0  # when the header's first byte arrived
        self.length: int | None = None  # of the body, once the header is read
        self._err: list[bytes] = []
        self._err_size = 0

    def step(self) -> CommandResult | None:
        """Read what is there; the result once the frame is whole, else None.  Raises
        :class:`SshFailure` (or :class:`ResidentStartFailed`) as ``ask`` does."""
        self._drain()
        if self.length is None:
            newline = self.data.find(b"\n", 0, HEADER_MAX + 1)
            if newline < 0:
                if len(self.data) > HEADER_MAX:
                    raise SshFailure(INVALID_OUTPUT, "not an answer of the probe (no frame "
                                                     "header)")
                return self._waiting()
            self.length = _frame_length(self.data[:newline], self.request_id)
            self.data = self.data[newline + 1:]
            self._drain()  # the body may be there already: no wake-up would say so again
        if len(self.data) > self.length:
            raise SshFailure(INVALID_OUTPUT, "more output than the answer's length")
        if len(self.data) == self.length:
            return self.session._answered(self, self.data)
        return self._waiting()

    def stderr(self) -> bytes:
        return b"".join(self._err)

    def _waiting(self) -> None:
        channel = self.channel
        if channel.closed or (channel.eof_received and not channel.recv_ready()
                              and not channel.recv_stderr_ready()):
            raise self._ended()
        if time.monotonic() >= self.deadline:
            raise SshFailure(TIMEOUT, no_answer("resident request", self.budget_s))
        return None

    def _drain(self) -> None:
        """Take what the channel holds, stderr first, stopping as soon as too much came."""
        channel = self.channel
        while channel.recv_stderr_ready():
            chunk = channel.recv_stderr(_CHUNK)
            if self._err_size < MAX_STDERR_KEPT:
                self._err.append(chunk)
            self._err_size += len(chunk)
            if self._err_size > MAX_STDERR:
                raise SshFailure(INVALID_OUTPUT, "more than 1 MiB on stderr")
        limit = HEADER_MAX + 1 if self.length is None else self.length + 1
        while len(self.data) < limit and channel.recv_ready():
            chunk = channel.recv(min(_CHUNK, limit - len(self.data)))
            if not chunk:
                break
            if not self.got_any:
                self.got_any, self.epoch = True, time.time()
            self.data += chunk
            if self.length is None and b"\n" in self.data:
                return  # the header first: it says how much more may come

    def _ended(self) -> Exception:
        channel = self.channel
        if not channel.eof_received:
            return SshFailure(UNREACHABLE, "connection lost during the request")
        status = channel.exit_status if channel.status_event.wait(0.5) else -1
        if self.first and not self.got_any:
            return ResidentStartFailed(self.stderr(), status)
        line = first_line(self.stderr())
        how = "without an exit status (killed by a signal?)" if status == -1 else \
            f"with exit status {status}"
        message = f"the resident probe ended {how}"
        return SshFailure(PROBE, f"{message}: {line}" if line else message)
