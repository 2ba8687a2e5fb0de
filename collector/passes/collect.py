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

import functools
import heapq
import importlib
import logging
import queue
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from collector.config import Config, Host
from collector.errors import DataDirError, LockHeld
from collector.passes import record as pass_record
from collector.passes import workers
from collector.passes.hooks import POST_PASS_HOOKS
from collector.passes.memory import PassMemory
from collector.passes.one_host import (
    Answer,
    HostJob,
    InlineJob,
    PassContext,
    ask_inline,
    failure_sample,
    work,
)
from collector.passes.sessions import SessionPool
from collector.store import disk_trend as trend_store
from collector.store.lock import DataLock
from collector.store.samples import Store
from collector.store.space import is_full, write_failure
from collector.times import format_ts, utc_now
from collector.transport import ssh

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
    #: The host's disk trend to keep when the sample is stored (None: unchanged).
    disk_trend: dict[str, Any] | None = None

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
        memory = sessions.memory if sessions is not None else None

        def store_outcome(outcome: HostOutcome, done: int, total: int, failed: int) -> None:
            # Appended as soon as known: a pass killed midway keeps what it had collected.
            try:
                line = outcome.line
                if not outcome.ok:
                    note_last_ok(store, outcome.host, outcome.sample,
                                 memory.sample(outcome.host) if memory else None)
                    line = None  # encoded again, with last_ok
                store.append(outcome.host, outcome.sample, line=line)
                if memory is not None:
                    memory.keep_sample(outcome.host, outcome.sample)
            except OSError as exc:
                unstored[outcome.host] = write_failure(settings.data_dir, exc)
                log.error("cannot store the sample of %s: %s", outcome.host,
                          unstored[outcome.host])
            except ValueError as exc:  # not encodable, or too large
                unstored[outcome.host] = str(exc)
                log.error("cannot store the sample of %s: %s", outcome.host, exc)
            else:
                _keep_trend(config, outcome, memory)
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


def _keep_trend(config: Config, outcome: HostOutcome, memory: PassMemory | None) -> None:
    """Save the disk trend of a stored sample (here, in the coordinator: never by a worker the
    pass gave up on); failing costs the forecasts some points, never the pass."""
    if outcome.disk_trend is None:
        return
    try:
        trend_store.save(config.state_dir, outcome.host, outcome.disk_trend)
    except (OSError, ValueError) as exc:
        log.error("cannot keep the disk trend of %s: %s", outcome.host, exc)
        if memory is not None:
            memory.forget_trend(outcome.host)
    else:
        if memory is not None:
            memory.keep_trend(outcome.host, outcome.disk_trend)


def note_last_ok(store: Store, host: str, sample: dict[str, Any],
                 remembered: dict[str, Any] | None = None) -> None:
    """Give a failure line ``last_ok``: ``ts`` of the host's newest good sample, or None if it
    never answered.  Carried from the previous line, so "Last seen" costs readers nothing;
    only a predecessor written before ``last_ok`` existed makes the store search back.
    ``remembered``: the host's last stored line as ``osmon run`` kept it (not read again)."""
    try:
        previous = remembered if remembered is not None else store.latest(host)
        if previous is None:
            last_ok = None
        elif previous.get("ok") is True:
            last_ok = previous.get("ts")
        elif "last_ok" in previous:
            carried = previous.get("last_ok")
            last_ok = carried if isinstance(carried, str) else None
        else:
            last_ok = store.last_ok_ts(host)
    except OSError:  # unreadable history: the failure is still stored, without last_ok
        return
    sample["last_ok"] = last_ok


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
    ctx = PassContext(config, format_ts(started), store, any(not h.local for h in hosts),
                      sessions)
    try:
        return _fan_out(ctx, hosts, deadline, on_outcome)
    finally:
        if sessions is None:  # a pass of its own: its bastion connections end with it
            ctx.dialer.bastions.close_all()


def _fan_out(ctx: PassContext, hosts: Sequence[Host], deadline: float,
             on_outcome: Progress | None) -> list[HostOutcome]:
    settings = ctx.config.settings
    pending = deque(hosts)
    running: list[HostJob] = []  # on workers: at most ``concurrency``
    answers: queue.SimpleQueue[tuple[HostJob, Answer | None]] = queue.SimpleQueue()
    samples: dict[str, dict[str, Any]] = {}
    failed = 0
    spawn = ctx.sessions.workers.run if ctx.sessions is not None else workers.fresh_thread
    # osmon run: the hosts whose resident session answered before are asked first, all at
    # once, and their answers read here as they arrive; workers serve the others.
    asked = _Asked()
    if ctx.sessions is not None:
        pending = deque(asked.ask(ctx, pending, answers))

    def finish(job: HostJob, sample: dict[str, Any], answer: Answer | None = None) -> None:
        nonlocal failed
        if asked.jobs.pop(job, None) is None:
            running.remove(job)
        samples[job.host.name] = sample
        failed += not sample["ok"]
        if on_outcome is not None:
            line, trend = (answer.line, answer.disk_trend) if answer is not None else (None, None)
            on_outcome(HostOutcome(job.host.name, sample, line, trend), len(samples),
                       len(hosts), failed)

    def late(jobs: list[HostJob], now: float) -> None:
        for job in jobs:
            step = job.abandon()
            finish(job, failure_sample(
                ctx.ts, job.host, ssh.TIMEOUT,
                f"no answer within {settings.host_deadline_s:g} s (host deadline, during "
                f"{step})", now - job.started))

    while pending or running or asked.jobs:
        now = time.monotonic()
        if now >= deadline:
            break
        while pending and len(running) < settings.concurrency:
            job = HostJob(pending.popleft(), now)
            running.append(job)
            spawn(f"osmon-{job.host.name}", work, ctx, job, answers)
        wake = min([deadline, asked.wake(settings.host_deadline_s)]
                   + [j.started + settings.host_deadline_s for j in running])
        try:
            job, answer = answers.get(timeout=max(0.0, wake - now))
            if answer is None and job in asked.jobs:  # more of a resident answer came in
                answer = asked.jobs[job].step()
            if answer is not None and (job in asked.jobs or job in running):
                finish(job, answer.sample, answer)  # else: too late, a timeout already
        except queue.Empty:
            pass
        now = time.monotonic()
        for job, answer in asked.past_budget(now):  # a timeout, unless it came in
            finish(job, answer.sample, answer)
        late([j for j in running if now >= j.started + settings.host_deadline_s], now)
        if asked.jobs and now >= asked.started + settings.host_deadline_s:
            late(list(asked.jobs), now)
    now = time.monotonic()
    for job in [*running, *asked.jobs]:
        step = job.abandon()
        finish(job, failure_sample(
            ctx.ts, job.host, ssh.TIMEOUT,
            f"pass deadline of {settings.pass_deadline_s:g} s reached (during {step})",
            now - job.started))
    for host in pending:
        job = HostJob(host, now)
        running.append(job)
        finish(job, failure_sample(
            ctx.ts, host, ssh.TIMEOUT,
            f"not tried: pass deadline of {settings.pass_deadline_s:g} s reached first "
            f"(raise concurrency or pass_deadline_s)", 0.0))
    return [HostOutcome(h.name, samples[h.name]) for h in hosts]


class _Asked:
    """The hosts the coordinator asked itself, through resident sessions that answered
    before: their jobs (all started at once) and a heap of when each request's budget runs
    out, so that a pass over thousands of them scans none of them per answer."""

    def __init__(self) -> None:
        self.jobs: dict[HostJob, InlineJob] = {}
        self.started = 0.0
        self._budgets: list[tuple[float, int, HostJob]] = []

    def ask(self, ctx: PassContext, hosts: Sequence[Host],
            answers: queue.SimpleQueue[Any]) -> list[Host]:
        """Send their request to the hosts that have such a session; return the others,
        for the workers."""
        rest = []
        self.started = time.monotonic()
        for host in hosts:
            job = HostJob(host, self.started)
            try:
                inline = ask_inline(ctx, job, functools.partial(answers.put, (job, None)))
            except Exception:  # a bug of ours: the worker's way still collects the host
                log.exception("asking %s through its session failed unexpectedly", host.name)
                inline = None
            if inline is None:
                rest.append(host)
            else:
                self.jobs[job] = inline
                self._budgets.append((inline.deadline, len(self._budgets), job))
        heapq.heapify(self._budgets)
        return rest

    def wake(self, host_deadline_s: float) -> float:
        """When the coordinator must look at them again without a wake-up."""
        budgets = self._budgets
        while budgets and budgets[0][2] not in self.jobs:
            heapq.heappop(budgets)  # answered already
        if not self.jobs:
            return float("inf")
        first = budgets[0][0] if budgets else float("inf")
        return min(first, self.started + host_deadline_s)

    def past_budget(self, now: float) -> list[tuple[HostJob, Answer]]:
        """The answers (timeouts, mostly) of the requests whose budget has run out."""
        done = []
        while self._budgets and self._budgets[0][0] <= now:
            job = heapq.heappop(self._budgets)[2]
            inline = self.jobs.get(job)
            answer = inline.step() if inline is not None else None
            if answer is not None:
                done.append((job, answer))
        return done
