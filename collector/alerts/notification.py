"""What the rule engine says about a pass: notifications, for the e-mail and the history."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LEVEL_RANK = {"critical": 0, "warning": 1, "info": 2, "ok": 3}


@dataclass(frozen=True)
class Notification:
    """One line of the digest e-mail and one line of the alert history.

    ``level`` is ``warning``/``critical`` for problems, escalations and reminders, ``ok`` for
    recoveries and ``info`` for a new CERT-FR alert.  ``host`` is ``None`` for CERT-FR.
    """

    event: str
    level: str
    host: str | None
    metric: str
    item: str | None
    value: float | None
    threshold: float | None
    since: str
    message: str
    unit: str = ""
    link: str | None = None
    details: str = ""
    #: The id of the silence that kept this from being sent: a line of the history only.
    silenced: str | None = None
    #: For a recovery: the level the problem had (``warning`` or ``critical``).
    was: str | None = None

    def history_record(self, ts: str) -> dict[str, Any]:
        # CERT-FR rows have host "" (not null): pages render "host" as a link.
        record = {"ts": ts, "host": self.host or "", "metric": self.metric, "item": self.item,
                  "event": self.event, "level": self.level, "value": self.value,
                  "threshold": self.threshold, "message": self.message}
        if self.silenced is not None:
            record["silenced"] = self.silenced
        return record


def severity_key(note: Notification) -> tuple[int, int]:
    """Worst first: by level, then news (problem, escalation) before reminders."""
    fresh = 0 if note.event in ("problem", "escalation") else 1
    return LEVEL_RANK.get(note.level, 9), fresh
