"""Parse what a Nagios-plugin-API check printed: status text, long text and performance data.

Parsing happens here, on the central server, not in the probe: the probe stays small and
ships raw bytes back, and everything a host sends is untrusted, so it is parsed in one
tested place.  The format is the Monitoring Plugins Development Guidelines' one:

    TEXT | 'label 1'=value[UOM];[warn];[crit];[min];[max] label2=...
    LONG TEXT LINE 1
    LONG TEXT LINE 2 | more perfdata
    more perfdata
"""

from __future__ import annotations

import math
import re
from typing import Any

STATES = ("OK", "WARNING", "CRITICAL", "UNKNOWN")
OK, WARNING, CRITICAL, UNKNOWN = range(4)

_MAX_TEXT = 1024
_MAX_LONG_TEXT = 4096
_MAX_PERF_ITEMS = 64
_MAX_LABEL = 64

# One perfdata item: a quoted label ('' escapes a quote) or a bare one without spaces or '='.
_PERF_ITEM = re.compile(
    r"""\s*(?:'(?P<quoted>(?:[^']|'')+)'|(?P<bare>[^\s=']+))=(?P<rest>\S*)""")
# A number as the guidelines allow it ([-0-9.]), plus an exponent and a decimal comma: a
# plugin printing with the host's locale writes "0,52" (pnp4nagios reads it the same way).
_NUMBER = r"[-+]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][-+]?\d+)?"
# The value, then its unit: the guidelines' s, ms, us, %, B, KB, MB, TB, c and what plugins
# print in practice (GB, MiB, °C, µs, B/s). ``U`` alone: the value could not be determined.
_VALUE = re.compile(rf"^(?:(?P<value>{_NUMBER})(?P<uom>(?:[^\W\d_]|[%°µ/]){{0,16}})|U)$")
_MIN_MAX = re.compile(rf"^{_NUMBER}$")


def parse_output(exit_code: int | None, text: str) -> dict[str, Any]:
    """Turn a plugin's exit code and output into ``{"state", "output", "long_output", "perf"}``.

    Exit codes other than 0-3 (a crash, a signal, 127 "not found") are UNKNOWN, as Nagios
    treats them: a broken check is not a CRITICAL service.
    """
    lines = text.replace("\r\n", "\n").split("\n")
    first, _, first_perf = lines[0].partition("|")
    long_lines: list[str] = []
    perf_parts = [first_perf]
    in_perf = False
    for line in lines[1:]:
        if in_perf:
            perf_parts.append(line)
            continue
        body, bar, perf = line.partition("|")
        long_lines.append(body)
        if bar:
            perf_parts.append(perf)
            in_perf = True
    state = exit_code if exit_code in (OK, WARNING, CRITICAL, UNKNOWN) else UNKNOWN
    output = _clean(first.strip(), _MAX_TEXT)
    if exit_code is not None and exit_code not in (0, 1, 2, 3):
        output = _clean(f"exit code {exit_code}: {output}".strip().rstrip(":"), _MAX_TEXT)
    return {
        "state": state,
        "output": output,
        "long_output": _clean("\n".join(long_lines).strip(), _MAX_LONG_TEXT),
        "perf": parse_perfdata(" ".join(perf_parts)),
    }


def parse_perfdata(text: str) -> dict[str, dict[str, Any]]:
    """Parse perfdata items; an item that does not parse is skipped, never fatal.

    ``value`` is a float, or ``None`` for ``U`` (the plugin could not determine it).
    Thresholds stay strings: they are ranges (``10:``, ``~:20``, ``@5:9``), not numbers.
    """
    perf: dict[str, dict[str, Any]] = {}
    pos = 0
    while len(perf) < _MAX_PERF_ITEMS:
        m = _PERF_ITEM.match(text, pos)
        if m is None:
            # Skip one garbage token and try again, so one bad item does not hide the rest.
            nxt = re.compile(r"\s*\S+").match(text, pos)
            if nxt is None:
                break
            pos = nxt.end()
            continue
        pos = m.end()
        label = m.group("quoted")
        label = label.replace("''", "'") if label is not None else m.group("bare")
        label = _clean(label, _MAX_LABEL)
        item = _parse_item(m.group("rest"))
        if item is not None and label:
            perf[label] = item
    return perf


def _parse_item(rest: str) -> dict[str, Any] | None:
    fields = rest.split(";")
    m = _VALUE.match(fields[0])
    if m is None:
        return None
    value = None if m.group("value") is None else _float(m.group("value"))
    if m.group("value") is not None and value is None:
        return None
    item: dict[str, Any] = {"value": value, "uom": m.group("uom") or ""}
    for key, raw in zip(("warn", "crit"), fields[1:3]):
        if raw:
            item[key] = raw[:32]
    for key, raw in zip(("min", "max"), fields[3:5]):
        number = _float(raw)
        if number is not None:
            item[key] = number
    return item


def _float(text: str) -> float | None:
    """A finite float from a perfdata number (decimal comma accepted), else None."""
    if not _MIN_MAX.match(text):
        return None
    number = float(text.replace(",", "."))
    return number if math.isfinite(number) else None


def _clean(text: str, limit: int) -> str:
    """Drop control characters (terminal escapes from a hostile host) and cap the length."""
    cleaned = "".join(c for c in text if c == "\n" or c == "\t" or c.isprintable())
    return cleaned[:limit]
