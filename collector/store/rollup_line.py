"""A rollup record as a line: the one place that knows how it is laid out.

:mod:`collector.store.rollup` builds every record with :func:`record` and writes it with
``samples.encode_line`` (compact JSON, keys in insertion order); the overview's sparklines
(``web.sparklines``) read 1,000 hosts' records on a request and cannot decode each whole one
(about 1 KiB of every mount and interface): :func:`fleet_numbers` finds the head and decodes
only the small ``"c"`` part, which is why ``v``, ``t`` and ``n`` come first and ``c`` last.
``tests/test_rollup.py`` checks it against the lines the passes really write.
"""

from __future__ import annotations

import json
import re
from typing import Any

#: The head of every line as :func:`record` orders it and ``encode_line`` spells it.
_HEAD = re.compile(rb'\{"v":1,"t":"([0-9T:Z-]{20})","n":(\d+),')
#: The last key, found from the end: ``m`` may hold a key "c" (an interface named so); ``c``,
#: keyed by chart names, cannot.
_COMBINED = b',"c":'


def record(t: str, good: int, failed: int, metrics: dict[str, dict[str, list[float]]],
           combined: dict[str, list[float]]) -> dict[str, Any]:
    """One bucket's record, its keys in the order :func:`fleet_numbers` relies on."""
    return {"v": 1, "t": t, "n": good, "f": failed, "m": metrics, "c": combined}


def fleet_numbers(line: bytes) -> tuple[str, int, Any] | None:
    """(``t``, ``n``, ``c`` decoded) of one record line, or None when it is not a whole
    record (a torn last line)."""
    line = line.rstrip()
    head = _HEAD.match(line)
    at = line.rfind(_COMBINED)
    if head is None or at < 0 or not line.endswith(b"}"):
        return None
    try:
        combined = json.loads(line[at + len(_COMBINED):-1])
    except ValueError:
        return None
    return head.group(1).decode("ascii"), int(head.group(2)), combined
