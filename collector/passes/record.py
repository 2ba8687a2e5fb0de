"""What a pass writes about itself: its line in the pass log, and the marker of a pass running.

Both are conveniences next to the samples: failing to write them (a full disk) is logged and
never turns a pass into a crash.  See :mod:`collector.store.passlog` for the files.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from collector.config import Config
from collector.store import passlog
from collector.store.space import write_failure
from collector.times import format_ts

log = logging.getLogger("collector.passes.collect")


def unstored_problem(unstored: dict[str, str], total: int) -> str | None:
    """One sentence for the samples that could not be stored (the first reason, the count)."""
    if not unstored:
        return None
    reasons = sorted(set(unstored.values()))
    more = f" (and {len(reasons) - 1} other reason(s))" if len(reasons) > 1 else ""
    return (f"could not store {len(unstored)} of {total} samples: {reasons[0]}{more}")


def record(config: Config, entry: dict[str, Any]) -> None:
    """The pass log is a convenience: failing to write it must not turn a pass into a crash."""
    if config.settings.shard is not None:  # which share of the inventory "hosts" counts
        entry["shard"] = str(config.settings.shard)
    try:
        passlog.record(config.state_dir, entry)
    except OSError as exc:
        log.error("cannot record the pass in %s: %s", config.state_dir,
                  write_failure(config.settings.data_dir, exc))


def begin(config: Config, started: datetime, hosts: int) -> dict[str, Any] | None:
    """Leave the "pass running" marker; first log an earlier pass that never finished (killed
    with SIGKILL, or the machine stopped): we hold the lock, so its holder is gone."""
    try:
        interrupted = passlog.take_unfinished(config.state_dir)
    except OSError as exc:
        log.error("cannot read the pass marker in %s: %s", config.state_dir, exc)
        interrupted = None
    if interrupted is not None:
        log.info("%s", interrupted["problem"])
        record(config, interrupted)
    try:
        passlog.mark_running(config.state_dir, format_ts(started), hosts)
    except OSError as exc:
        log.error("cannot leave the pass marker in %s: %s", config.state_dir,
                  write_failure(config.settings.data_dir, exc))
    return interrupted


def end(config: Config) -> None:
    try:
        passlog.mark_finished(config.state_dir)
    except OSError as exc:
        log.error("cannot remove the pass marker in %s: %s", config.state_dir, exc)
