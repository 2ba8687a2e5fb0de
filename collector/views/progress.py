"""Progress of a pass on a terminal: one status line on stderr, rewritten in place.

Only for people watching: ``osmon collect`` uses it when stderr is a TTY and stays silent under
cron.  Redraws are throttled so 200 hosts answering at once do not flood a slow terminal.
"""

from __future__ import annotations

import time
from typing import TextIO

from collector.passes.collect import HostOutcome


class TerminalProgress:
    """``progress(outcome, done, total, failed)`` callable for :func:`collect.run_pass`."""

    def __init__(self, stream: TextIO, label: str, min_interval_s: float = 0.1) -> None:
        self.stream = stream
        self.label = label
        self.min_interval_s = min_interval_s
        self._last_draw = 0.0
        self._width = 0

    def __call__(self, outcome: HostOutcome, done: int, total: int, failed: int) -> None:
        now = time.monotonic()
        if done < total and now - self._last_draw < self.min_interval_s:
            return
        self._last_draw = now
        text = f"{self.label}: {done}/{total} hosts"
        if failed:
            text += f", {failed} failed"
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
        self._width = len(text)

    def clear(self) -> None:
        """Erase the status line so what follows starts on a clean line."""
        if self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0
