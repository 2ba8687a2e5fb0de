"""Turn raw probe counters into the stored sample's derived values (docs/architecture.md).

The probe reports counters (CPU seconds, bytes); rates need two readings.  The previous
stored sample of the same host is the first reading, so CPU percent and byte rates cover the
whole interval between passes, and the probe never has to sleep in the steady state.  How
each section is derived is its family's business (``Family.derive``); this module decides
whether the previous sample can serve as the first reading at all.

Gaps: a missing or too old previous sample, or a changed boot time (a reboot), give every
family ``seconds = None``: no rate, never a negative one or a spike.

Units: ``rx_bps``/``tx_bps`` and ``read_bps``/``write_bps`` are BYTES per second, like the
``*_bytes`` counters beside them.  CPU percent is busy/total over all cores, 0..100.

Pure functions: the caller passes the timestamps, nothing here reads a clock.
"""

from __future__ import annotations

from typing import Any

from collector.metrics.registry import FAMILIES, SECTIONS
from collector.metrics.values import num, section, usable_interval

# btime is computed by the kernel from the wall clock and moves by a second or so under NTP.
BOOT_TIME_TOLERANCE_S = 5.0


def _same_boot(raw: dict, previous: Any) -> bool:
    """False when both samples carry a boot time and they differ: the host rebooted."""
    now_boot = num(section(raw, "system").get("boot_time"))
    prev_boot = num(section(previous, "system").get("boot_time"))
    if now_boot is None or prev_boot is None:
        return True  # cannot tell; falling counters still reveal a reboot
    return abs(now_boot - prev_boot) <= BOOT_TIME_TOLERANCE_S


def probe_params_for(previous: Any, now_ts: float, prev_ts: float | None) -> dict[str, Any]:
    """What the families ask of the probe this pass (the CPU family: sleep or not)."""
    params: dict[str, Any] = {}
    for family in FAMILIES:
        if family.params is not None:
            params.update(family.params(previous, now_ts, prev_ts))
    return params


def derive_sample(raw: dict, previous: dict | None, now_ts: float,
                  prev_ts: float | None) -> dict:
    """The metric part of a stored line from raw (validated) probe output.

    ``previous`` is the last stored sample of the host (or None), taken at ``prev_ts``; the
    caller adds v, ts, host, ok, error and collect.  Raw counters are kept beside the rates
    (``cpu.times``, ``cpu.per_core_times``, net and disk byte counters) for the next pass.
    A malformed ``previous`` (old schema, failed pass) is treated as no previous.
    """
    seconds = usable_interval(now_ts, prev_ts)
    if not isinstance(previous, dict) or not _same_boot(raw, previous):
        seconds = None
    sample: dict[str, Any] = {}
    for name, family in SECTIONS.items():
        if name not in raw:
            continue
        value = raw[name]
        if family.derive is not None and value is not None:
            value = family.derive(value, previous.get(name) if seconds is not None and
                                  isinstance(previous, dict) else None, seconds)
        sample[name] = value
    sample["errors"] = dict(raw.get("errors") or {})
    return sample
