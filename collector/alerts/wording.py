"""How alerts read: values with their units, labels, problem and recovery messages.

Pure text functions, shared by the rule engine (:mod:`collector.alerts.rules`), the e-mail
(:mod:`collector.alerts.mail`) and silences.  Host text is untrusted: :func:`clean` makes it one
bounded line without control characters before it reaches a message, the state or a page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from collector.metrics.family import HOURS, ThresholdSpec
from collector.metrics.registry import BY_NAME
from collector.metrics.values import hours_text

if TYPE_CHECKING:
    from collector.alerts.rules import Reading

#: Host text in messages and alert state is cut at this length.
MAX_TEXT = 300


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return ""
    if unit == HOURS:
        return hours_text(value)
    text = f"{round(value, 2):g}" if unit == "/core" else f"{round(value, 1):g}"
    return f"{text}{unit}"


def spec_of(metric: str) -> ThresholdSpec | None:
    family = BY_NAME.get(metric)
    return family.thresholds if family is not None else None


def state_names(metric: str) -> Mapping[int, str]:
    """value -> word for a family whose values are states (checks), else empty."""
    spec = spec_of(metric)
    return spec.states if spec is not None else {}


def label(metric: str, item: str | None) -> str:
    return metric if item is None else f"{metric} {item}"


def metric_message(host: str, reading: Reading, level: str | None,
                    threshold: float | None) -> str:
    states = state_names(reading.metric)
    if states:
        state = states.get(int(reading.value), "?")
        return f"{label(reading.metric, reading.item)} on {host} is {state}: " \
               f"{reading.detail}".rstrip(": ")
    at = "under" if reading.lower else "at"
    limit = f" ({level} {at} {format_value(threshold, reading.unit)})" if level else ""
    spec = spec_of(reading.metric)
    if spec is not None and spec.says is not None:
        return f"{label(reading.metric, reading.item)} on {host} " \
               f"{spec.says(reading.value, reading.detail)}{limit}"
    return f"{label(reading.metric, reading.item)} on {host} is at " \
           f"{format_value(reading.value, reading.unit)}{limit}"


def recovery_message(host: str, reading: Reading) -> str:
    states = state_names(reading.metric)
    if states:
        return f"{label(reading.metric, reading.item)} on {host} is {states.get(0, 'OK')} " \
               f"again: {reading.detail}".rstrip(": ")
    spec = spec_of(reading.metric)
    if spec is not None and spec.clears is not None:
        return f"{label(reading.metric, reading.item)} on {host} " \
               f"{spec.clears(reading.value, reading.detail)}"
    return (f"{label(reading.metric, reading.item)} on {host} is back to "
            f"{format_value(reading.value, reading.unit)}")


def error_of(sample: Mapping[str, Any]) -> dict[str, str]:
    error = sample.get("error")
    if not isinstance(error, Mapping):
        return {"kind": "unknown", "message": "failed sample without an error"}
    kind = error.get("kind")
    message = error.get("message")
    return {"kind": clean(kind) if isinstance(kind, str) else "unknown",
            "message": clean(message) if isinstance(message, str) else ""}


def clean(text: str) -> str:
    """Untrusted text from a host: one line, no control characters, bounded."""
    flat = text if text.isprintable() else "".join(ch if ch.isprintable() else " "
                                                   for ch in text)
    return " ".join(flat.split())[:MAX_TEXT]
