"""``osmon run``'s resident sessions: one SSH connection and one probe per remote Python host,
kept from pass to pass (docs/architecture.md, "Resident sessions").

A session is opened (one login) when a pass first needs it, and opened again when it broke
(its probe or its connection ended), when the host missed its deadline (the coordinator
aborts it, as in a one-shot pass), when the probe file changed, when what the host's session
depends on changed in hosts.toml (address, user, port, key, jump, interpreter, the remote
command), or past ``session_max_age_s`` (spread over the last tenth of it, so sessions opened
together are not all opened again in one pass).  The pool never opens anything by itself:
every login happens in a pass, inside the host's deadline, through the pass's
:class:`~collector.transport.connect.Dialer` (the gate of ``max_handshakes``, the bastions).

Per-process counters: the resident probe keeps its previous reading itself.  A new session's
first request carries the state file's counters (``state/proc-counters``), and the probe is
asked to send its own back every :data:`COUNTERS_EVERY_S`, so that file stays recent enough
for the next session, or for a cron pass should ``osmon run`` stop.

Hosts of the shell probe, and a host whose resident probe could not start, are collected the
one-shot way (one connection per pass); the local host in-process, as always.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from collector.config import Config, Host, Settings
from collector.passes.memory import PassMemory
from collector.passes.probe_call import (
    PYTHON,
    REMOTE_GRACE_S,
    ProbeRun,
    remote_command,
    resident_stdin,
)
from collector.passes.workers import WorkerPool
from collector.store import proc_counters as proc_state
from collector.transport.connect import Dialer
from collector.transport.gate import HandshakeGate
from collector.transport.host_keys import HostKeyChecker
from collector.transport.jump import Bastions
from collector.transport.resident import (
    PendingAnswer,
    ResidentSession,
    ResidentStartFailed,
)
from collector.transport.ssh import CommandResult, Session, SshFailure

log = logging.getLogger(__name__)

#: How often a resident probe sends its process counters back, to be kept in the state file.
COUNTERS_EVERY_S = 300.0
#: A host whose resident probe would not start is collected one-shot this long before the
#: next try (a host without Python keeps the shell probe a day anyway: probe_choice).
RETRY_RESIDENT_S = 3600.0
#: The shortest wait for the next request before a probe ends by itself: a probe whose
#: collector vanished without closing the connection does not stay (its ``idle_s``).
MIN_IDLE_S = 600


class Job(Protocol):
    """What the pass's job of one host offers the pool (passes.one_host.HostJob)."""

    host: Host

    def attach(self, session: Session) -> None: ...

    def writing(self) -> AbstractContextManager[None]: ...


class OneShotInstead(Exception):
    """Collect this host the one-shot way this pass; ``session`` is its connection, when the
    resident probe did not start on it (the one-shot probe then runs on the same login)."""

    def __init__(self, session: Session | None = None) -> None:
        super().__init__("one-shot")
        self.session = session


@dataclass
class _Entry:
    session: ResidentSession
    key: tuple[Any, ...]
    digest: str
    expires: float
    counters_at: float = float("-inf")


class SessionPool:
    """The resident sessions of one ``osmon run``; :meth:`close_all` when it stops."""

    def __init__(self, settings: Settings) -> None:
        self.gate = HandshakeGate(settings.max_handshakes)
        self.bastions = Bastions()
        self.workers = WorkerPool(settings.concurrency)  # the passes' threads, kept too
        self._entries: dict[str, _Entry] = {}
        self._one_shot_until: dict[str, float] = {}
        self.memory = PassMemory()  # what the passes wrote, not read back
        self._lock = threading.Lock()
        self._digest = ""
        self._digested: bytes | None = None  # the probe whose digest _digest is
        self._keys_of: Config | None = None  # the inventory whose session keys _keys holds
        self._keys: dict[str, tuple[Any, ...]] = {}
        self._host_keys: HostKeyChecker | None = None
        self._previous_pass = time.monotonic()

    # -- between passes ------------------------------------------------------------------------
    def begin_pass(self, config: Config, probe: bytes) -> None:
        """Before a pass: close what must be opened again (see the module docstring)."""
        if probe is not self._digested:  # load_probe gives the same bytes while unchanged
            self._digest, self._digested = hashlib.sha256(probe).hexdigest(), probe
        if self.gate.limit != config.settings.max_handshakes:
            self.gate = HandshakeGate(config.settings.max_handshakes)
        self.workers.max_idle = config.settings.concurrency
        hosts = {h.name: h for h in config.enabled_hosts}
        self.memory.begin_pass(config.settings.data_dir, hosts)
        now = time.monotonic()
        closing = []
        with self._lock:
            for name, entry in list(self._entries.items()):
                host = hosts.get(name)
                if host is None or entry.key != self._key(config, host) or \
                        entry.digest != self._digest or now >= entry.expires or \
                        not entry.session.alive():
                    closing.append(self._entries.pop(name).session)
            keep = {e.session.host.jump for e in self._entries.values()}
        for session in closing:
            session.close()
        self.bastions.close_unused({j for j in keep if j is not None}, self._previous_pass)
        self.bastions.new_pass()
        self._previous_pass = now

    def reconfigure(self, config: Config) -> None:
        """A reloaded hosts.toml: the sessions of hosts that are gone or changed end now, the
        others stay open (their next pass needs no login)."""
        hosts = {h.name: h for h in config.enabled_hosts}
        with self._lock:
            ending = [name for name, entry in self._entries.items()
                      if name not in hosts or entry.key != self._key(config, hosts[name])]
            closing = [self._entries.pop(name).session for name in ending]
        for session in closing:
            session.close()
        log.info("hosts.toml reloaded: %d session(s) kept, %d closed", len(self), len(closing))

    def host_keys(self, settings: Settings) -> HostKeyChecker:
        """The pass's host key checker: the last one while its files are unchanged.  Raises
        :class:`SshFailure` as :class:`HostKeyChecker` does, at every pass."""
        checker = self._host_keys
        if checker is None or not checker.still_valid(settings):
            checker = self._host_keys = HostKeyChecker(settings)
        return checker

    def _key(self, config: Config, host: Host) -> tuple[Any, ...]:
        """:func:`session_key`, worked out once per host and inventory (a reloaded hosts.toml
        is a new ``Config``): it builds the remote command, which is most of a pass's own
        bookkeeping per host otherwise."""
        if config is not self._keys_of:
            self._keys_of, self._keys = config, {}
        key = self._keys.get(host.name)
        if key is None:
            key = self._keys[host.name] = session_key(config, host)
        return key

    def close_all(self) -> None:
        """Every probe's input ends (each exits), then every connection closes."""
        with self._lock:
            closing, self._entries = [e.session for e in self._entries.values()], {}
        for session in closing:
            session.close()
        self.bastions.close_all()

    def answered(self, host: str) -> bool:
        """Whether ``host`` has a session whose probe answered already: a Python host."""
        with self._lock:
            entry = self._entries.get(host)
        return entry is not None and entry.session.answered > 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def sessions(self) -> list[ResidentSession]:
        with self._lock:
            return [e.session for e in self._entries.values()]

    # -- in a pass -----------------------------------------------------------------------------
    def takes(self, host: Host, run: ProbeRun) -> bool:
        """Whether ``host`` is collected by a resident session this pass."""
        return (not host.local and run.probe == PYTHON
                and time.monotonic() >= self._one_shot_until.get(host.name, 0.0))

    def ask(self, config: Config, job: Job, dialer: Dialer, host: Host, deadline: float,
            params: dict[str, Any], probe: bytes, state_dir: Path | None) -> CommandResult:
        """The host's answer through its session, opened first if needed.  Raises
        :class:`SshFailure` (the session is closed: the next pass opens another) or
        :class:`OneShotInstead`."""
        settings = config.settings
        with self._lock:
            entry = self._entries.get(host.name)
        now = time.monotonic()
        if entry is None or not entry.session.alive():
            entry = self._open(config, job, dialer, host, deadline, params, probe, state_dir)
        else:
            entry.session.link.write_guard = job.writing
            job.attach(entry.session)
        counters = state_dir is not None and now - entry.counters_at >= COUNTERS_EVERY_S
        try:
            result = entry.session.ask(params, **_limits(settings, params), counters=counters)
        except ResidentStartFailed:
            self._drop(host.name, entry, close=False)
            self._one_shot_until[host.name] = time.monotonic() + RETRY_RESIDENT_S
            log.info("%s: the resident probe did not start; collected one-shot for now",
                     host.name)
            raise OneShotInstead(entry.session) from None
        except SshFailure:
            self._drop(host.name, entry)
            raise
        if counters:
            entry.counters_at = now
        return result

    def send(self, config: Config, job: Job, params: dict[str, Any],
             wake: Callable[[], None]) -> Waiting | None:
        """Send the host of ``job`` its request through its session, when it has one whose
        probe answered before, and return at once (the coordinator reads the answer:
        :meth:`settle` when it is read).  None: no such session, or it broke before the
        request (the host is then collected on a new session, in this pass still).  Raises
        :class:`SshFailure` (the session is closed) when the request cannot be sent, or the
        probe wrote something since its last answer: that pass is the host's failure."""
        host = job.host
        with self._lock:
            entry = self._entries.get(host.name)
        if entry is None or entry.session.answered == 0 or not entry.session.alive():
            return None
        entry.session.link.write_guard = job.writing
        job.attach(entry.session)
        now = time.monotonic()
        counters = now - entry.counters_at >= COUNTERS_EVERY_S
        try:
            pending = entry.session.send(params, **_limits(config.settings, params),
                                         counters=counters, wake=wake)
        except SshFailure:
            self._drop(host.name, entry)
            raise
        return Waiting(host.name, entry, pending, now if counters else None)

    def settle(self, waiting: Waiting, ok: bool) -> None:
        """The answer of :meth:`send` was read (``ok``), or failed: its session ends."""
        if not ok:
            self._drop(waiting.host, waiting.entry)
        elif waiting.counters_at is not None:
            waiting.entry.counters_at = waiting.counters_at

    def _open(self, config: Config, job: Job, dialer: Dialer, host: Host, deadline: float,
              params: dict[str, Any], probe: bytes, state_dir: Path | None) -> _Entry:
        with self._lock:
            old = self._entries.pop(host.name, None)
        if old is not None:
            old.session.close()
        session = ResidentSession(host, dialer, job.writing, deadline)
        job.attach(session)
        if state_dir is not None:  # the last counters kept, for per-process CPU at once
            params["proc_prev"] = proc_state.load(state_dir, host.name, time.time())
        try:
            session.start(remote_command(config, host), resident_stdin(probe))
        except SshFailure:
            session.abort()
            raise
        max_age = config.settings.session_max_age_s
        entry = _Entry(session, self._key(config, host), self._digest,
                       session.opened_at + max_age * random.uniform(0.9, 1.0))
        with self._lock:
            self._entries[host.name] = entry
        return entry

    def forget(self, host: Host) -> None:
        """The answer of ``host``'s session was unusable (not JSON, the wrong shape): the
        session ends, and the next pass opens another."""
        with self._lock:
            entry = self._entries.get(host.name)
        if entry is not None:
            self._drop(host.name, entry)

    def _drop(self, name: str, entry: _Entry, close: bool = True) -> None:
        with self._lock:
            if self._entries.get(name) is entry:  # not a newer session of a later pass
                del self._entries[name]
        if close:
            entry.session.abort()


@dataclass
class Waiting:
    """A request sent by :meth:`SessionPool.send` whose answer is being read."""

    host: str
    entry: _Entry
    pending: PendingAnswer
    counters_at: float | None  # it asked for the probe's counters, at this time


def _limits(settings: Settings, params: dict[str, Any]) -> dict[str, float]:
    """A request's budget, and the limits the probe enforces on itself."""
    budget = settings.ssh_timeout_s + params.get("checks_budget_s", 0.0)
    return {"budget_s": budget, "limit_s": budget + REMOTE_GRACE_S,
            "idle_s": max(MIN_IDLE_S, 10 * settings.interval_s)}


def session_key(config: Config, host: Host) -> tuple[Any, ...]:
    """What a host's session depends on: a change means a new session (a new login)."""
    return (host.address, host.port, host.user, host.identity_file, host.jump, host.python,
            remote_command(config, host), config.settings.ssh_timeout_s)

