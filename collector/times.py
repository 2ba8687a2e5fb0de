"""Time as osmon writes it: UTC, to the second, "2026-11-21T22:41:00Z" (sortable as text)."""

from __future__ import annotations

import re
from datetime import datetime, timezone

#: The form osmon writes; parsed without strptime, which costs ~40 us a call (its locale
#: checks) and ran once per host on every dashboard refresh and scrape.
_CANONICAL = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)Z\Z")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def format_ts(moment: datetime) -> str:
    """Samples carry UTC second-precision ISO times: sortable as text, readable by people."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_ts(text: str) -> datetime:
    """The inverse of :func:`format_ts`; ``ValueError`` for anything else strptime refuses."""
    match = _CANONICAL.match(text) if isinstance(text, str) else None
    if match is not None:  # datetime() refuses a 30 February or a 24:00 as strptime does
        year, month, day, hour, minute, second = map(int, match.groups())
        return datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
