"""The schema gate: probe output from monitored hosts, which we do not trust, checked once.

:func:`validate_probe_output` returns a cleaned copy that holds only the keys the families
document (:data:`collector.metrics.registry.FAMILIES`, each with its section's check), so
nothing unexpected reaches the stored log, and raises :class:`InvalidProbeOutput` (the
collector records it as error kind ``invalid-output``) when the shape is wrong:

- the top level is not an object, or ``probe`` is not the version we sent;
- a section or field has the wrong type (bool is not a number), a number is not finite, is
  negative where it counts something, or a percentage is outside 0..100;
- a list is absurdly long (more than 4096 disks, interfaces, cores or users, more than 1000
  processes in a top list, more than 100,000 entries in ``processes.counters``);
- a section is missing and ``errors`` does not explain it (a failed family is named there,
  or ``platform`` says the host is not Linux), unless its family is optional (some exist
  only on kernels that have them).
"""

from __future__ import annotations

from typing import Any

from collector.metrics.registry import SECTIONS
from collector.metrics.schema import InvalidProbeOutput, number, record, string_map

PROBE_VERSION = 1
MAX_ERRORS = 4096

#: Keys beside the families' sections: the probe's own timing (``self_timing``).
EXTRA = {"timing": record({"cpu_s": number(unit="s"), "wall_s": number(unit="s")})}
ERRORS = string_map(MAX_ERRORS, key_cap=512, value_cap=1000)

__all__ = ["InvalidProbeOutput", "PROBE_VERSION", "explained", "validate_probe_output"]


def explained(section: str, errors: Any) -> bool:
    """A missing section is fine when its family (or the whole platform) failed: the probe
    says so in ``errors``.  (The alert rules ask too: an optional family's section missing
    and *not* explained means the host no longer has it.)"""
    if not isinstance(errors, dict):
        return False
    return section in errors or "platform" in errors


def validate_probe_output(obj: Any) -> dict[str, Any]:
    """Check untrusted probe output; return a cleaned copy with only known keys.

    Raises InvalidProbeOutput with a reason naming the offending path.
    """
    if not isinstance(obj, dict):
        raise InvalidProbeOutput(f"top level: expected an object, got {type(obj).__name__}")
    version = obj.get("probe")
    if isinstance(version, bool) or version != PROBE_VERSION:
        # Only the type: the value is the host's text, and it would reach the log and the page.
        raise InvalidProbeOutput(f"probe: unsupported version (a {type(version).__name__})")
    errors = ERRORS(obj.get("errors", {}), "errors")
    cleaned: dict[str, Any] = {"probe": PROBE_VERSION}
    for section, family in SECTIONS.items():
        value = obj.get(section)
        if value is None:
            if not family.optional and not explained(section, errors):
                raise InvalidProbeOutput(f"{section}: missing and not explained in errors")
            continue
        assert family.schema is not None
        cleaned[section] = family.schema(value, section)
    for key, check in EXTRA.items():
        if obj.get(key) is not None:
            cleaned[key] = check(obj[key], key)
    cleaned["errors"] = errors
    return cleaned
