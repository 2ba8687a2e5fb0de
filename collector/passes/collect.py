"""One collection pass: every enabled host once, in parallel, bounded in time, one line each.

The pass is a coordinator and at most ``settings.concurrency`` daemon worker threads, one per
host being collected.  Workers only gather and build the host's sample; the coordinator alone
decides each host's outcome and appends it, which is what makes "exactly one line per enabled
host" hold even when a worker hangs: at the host deadline (or the pass deadline) the
coordinator records ``timeout``, closes the host's socket from its own thread and stops waiting;
a late answer from that worker is dropped.  Threads are daemons, so an abandoned one cannot keep
the process alive once the pass is over.
"""

from __future__ import annotations

import importlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from collector import SCHEMA_VERSION
from collector.config import Config, Host
from collector.errors import DataDirError, LockHeld
from collector.metrics.families.checks import derive_checks
from collector.metrics.gate import InvalidProbeOutput, validate_probe_output
from collector.metrics.rates import derive_sample
from collector.passes import record as pass_record
from collector.passes.hooks import POST_PASS_HOOKS
from collector.passes.job import Abandoned, Job
from collector.passes.probe_call import (
    ProbeRun,
    decode_answer,
    load_probe,
    previous_epoch,
    probe_params,
)
from collector.passes.sessions import OneShotInstead, SessionPool
from collector.passes.sh_probe import load_sh_probe
from collector.store import proc_counters as proc_state
from collector.store.lock import DataLock
from collector.store.samples import MAX_LINE_BYTES, Store, encode_line
from collector.store.space import is_full, write_failure
from collector.times import format_ts, utc_now
from collector.transport import ssh
from collector.transport.gate import HandshakeGate
from collector.transport.jump import Bastions

log = logging.getLogger(__name__)

#: Hooks (alerts) get what is left of the pass deadline, but never less than this.
MIN_HOOK_BUDGET_S = 5.0


@dataclass(frozen=True)
class HostOutcome:
    """What one host gave this pass: the sample as stored (failures are samples too)."""

    host: str
    sample: dict[str, Any]
    #: The sample already encoded as its log line, when the worker did it (to measure it).
    line: bytes | None = None

    @property
    def ok(self) -> bool:
        return bool(self.sample.get("ok"))

    @property
    def error(self) -> dict[str, str] | None:
        return self.sample.get("error")

    def describe_error(self) -> str:
        """``kind: message``, the words printed for a failed host."""
        error = self.error or {}
        return f"{error.get('kind', '?')}: {error.get('message', '')}"

    def describe(self) -> str:
        """``host: kind: message`` (or ``host: ok``): one line for cron mail and logs."""
        return f"{self.host}: {self.describe_error() if not self.ok else 'ok'}"


@dataclass(frozen=True)
class PassResult:
    started: datetime
    duration_s: float
    outcomes: tuple[HostOutcome, ...]
    #: Hosts whose sample could not be stored (a full disk): a failure of the pass, not of
    #: the host, so they still count in ``ok``/``failed`` by what the host answered.
    unstored: tuple[str, ...] = ()
    #: Why the pass itself failed (its samples could not all be stored), or None.
    problem: str | None = None
    #: The pass log entry of an earlier pass found unfinished (killed), if any.
    interrupted: dict[str, Any] | None = None

    @property
    def ok(self) -> int:
        return sum(1 for o in self.outcomes if o.ok)

    @property
    def failed(self) -> int:
        return len(self.outcomes) - self.ok

    def failures(self) -> tuple[HostOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.ok)


#: ``progress(outcome, done, total, failed)``, called as each host's outcome becomes final.
Progress = Callable[[HostOutcome, int, int, int], None]


# -- the pass ----------------------------------------------------------------------------------
def run_pass(config: Config, *, now: datetime | None = None,
             progress: Progress | None = None,
             sessions: SessionPool | None = None) -> PassResult:
    """Collect every enabled host once, append one sample each, run the post-pass hooks.

    ``sessions``: ``osmon run``'s resident sessions, used and kept for the next pass (else
    every host gets a connection of its own, closed at the end of the pass).

    Raises :class:`LockHeld` (after recording the skip) when another pass holds the lock, and
    :class:`DataDirError` (after recording the failure where the disk still allows it) when
    the data directory cannot be used at all.  A sample that cannot be stored does not raise:
    the pass goes on and says so in ``PassResult.problem``.
    """
    started = now or utc_now()
    t0 = time.monotonic()
    settings = config.settings
    hosts = config.enabled_hosts
    if not settings.data_dir.exists():
        # A restore killed between its two fallback renames leaves the data aside and no data
        # directory; the lock would create an empty one and the pass would hide the old data.
        from collector.store.swap import recover

        recover(settings.data_dir)
    lock = DataLock(settings.data_dir, "collect")
    try:
        lock.acquire()
    except LockHeld as exc:
        pass_record.record(config, {
            "ts": format_ts(started), "duration_s": 0.0, "hosts": len(hosts), "ok": 0,
            "failed": 0, "skipped": True, "reason": str(exc)})
        raise
    except DataDirError as exc:
        pass_record.record(config, {
            "ts": format_ts(started), "duration_s": 0.0, "hosts": len(hosts), "ok": 0,
            "failed": 0, "skipped": False, "problem": f"the pass could not run: {exc}"})
        raise
    try:
        interrupted = pass_record.begin(config, started, len(hosts))
        store = Store(settings.data_dir)
        unstored: dict[str, str] = {}

        def store_outcome(outcome: HostOutcome, done: int, total: int, failed: int) -> None:
            # Appended as soon as known: a pass killed midway keeps what it had collected.
            try:
                store.append(outcome.host, outcome.sample, line=outcome.line)
                if sessions is not None:
                    sessions.remember(outcome.host, outcome.sample)
            except OSError as exc:
                unstored[outcome.host] = write_failure(settings.data_dir, exc)
                log.error("cannot store the sample of %s: %s", outcome.host,
                          unstored[outcome.host])
            except ValueError as exc:  # not encodable, or too large
                unstored[outcome.host] = str(exc)
                log.error("cannot store the sample of %s: %s", outcome.host, exc)
            if progress is not None:
                progress(outcome, done, total, failed)

        outcomes = collect_hosts(config, hosts, store=store, started=started,
                                 deadline=t0 + settings.pass_deadline_s,
                                 on_outcome=store_outcome, sessions=sessions)
        # Only what is stored is judged: an alert must not advance on a sample that a reader
        # of the store (the dashboard, the next pass's rates) will never see.
        samples = {o.host: o.sample for o in outcomes if o.host not in unstored}
        _run_hooks(config, store, samples, started,
                   max(t0 + settings.pass_deadline_s, time.monotonic() + MIN_HOOK_BUDGET_S),
                   stored=not unstored)
        problem = pass_record.unstored_problem(unstored, len(outcomes))
        result = PassResult(started, round(time.monotonic() - t0, 3), tuple(outcomes),
                            tuple(h for h in (o.host for o in outcomes) if h in unstored),
                            problem, interrupted)
        entry: dict[str, Any] = {
            "ts": format_ts(started), "duration_s": result.duration_s, "hosts": len(hosts),
            "ok": result.ok, "failed": result.failed, "skipped": False}
        if unstored:
            entry.update(unstored=len(unstored), problem=problem)
        if interrupted is not None:
            entry["after_interrupted"] = interrupted.get("ts")
        pass_record.record(config, entry)
        pass_record.end(config)
        return result
    finally:
        lock.release()


def _run_hooks(config: Config, store: Store, samples: dict[str, dict[str, Any]],
               now: datetime, deadline: float, *, stored: bool = True) -> None:
    for spec in POST_PASS_HOOKS:
        try:
            module_name, _, function_name = spec.partition(":")
            hook = getattr(importlib.import_module(module_name), function_name)
            hook(config, store, samples, now, deadline)
        except Exception as exc:
            outcome = ("the samples are stored" if stored else
                       "some samples could not be stored either")
            if isinstance(exc, OSError) and is_full(exc):  # said by the pass: no traceback
                log.warning("post-pass hook %s failed: %s; %s", spec,
                            write_failure(config.settings.data_dir, exc), outcome)
            else:
                log.warning("post-pass hook %s failed; %s", spec, outcome, exc_info=True)


# -- fan-out -----------------------------------------------------------------------------------
def collect_hosts(config: Config, hosts: Sequence[Host], *, store: Store | None,
                  started: datetime, deadline: float, on_outcome: Progress | None = None,
                  sessions: SessionPool | None = None) -> list[HostOutcome]:
    """Collect ``hosts`` in parallel; one outcome per host, in config order.

    Nothing is written here: ``on_outcome`` is called (in this thread) with each outcome as
    soon as it is final, which is where :func:`run_pass` appends it.  ``store`` gives each
    host's previous sample (for rates); ``None`` (``osmon check``) means none.  ``deadline``
    is a ``time.monotonic()`` value: hosts not done by then are recorded as ``timeout``.
    """
    ctx = _Context(config, format_ts(started), store, any(not h.local for h in hosts), sessions)
    try:
        return _fan_out(ctx, hosts, deadline, on_outcome)
    finally:
        if sessions is None:  # a pass of its own: its bastion connections end with it
            ctx.dialer.bastions.close_all()


def _fan_out(ctx: _Context, hosts: Sequence[Host], deadline: float,
             on_outcome: Progress | None) -> list[HostOutcome]:
    settings = ctx.config.settings
    pending = deque(hosts)
    running: list[Job] = []
    answers: queue.SimpleQueue[tuple[Job, dict[str, Any], bytes | None]] = queue.SimpleQueue()
    samples: dict[str, dict[str, Any]] = {}
    failed = 0

    def finish(job: Job, sample: dict[str, Any], line: bytes | None = None) -> None:
        nonlocal failed
        running.remove(job)
        samples[job.host.name] = sample
        failed += not sample["ok"]
        if on_outcome is not None:
            on_outcome(HostOutcome(job.host.name, sample, line), len(samples), len(hosts),
                       failed)

    while pending or running:
        now = time.monotonic()
        if now >= deadline:
            break
        while pending and len(running) < settings.concurrency:
            job = Job(pending.popleft(), now)
            running.append(job)
            threading.Thread(target=_work, args=(ctx, job, answers), daemon=True,
                             name=f"osmon-{job.host.name}").start()
        wake = min([deadline] + [j.started + settings.host_deadline_s for j in running])
        try:
            job, sample, line = answers.get(timeout=max(0.0, wake - now))
            if job in running:  # else: already recorded as timeout, the answer is too late
                finish(job, sample, line)
        except queue.Empty:
            pass
        now = time.monotonic()
        for job in [j for j in running if now >= j.started + settings.host_deadline_s]:
            step = job.abandon()
            finish(job, failure_sample(
                ctx.ts, job.host, ssh.TIMEOUT,
                f"no answer within {settings.host_deadline_s:g} s (host deadline, during "
                f"{step})", now - job.started))
    now = time.monotonic()
    for job in list(running):
        step = job.abandon()
        finish(job, failure_sample(
            ctx.ts, job.host, ssh.TIMEOUT,
            f"pass deadline of {settings.pass_deadline_s:g} s reached (during {step})",
            now - job.started))
    for host in pending:
        job = Job(host, now)
        running.append(job)
        finish(job, failure_sample(
            ctx.ts, host, ssh.TIMEOUT,
            f"not tried: pass deadline of {settings.pass_deadline_s:g} s reached first "
            f"(raise concurrency or pass_deadline_s)", 0.0))
    return [HostOutcome(h.name, samples[h.name]) for h in hosts]


class _Context:
    """What every worker of one pass shares: read once, not once per host."""

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
                host_keys = ssh.HostKeyChecker(config.settings)
            except ssh.SshFailure as exc:
                self.host_keys_failure = exc
        if sessions is not None:
            sessions.begin_pass(config, self.probe)
        self.dialer = ssh.Dialer(
            config.settings, host_keys, ssh.Credentials(),  # type: ignore[arg-type]
            sessions.gate if sessions else HandshakeGate(config.settings.max_handshakes),
            sessions.bastions if sessions else Bastions())


def _work(ctx: _Context, job: Job, answers: queue.SimpleQueue[Any]) -> None:
    start = time.monotonic()
    try:
        sample = _collect(ctx, job)
    except Abandoned:
        return  # the coordinator recorded this host's timeout already
    except Exception as exc:  # a bug of ours must cost one host, not the pass
        log.exception("collecting %s failed unexpectedly", job.host.name)
        sample = failure_sample(ctx.ts, job.host, ssh.PROBE, f"collector error: {exc!r}"[:300],
                                time.monotonic() - start)
    # Encoded here, once: the size is judged before the alerts see the sample, and the line is
    # what the coordinator appends.
    line, unstorable = _as_line(sample)
    if unstorable is not None:
        sample = failure_sample(ctx.ts, job.host, ssh.INVALID_OUTPUT, unstorable,
                                time.monotonic() - start)
    answers.put((job, sample, line))


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
def _collect(ctx: _Context, job: Job) -> dict[str, Any]:
    host = job.host
    start = time.monotonic()
    previous = (ctx.sessions and ctx.sessions.previous(host.name)) or (
        ctx.store.latest(host.name) if ctx.store is not None else None)
    state_dir = ctx.config.state_dir if ctx.store is not None else None  # None: osmon check
    params = probe_params(ctx.config, host, previous)
    connect_s: float | None = None
    run = ProbeRun(ctx.config, host, state_dir)
    resident = False
    try:
        if host.local:
            if state_dir is not None:
                params["proc_prev"] = proc_state.load(state_dir, host.name, time.time())
            raw, epoch = _run_local(params)
            connect_s = 0.0
        else:
            result, resident = _remote(ctx, job, run, params, state_dir)
            connect_s = result.connect_s
            raw, epoch = decode_answer(host, result, run.probe), result.reading_epoch
        counters = proc_state.take_counters(raw)  # for the next pass, never for the log
        derived = _derive(raw, previous, epoch, params["checks"])
    except ssh.SshFailure as exc:
        if resident and ctx.sessions is not None:  # an unusable answer: a new session next pass
            ctx.sessions.forget(host)
        return failure_sample(ctx.ts, host, exc.kind, exc.message, time.monotonic() - start,
                              connect_s, run.probe)
    run.keep_choice(job.writing)
    sample: dict[str, Any] = {
        "v": SCHEMA_VERSION, "ts": ctx.ts, "host": host.name, "ok": True, "error": None,
        "collect": {"transport": _transport(host), "probe": run.probe,
                    "duration_s": _r(time.monotonic() - start),
                    "connect_s": _r(connect_s or 0.0), "epoch": round(epoch, 3)},
    }
    if resident:
        sample["collect"]["resident"] = True
    for key, value in derived.items():
        sample.setdefault(key, value)
    if state_dir is not None and counters is not None:
        _keep_counters(job, state_dir, counters, epoch)
    return sample


def _keep_counters(job: Job, state_dir: Path, counters: dict[str, Any], epoch: float) -> None:
    """Save the process counters for the next pass; failing costs interval percentages only,
    and a host the pass gave up on keeps none (the lock may be another process's by now)."""
    try:
        with job.writing():
            proc_state.save(state_dir, job.host.name, counters, epoch)
    except Abandoned:
        log.debug("%s: abandoned; its process counters are dropped", job.host.name)
    except (OSError, ValueError) as exc:
        log.error("cannot keep the process counters of %s: %s", job.host.name, exc)


def _remote(ctx: _Context, job: Job, run: ProbeRun, params: dict[str, Any],
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
