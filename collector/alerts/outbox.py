"""The outbox that every notification channel shares: ``<data_dir>/state/outbox/``.

A channel (the e-mail, :mod:`collector.alerts.mail`; the webhook,
:mod:`collector.alerts.webhook`) writes each message here first, atomically and readable by
osmon alone, then sends what waits, oldest first, and removes a message only once it was
delivered: a channel that is down loses nothing.  What is the same for every channel lives
here, one :class:`Outbox` per channel, told apart by the file suffix:

* the queue (names sort oldest first) and its cap per channel (:data:`MAX_OUTBOX` messages
  unless the channel says otherwise), the oldest dropped beyond it, so an endpoint gone for
  weeks cannot fill the disk;
* a message refused for good is set aside under another suffix, kept on disk, never retried;
* the channel's status file says since when it fails and why, so failing is logged once
  when it starts and once when it ends, not at every pass.

How a message is sent (one SMTP session for all, one POST each) stays with its channel.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from collector.store.statefile import atomic_write_bytes, atomic_write_json, read_json

log = logging.getLogger(__name__)

OUTBOX_DIR = "outbox"
#: Oldest messages are dropped beyond this, so a channel down for weeks cannot fill the disk.
MAX_OUTBOX = 500


def outbox_dir(state_dir: Path) -> Path:
    return Path(state_dir) / OUTBOX_DIR


@dataclass(frozen=True)
class Outbox:
    """One channel's part of the outbox: its messages end in ``suffix``, those refused for
    good in ``rejected_suffix``; ``status_file`` (in the state directory) holds its failure.
    ``name``, ``fail_words`` and ``done_word`` word its log lines ("e-mail cannot be sent",
    "... waiting message(s) sent")."""

    name: str
    suffix: str
    rejected_suffix: str
    status_file: str
    fail_words: str
    done_word: str

    def queue(self, state_dir: Path, messages: list[bytes], now: datetime, *,
              numbered: bool, limit: int = MAX_OUTBOX) -> list[Path]:
        """Write each message (atomically); names sort oldest first, and in the order given
        within a pass when ``numbered``.  Then drop the oldest beyond ``limit``."""
        paths = []
        for index, data in enumerate(messages):
            number = f"{index:03d}-" if numbered else ""
            name = f"{now:%Y%m%dT%H%M%SZ}-{number}{uuid.uuid4().hex[:12]}{self.suffix}"
            path = outbox_dir(state_dir) / name
            atomic_write_bytes(path, data, mode=0o600)
            paths.append(path)
        waiting = self.pending(state_dir)
        for old in waiting[:max(0, len(waiting) - limit)]:
            log.error("%s outbox over %d messages: dropping the oldest, %s", self.name, limit,
                      old.name)
            old.unlink(missing_ok=True)
        return paths

    def pending(self, state_dir: Path) -> list[Path]:
        """The channel's messages waiting in the outbox, oldest first."""
        try:
            return sorted(p for p in outbox_dir(state_dir).iterdir()
                          if p.name.endswith(self.suffix) and not p.name.startswith("."))
        except FileNotFoundError:
            return []

    def set_aside(self, path: Path, reason: str, what: str = "rejected for good") -> Path:
        """Keep a message that will never be sent out of the queue, but on disk."""
        aside = path.with_name(path.name[:-len(self.suffix)] + self.rejected_suffix)
        path.replace(aside)
        log.error("%s %s %s: %s; kept as %s, not retried", self.name, path.name, what, reason,
                  aside)
        return aside

    def failure(self, state_dir: Path) -> str | None:
        """Why the channel is failing (since its last attempt), or ``None`` if it is not."""
        status, _problem = read_json(Path(state_dir) / self.status_file, 1)
        if not isinstance(status, dict) or not status.get("failing_since"):
            return None
        return str(status.get("reason") or "unknown reason")

    def failed(self, state_dir: Path, reason: str, waiting: int) -> None:
        """A flush stopped on ``reason``: a warning when the failure starts, then info."""
        if self.failure(state_dir) is not None:
            log.info("%s still failing: %s; %d message(s) wait in the outbox", self.name,
                     reason, waiting)
            return
        log.warning("%s %s: %s; %d message(s) wait in %s and are retried every pass "
                    "(reported once)", self.name, self.fail_words, reason, waiting,
                    outbox_dir(state_dir))
        atomic_write_json(Path(state_dir) / self.status_file,
                          {"version": 1, "failing_since": time.time(), "reason": reason})

    def works(self, state_dir: Path, sent: int) -> None:
        """A flush went through: the end of a failure, if there was one, is said once."""
        path = Path(state_dir) / self.status_file
        if path.exists():
            log.warning("%s works again: %d waiting message(s) %s", self.name, sent,
                        self.done_word)
            path.unlink(missing_ok=True)
