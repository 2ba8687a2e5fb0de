"""One host of a pass: what a worker thread does, and what the coordinator may do to it.

A worker gathers and builds its host's sample (over SSH, or in-process for the central
host) and hands it to the coordinator; it never decides the host's outcome.  The coordinator
may abandon a job at the host's (or the pass's) deadline: it then closes the host's socket
from its own thread, and the worker's writes (process counters, an accepted host key, the
probe choice) are refused from then on (:meth:`HostJob.writing`), since the pass may have
released the data lock by the time a hung worker wakes up.

In ``osmon run`` a remote Python host is asked through its resident session
(:mod:`collector.passes.sessions`); everywhere else, and when that session cannot serve, the
host gets a connection of its own for this pass (one-shot, as cron's passes).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collector import SCHEMA_VERSION
from collector.config import Config, Host
from collector.metrics import disk_trend
from collector.metrics.families.checks import derive_checks
from collector.metrics.gate import InvalidProbeOutput, validate_probe_output
from collector.metrics.rates import derive_sample
from collector.passes.memory import UNKNOWN
from collector.passes.probe_call import (
    ProbeRun,
    decode_answer,
    load_probe,
    previous_epoch,
    probe_params,
)
from collector.passes.sessions import OneShotInstead, SessionPool, Waiting
from collector.passes.sh_probe import load_sh_probe
from collector.store import disk_trend as trend_store
from collector.store import proc_counters as proc_state
from collector.store.samples import MAX_LINE_BYTES, Store, encode_line
from collector.transport import ssh
from collector.transport.gate import HandshakeGate
from collector.transport.jump import Bastions

log = logging.getLogger("collector.passes.collect")  # one log for the whole pass


class PassContext:
    """What every worker of one pass shares: read once, not once per host.

    ``sessions``: ``osmon run``'s resident sessions; their handshake gate and bastions serve
    the pass's one-shot connections too (else the pass has a gate and bastions of its own)."""

    def __init__(self, config: Config, ts: str, store: Store | None, remote: bool,
                 sessions: SessionPool | None = None) -> None:
        self.config = config
        self.ts = ts
        self.store = store
        self.sessions = sessions
        self.probe = load_probe() if remote else b""
        self.sh_probe = load_sh_probe() if remote else b""
        self.host_keys_failure: ssh.SshFailure | None = None
        host_keys = None
        if remote:
            try:
                host_keys = ssh.HostKeyChecker(config.settings) if sessions is None else \
                    sessions.host_keys(config.settings)
            except ssh.SshFailure as exc:
                self.host_keys_failure = exc
        #: osmon run's memory of what it stored (passes/memory.py); None in a pass of its own
        self.memory = sessions.memory if sessions is not None else None
        if sessions is not None:
            sessions.begin_pass(config, self.probe)
        # (not "if sessions": a pool without sessions yet, on the first pass, is falsy)
        gate = sessions.gate if sessions is not None else \
            HandshakeGate(config.settings.max_handshakes)
        self.dialer = ssh.Dialer(
            config.settings, host_keys, ssh.Credentials(),  # type: ignore[arg-type]
            gate, sessions.bastions if sessions is not None else Bastions())


class Abandoned(Exception):
    """The coordinator gave up on this host: its worker must not write anything any more."""


class HostJob:
    """One host being collected; the coordinator may abandon it, closing its connection.

    Once abandoned, a job's worker may still run for a while (the local host cannot be
    interrupted, a remote one may be between two steps), but the pass may already have
    released the data lock, and a backup or restore may hold it.  So every write a worker
    makes goes through :meth:`writing`, which refuses once the job is abandoned; and
    :meth:`abandon` waits for a write in progress, so none straddles the lock's release.
    """

    def __init__(self, host: Host, started: float) -> None:
        self.host = host
        self.started = started
        self._session: ssh.Session | None = None
        self._abandoned = False
        self._lock = threading.Lock()

    @property
    def step(self) -> str:
        if self._session is not None:
            return self._session.step
        return "local collection" if self.host.local else "start"

    def attach(self, session: ssh.Session) -> None:
        with self._lock:
            self._session = session
            abandoned = self._abandoned
        if abandoned:
            session.abort()

    def abandon(self) -> str:
        """Stop waiting for this host; return the step it was stuck in, for the message."""
        step = self.step
        with self._lock:  # waits for a write in progress (see writing())
            self._abandoned = True
            session = self._session
        if session is not None:
            session.abort()
        return step

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """``with job.writing():`` around a worker's write; raises :class:`Abandoned` once
        the coordinator has given up on the host."""
        with self._lock:
            if self._abandoned:
                raise Abandoned(self.host.name)
            yield


@dataclass(frozen=True)
class Answer:
    """What a worker hands the coordinator: the sample, its line, the disk trend to keep."""

    sample: dict[str, Any]
    line: bytes | None
    disk_trend: dict[str, Any] | None = None


def work(ctx: PassContext, job: HostJob, answers: queue.SimpleQueue[Any]) -> None:
    trend = None
    try:
        sample, trend = _collect(ctx, job)
    except Abandoned:
        return  # the coordinator recorded this host's timeout already
    except Exception as exc:  # a bug of ours must cost one host, not the pass
        log.exception("collecting %s failed unexpectedly", job.host.name)
        sample = failure_sample(ctx.ts, job.host, ssh.PROBE, f"collector error: {exc!r}"[:300],
                                time.monotonic() - job.started)
    answers.put((job, _answer(job, sample, trend)))


def _answer(job: HostJob, sample: dict[str, Any], trend: dict[str, Any] | None) -> Answer:
    # Encoded here, once: the size is judged before the alerts see the sample, and the line is
    # what the coordinator appends.
    line, unstorable = _as_line(sample)
    if unstorable is not None:
        sample, trend = failure_sample(sample["ts"], job.host, ssh.INVALID_OUTPUT, unstorable,
                                       time.monotonic() - job.started), None
    return Answer(sample, line, trend)


def _as_line(sample: dict[str, Any]) -> tuple[bytes | None, str | None]:
    """``sample``'s log line, or None and why it cannot be one (the line of a failure)."""
    try:
        line = encode_line(sample)
    except ValueError as exc:  # a string the validation let through that UTF-8 cannot hold
        return None, f"a sample that cannot be stored ({type(exc).__name__})"
    if len(line) > MAX_LINE_BYTES:
        return None, (f"a sample of {len(line) >> 10} KiB, over the {MAX_LINE_BYTES >> 10} KiB "
                      "a line may hold")
    return line, None


# -- one host ----------------------------------------------------------------------------------
@dataclass
class _Plan:
    """What a host is asked this pass, and what its answer is judged against."""

    started: float
    previous: dict[str, Any] | None
    state_dir: Path | None  # None: osmon check, which keeps nothing
    params: dict[str, Any]
    run: ProbeRun
    settled: bool  # its resident probe answered before: a Python host, its choice settled


def _plan(ctx: PassContext, job: HostJob) -> _Plan:
    host = job.host
    started = time.monotonic()
    # osmon run remembers what it stored last: no reading back, parsing and checking again.
    previous = (ctx.memory and ctx.memory.sample(host.name)) or (
        ctx.store.latest(host.name) if ctx.store is not None else None)
    state_dir = ctx.config.state_dir if ctx.store is not None else None
    params = probe_params(ctx.config, host, previous)
    settled = ctx.sessions is not None and ctx.sessions.answered(host.name)
    return _Plan(started, previous, state_dir, params,
                 ProbeRun(ctx.config, host, state_dir, python_known=settled), settled)


def _collect(ctx: PassContext, job: HostJob) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The host's sample, and its disk trend to keep (None: unchanged, or not kept)."""
    host = job.host
    plan = _plan(ctx, job)
    params, state_dir = plan.params, plan.state_dir
    if host.local:
        if state_dir is not None:
            params["proc_prev"] = proc_state.load(state_dir, host.name, time.time())
        try:
            raw, epoch = _run_local(params)
        except ssh.SshFailure as exc:
            return _failed(ctx, job, plan, exc), None
        return _judged(ctx, job, plan, raw, epoch, 0.0, resident=False)
    try:
        result, resident = _remote(ctx, job, plan.run, params, state_dir)
    except ssh.SshFailure as exc:
        return _failed(ctx, job, plan, exc), None
    return _answered(ctx, job, plan, result, resident)


def _answered(ctx: PassContext, job: HostJob, plan: _Plan, result: ssh.CommandResult,
              resident: bool) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The sample of a remote host's answer (decoded, checked, its rates derived)."""
    try:
        raw = decode_answer(job.host, result, plan.run.probe)
    except ssh.SshFailure as exc:
        return _failed(ctx, job, plan, exc, result.connect_s, unusable=resident), None
    return _judged(ctx, job, plan, raw, result.reading_epoch, result.connect_s, resident)


def _judged(ctx: PassContext, job: HostJob, plan: _Plan, raw: dict[str, Any], epoch: float,
            connect_s: float, resident: bool) -> tuple[dict[str, Any], dict[str, Any] | None]:
    host, state_dir = job.host, plan.state_dir
    counters = proc_state.take_counters(raw)  # for the next pass, never for the log
    try:
        derived = _derive(raw, plan.previous, epoch, plan.params["checks"])
    except ssh.SshFailure as exc:
        return _failed(ctx, job, plan, exc, connect_s, unusable=resident), None
    if not (resident and plan.settled):
        plan.run.keep_choice(job.writing)
    sample: dict[str, Any] = {
        "v": SCHEMA_VERSION, "ts": ctx.ts, "host": host.name, "ok": True, "error": None,
        "collect": {"transport": _transport(host), "probe": plan.run.probe,
                    "duration_s": _r(time.monotonic() - plan.started),
                    "connect_s": _r(connect_s or 0.0), "epoch": round(epoch, 3)},
    }
    if resident:
        sample["collect"]["resident"] = True
    for key, value in derived.items():
        sample.setdefault(key, value)
    if state_dir is not None and counters is not None:
        _keep_counters(job, state_dir, counters, epoch)
    trend = None
    if state_dir is not None and isinstance(sample.get("disks"), list):
        kept = ctx.memory.trend(host.name) if ctx.memory is not None else UNKNOWN
        if kept is UNKNOWN:
            kept = trend_store.load(state_dir, host.name)
            if ctx.memory is not None:
                ctx.memory.keep_trend(host.name, kept)
        sample["disks"], trend = disk_trend.update(kept, sample["disks"], epoch, host.name)
    return sample, trend


class InlineJob:
    """A host asked through its resident session whose answer the pass's coordinator reads
    itself as it arrives (no worker thread waits for it: handing each answer from paramiko's
    reader thread to a worker, then to the coordinator, cost more CPU than reading it)."""

    def __init__(self, ctx: PassContext, job: HostJob, plan: _Plan,
                 waiting: Waiting | ssh.SshFailure) -> None:
        """``waiting``: the request sent, or why it could not be (the host's failure)."""
        self.ctx, self.job, self.plan, self.waiting = ctx, job, plan, waiting

    @property
    def deadline(self) -> float:
        """When its request's own budget runs out (before the host's deadline)."""
        if isinstance(self.waiting, ssh.SshFailure):
            return self.job.started
        return self.waiting.pending.deadline

    def step(self) -> Answer | None:
        """The host's answer once its whole frame is there (or its failure), else None."""
        ctx, job, waiting = self.ctx, self.job, self.waiting
        if isinstance(waiting, ssh.SshFailure):
            return _answer(job, _failed(ctx, job, self.plan, waiting), None)
        assert ctx.sessions is not None
        try:
            try:
                result = waiting.pending.step()
            except ssh.SshFailure as exc:
                ctx.sessions.settle(waiting, ok=False)
                return _answer(job, _failed(ctx, job, self.plan, exc), None)
            if result is None:
                return None
            ctx.sessions.settle(waiting, ok=True)
            sample, trend = _answered(ctx, job, self.plan, result, resident=True)
        except Abandoned:
            return None  # the coordinator recorded this host's timeout already
        except Exception as exc:  # a bug of ours must cost one host, not the pass
            log.exception("collecting %s failed unexpectedly", job.host.name)
            waiting.pending.release()
            sample, trend = failure_sample(ctx.ts, job.host, ssh.PROBE,
                                           f"collector error: {exc!r}"[:300],
                                           time.monotonic() - self.plan.started), None
        return _answer(job, sample, trend)


def ask_inline(ctx: PassContext, job: HostJob, wake: Callable[[], None]) -> InlineJob | None:
    """Send ``job``'s host its request through its resident session, if it has one that
    answered before; None: collect it in a worker (a session to open, one-shot, local)."""
    if ctx.sessions is None or job.host.local or ctx.host_keys_failure is not None \
            or not ctx.sessions.answered(job.host.name):
        return None  # planned by its worker, not here too
    plan = _plan(ctx, job)
    if not ctx.sessions.takes(job.host, plan.run):
        return None
    try:
        waiting = ctx.sessions.send(ctx.config, job, plan.params, wake)
    except ssh.SshFailure as exc:
        wake()  # nothing to wait for: its failure is this pass's answer
        return InlineJob(ctx, job, plan, exc)
    return None if waiting is None else InlineJob(ctx, job, plan, waiting)


def _failed(ctx: PassContext, job: HostJob, plan: _Plan, exc: ssh.SshFailure,
            connect_s: float | None = None, *, unusable: bool = False) -> dict[str, Any]:
    """The failure line of ``job``'s host; ``unusable``: its resident session's answer cannot
    be used, so that session ends (the next pass opens another)."""
    if unusable and ctx.sessions is not None:
        ctx.sessions.forget(job.host)
    return failure_sample(ctx.ts, job.host, exc.kind, exc.message,
                          time.monotonic() - plan.started, connect_s, plan.run.probe)


def _keep_counters(job: HostJob, state_dir: Path, counters: dict[str, Any], epoch: float) -> None:
    """Save the process counters for the next pass; failing costs interval percentages only,
    and a host the pass gave up on keeps none (the lock may be another process's by now)."""
    try:
        with job.writing():
            proc_state.save(state_dir, job.host.name, counters, epoch)
    except Abandoned:
        log.debug("%s: abandoned; its process counters are dropped", job.host.name)
    except (OSError, ValueError) as exc:
        log.error("cannot keep the process counters of %s: %s", job.host.name, exc)


def _remote(ctx: PassContext, job: HostJob, run: ProbeRun, params: dict[str, Any],
            state_dir: Path | None) -> tuple[ssh.CommandResult, bool]:
    """The host's answer, through its resident session when ``osmon run`` keeps one (then
    True), else from a connection of its own (one-shot, as cron's passes)."""
    if ctx.host_keys_failure is not None:
        raise ctx.host_keys_failure
    deadline = job.started + ctx.config.settings.host_deadline_s
    session = None
    if ctx.sessions is not None and ctx.sessions.takes(job.host, run):
        try:
            return ctx.sessions.ask(ctx.config, job, ctx.dialer, job.host, deadline, params,
                                    ctx.probe, state_dir), True
        except OneShotInstead as instead:
            session = instead.session
    if session is None:
        if state_dir is not None:
            params["proc_prev"] = proc_state.load(state_dir, job.host.name, time.time())
        session = ssh.Session(job.host, ctx.dialer, job.writing, deadline)
    job.attach(session)
    return run.execute(session, params, ctx.probe, ctx.sh_probe), False


def _run_local(params: dict[str, Any]) -> tuple[dict[str, Any], float]:
    from collector.transport.local import (
        collect_local,  # psutil only when a local host is collected
    )

    raw = collect_local(params)
    epoch = time.time()
    try:
        return validate_probe_output(raw), epoch
    except InvalidProbeOutput as exc:
        raise ssh.SshFailure(ssh.INVALID_OUTPUT, f"local collection: {exc}") from None


def _derive(raw: dict[str, Any], previous: dict[str, Any] | None, epoch: float,
            expected_checks: list[dict[str, Any]]) -> dict[str, Any]:
    try:
        derived = derive_sample(raw, previous, epoch, previous_epoch(previous))
    except Exception as exc:  # validated but still unusable values: the host's fault
        # Debug only: the host's line says it already, and a traceback each minute in cron
        # mail would be noise quoting the host's values.
        log.debug("derived values failed", exc_info=True)
        # The type only: the exception's text may quote values the host sent.
        raise ssh.SshFailure(ssh.INVALID_OUTPUT, f"values the collector cannot use "
                                                 f"({type(exc).__name__})") from None
    derived.pop("checks", None)  # raw answers; stored as interpreted results, if any expected
    if expected_checks:
        derived["checks"] = derive_checks(raw.get("checks"), expected_checks)
    return derived


def failure_sample(ts: str, host: Host, kind: str, message: str, duration_s: float,
                   connect_s: float | None = None, probe: str | None = None) -> dict[str, Any]:
    """The line of a host that gave no sample, so the gap is visible and alerts can fire."""
    collect: dict[str, Any] = {"transport": _transport(host), "duration_s": _r(duration_s)}
    if connect_s is not None:
        collect["connect_s"] = _r(connect_s)
        if probe is not None:  # the probe ran (or failed to start): which one
            collect["probe"] = probe
    return {"v": SCHEMA_VERSION, "ts": ts, "host": host.name, "ok": False,
            "error": {"kind": kind, "message": message}, "collect": collect}


def _transport(host: Host) -> str:
    return "local" if host.local else "ssh"


def _r(seconds: float) -> float:
    return round(seconds, 3)
