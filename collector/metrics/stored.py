"""A stored sample checked on read with the checks that guarded it on write.

A line of the store is ours, but files can be edited by hand, restored from an old backup,
damaged, or written by a newer osmon.  A line that is valid JSON with the wrong shape
(``"cpu": "x"``, ``"ok": "yes"``, no family at all) must not pass for a good sample showing
``-`` everywhere: :func:`check_stored` says what is wrong with it, and :func:`bad_sample`
turns it into the failure line of its host (error kind ``invalid-output``), which every
reader already shows as a host that gave no usable sample.

What is checked: the envelope (``v``, ``ts``, ``host``, ``ok``, ``error``, ``collect``), and
for a good sample every family section present, with the schema gate's own checks of types
and bounds, and at least one of them.  Fields are not *required* on read: a sample stored by
an older osmon, before a family gained a field, is still a good sample.  It costs about what
the gate costs, so it is for the newest sample of a host (``Store.latest``), not for 30-day
exports (whose readers are defensive about every value).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collector import SCHEMA_VERSION
from collector.metrics.registry import SECTIONS
from collector.metrics.schema import Array, Check, InvalidProbeOutput, Record
from collector.times import parse_ts

#: The error kind of a stored line that is not a sample (docs/architecture.md, "The sample").
KIND = "invalid-output"


def _lenient(check: Check | None) -> Check | None:
    """``check`` with every field of every record optional: types and bounds still hold."""
    if isinstance(check, Record):
        fields = {key: _lenient(field) or field for key, field in check.fields.items()}
        return Record(fields, tuple(fields), check.nullable)
    if isinstance(check, Array):
        return Array(_lenient(check.item) or check.item, check.max_items, check.length,
                     check.nullable)
    return check


_CHECKS: dict[str, Check | None] = {section: _lenient(f.schema) for section, f in SECTIONS.items()}


def check_stored(sample: Any) -> str | None:
    """Why ``sample`` (one decoded line) is not a sample osmon could have written, or None."""
    if not isinstance(sample, Mapping):
        return "not an object"
    if sample.get("v") != SCHEMA_VERSION or isinstance(sample.get("v"), bool):
        return f"v: expected {SCHEMA_VERSION}"
    ts = sample.get("ts")
    try:
        parse_ts(ts if isinstance(ts, str) else "")
    except ValueError:
        return "ts: not a UTC time"
    if not isinstance(sample.get("host"), str):
        return "host: expected a string"
    ok = sample.get("ok")
    if not isinstance(ok, bool):
        return "ok: expected true or false"
    if not isinstance(sample.get("collect", {}), Mapping):
        return "collect: expected an object"
    error = sample.get("error")
    described = (isinstance(error, Mapping) and isinstance(error.get("kind"), str)
                 and isinstance(error.get("message"), str))
    if (not ok or error is not None) and not described:
        return "error: expected an object with kind and message"
    if not ok:
        return None
    errors = sample.get("errors", {})
    if not isinstance(errors, Mapping):
        return "errors: expected an object"
    found = 0
    for section, check in _CHECKS.items():
        value = sample.get(section)
        if value is None:
            continue
        found += 1
        try:
            if check is not None:
                check(value, section)
        except InvalidProbeOutput as exc:
            return exc.reason
    return None if found or errors else "no section of any family"


def bad_sample(sample: Any, reason: str) -> dict[str, Any]:
    """The failure line standing for a stored line of the wrong shape (its time kept when it
    has one, so the host's age is still right)."""
    source = sample if isinstance(sample, Mapping) else {}
    ts, host = source.get("ts"), source.get("host")
    return {"v": SCHEMA_VERSION, "ts": ts if isinstance(ts, str) else "",
            "host": host if isinstance(host, str) else "", "ok": False,
            "error": {"kind": KIND, "message": f"the stored sample has the wrong shape ({reason})"},
            "collect": {}}
