"""The worker threads of the passes: osmon run keeps them between passes, bounded, and a
worker stuck with a hung host never holds up the others."""

from __future__ import annotations

import threading

from process_fixtures import SLACK_S

from collector.passes.workers import WorkerPool


def test_workers_are_reused_across_passes_and_their_number_is_bounded() -> None:
    pool = WorkerPool(max_idle=4)
    seen: set[int] = set()
    for _pass in range(5):
        done = [threading.Event() for _ in range(4)]
        for n, event in enumerate(done):
            def task(event: threading.Event = event) -> None:
                seen.add(threading.get_ident())
                event.set()
            pool.run(f"osmon-host{n}", task)
        assert all(e.wait(SLACK_S) for e in done)
    # Five passes of four hosts ran on a handful of threads, not on twenty new ones.
    assert len(seen) <= 8
    assert pool.idle() <= 4


def test_a_stuck_worker_does_not_hold_up_the_next_hosts() -> None:
    pool = WorkerPool(max_idle=2)
    release, ran, names = threading.Event(), threading.Event(), []
    try:
        pool.run("osmon-hung", release.wait)
        pool.run("osmon-fine", lambda: (names.append(threading.current_thread().name),
                                        ran.set()))
        assert ran.wait(SLACK_S)
        assert names == ["osmon-fine"]  # a stack dump names the host a worker serves
    finally:
        release.set()


def test_a_task_that_raises_costs_nothing_but_itself() -> None:
    pool = WorkerPool(max_idle=1)
    ran = threading.Event()

    def broken() -> None:
        raise RuntimeError("a bug")

    pool.run("osmon-a", broken)
    pool.run("osmon-b", ran.set)
    assert ran.wait(SLACK_S)
    pool.run("osmon-c", ran.clear)  # the pool still serves after the failure
    for _ in range(int(SLACK_S * 100)):
        if not ran.is_set():
            break
        threading.Event().wait(0.01)
    assert not ran.is_set()
