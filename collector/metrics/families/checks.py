"""checks: results of Nagios-plugin-API checks run by the probe, one chart per check.

A check's command reaches the host as data (an argv list inside the probe's parameters) and
runs there without a shell; only the admin's own config decides what runs.  The host answers
with an exit code and capped raw output, which is untrusted and parsed here by
:mod:`collector.metrics.nagios`.  Checks are the family whose values are states
(OK/WARNING/CRITICAL/UNKNOWN), with fixed levels: a plugin must say WARNING or CRITICAL twice
in a row; UNKNOWN is judged a warning (the check is broken, the service may be fine).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from collector.metrics.exports import gauge_series
from collector.metrics.family import (
    BYTES,
    NUMBER,
    PERCENT,
    SECONDS,
    ChartSpec,
    Family,
    Judged,
    Level,
    Point,
    Sample,
    ThresholdSpec,
    Values,
)
from collector.metrics.nagios import UNKNOWN, parse_output
from collector.metrics.schema import bounded_object, clean_text
from collector.metrics.values import num, section
from collector.names import SAFE_NAME

CHART_PREFIX = "check."
#: Nagios-style check outputs (up to `max_output`, 64 KiB by default, each): generous, yet
#: below the transport's 4 MiB stdout cap so one section cannot be the whole answer.
CHECKS_MAX_BYTES = 2 * 1024 * 1024
#: [[checks]] have no ``for`` key: a plugin must say WARNING/CRITICAL twice in a row.
CHECK_FOR_PASSES = 2
CHECK_STATE_NAMES = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}
#: UNKNOWN is judged at warning level: the check is broken, the service may be fine.
_CHECK_SCORE = {0: 0.0, 1: 1.0, 2: 2.0, 3: 1.0}
_MAX_RAW_OUTPUT = 1 << 20

# Nagios units of measure (Monitoring Plugins guidelines) -> (unit kind, factor to base unit).
_UOM: dict[str, tuple[str, float]] = {
    "%": (PERCENT, 1.0), "s": (SECONDS, 1.0), "ms": (SECONDS, 1e-3), "us": (SECONDS, 1e-6),
    "B": (BYTES, 1.0), "KB": (BYTES, 1024.0), "MB": (BYTES, 1024.0 ** 2),
    "GB": (BYTES, 1024.0 ** 3), "TB": (BYTES, 1024.0 ** 4),
}


# -- results ---------------------------------------------------------------------------------------
def derive_checks(raw: Any, expected: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Stored check results, one per expected check: a missing answer is UNKNOWN, not silence."""
    answers = raw if isinstance(raw, dict) else {}
    results: dict[str, dict[str, Any]] = {}
    for check in expected:
        name = check["name"]
        results[name] = _derive_one(answers.get(name))
    return results


def _derive_one(answer: Any) -> dict[str, Any]:
    """One probe answer (``exit``, ``output``, ``stderr``, ``duration_s``, ``error``) as stored.

    ``error`` (not runnable, timed out, flooded, killed) makes the check UNKNOWN with that
    reason, whatever it printed.  A plugin that printed nothing on stdout is described by the
    last line of its stderr (a traceback's last line says what went wrong), as Nagios would
    otherwise show an empty status.
    """
    if not isinstance(answer, dict):
        return _unknown("the host returned no result for this check")
    output = answer.get("output")
    output = clean_text(output, _MAX_RAW_OUTPUT) if isinstance(output, str) else ""
    stderr = answer.get("stderr")
    stderr_lines = (clean_text(stderr, _MAX_RAW_OUTPUT).strip().splitlines()
                    if isinstance(stderr, str) else [])
    if not output.strip() and stderr_lines:
        output = f"(no output; stderr: {stderr_lines[-1].strip()[:300]})"
    duration = answer.get("duration_s")
    duration = round(float(duration), 3) if isinstance(duration, (int, float)) else None
    error = answer.get("error")
    error = clean_text(error, 1000) if isinstance(error, str) else None
    if error:
        first_line = output.split("\n", 1)[0].strip()
        result = _unknown(f"{error[:200]}" + (f" (output: {first_line[:200]})" if first_line
                                               else ""))
    else:
        code = answer.get("exit")
        result = parse_output(code if isinstance(code, int) and not isinstance(code, bool)
                              else None, output)
    result["duration_s"] = duration
    return result


def _unknown(message: str) -> dict[str, Any]:
    return {"state": UNKNOWN, "output": message, "long_output": "", "perf": {}}


# -- charts ---------------------------------------------------------------------------------------
def _perf(sample: Sample, name: str) -> Mapping[str, Any]:
    check = section(sample, "checks").get(name)
    perf = check.get("perf") if isinstance(check, Mapping) else None
    return perf if isinstance(perf, Mapping) else {}


def check_chart(name: str) -> ChartSpec:
    """The chart of one check: a line per perfdata label, in its unit's base (ms -> s).

    ``ValueError`` for a name that could not be a check's (it is used in URLs)."""
    if not SAFE_NAME.match(name):
        raise ValueError(f"unknown metric {CHART_PREFIX + name!r}")
    def lines(sample: Sample) -> Values:
        out: Values = {}
        for label, item in _perf(sample, name).items():
            if not isinstance(label, str) or not isinstance(item, Mapping):
                continue
            value = num(item.get("value"))
            if value is not None:
                uom = item.get("uom")
                factor = _UOM.get(uom, (NUMBER, 1.0))[1] if isinstance(uom, str) else 1.0
                out[label] = value * factor
        return out

    def unit_of(sample: Sample) -> str | None:
        for item in _perf(sample, name).values():
            if isinstance(item, Mapping) and isinstance(item.get("uom"), str):
                return _UOM.get(item["uom"], (NUMBER, 1.0))[0]
        return None

    return ChartSpec(f"Check {name}", NUMBER, lines, lambda values: next(iter(values.values()),
                                                                          None), unit_of=unit_of)


def chart_names(sample: Sample) -> list[str]:
    """Checks of a sample whose names are safe in a URL, in the sample's order."""
    return [n for n in section(sample, "checks") if isinstance(n, str) and SAFE_NAME.match(n)]


# -- judging --------------------------------------------------------------------------------------
def check_states(sample: Sample) -> list[Judged] | None:
    """Plugin states: WARNING and CRITICAL are problems, UNKNOWN a warning."""
    checks = sample.get("checks")
    if not isinstance(checks, Mapping):
        return None
    judged = []
    for name, result in checks.items():
        state = result.get("state") if isinstance(result, Mapping) else None
        if not isinstance(name, str) or isinstance(state, bool) or state not in _CHECK_SCORE:
            continue
        output = result.get("output")
        lines = output.strip().splitlines() if isinstance(output, str) else []
        judged.append(Judged(name, float(state), _CHECK_SCORE[state], lines[0] if lines else ""))
    return judged


# -- exported series -------------------------------------------------------------------------------
def _results(sample: Sample) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for name, result in section(sample, "checks").items():
        if isinstance(name, str) and isinstance(result, Mapping):
            yield name, result


def state_points(sample: Sample) -> Iterator[Point]:
    for name, result in _results(sample):
        state = result.get("state")
        if state in CHECK_STATE_NAMES and not isinstance(state, bool):
            yield (name,), float(state)


def duration_points(sample: Sample) -> Iterator[Point]:
    for name, result in _results(sample):
        seconds = num(result.get("duration_s"))
        if seconds is not None:
            yield (name,), seconds


def perf_points(sample: Sample) -> Iterator[Point]:
    """Every perfdata value as the plugin gave it; ``uom`` says its unit ("" for a count)."""
    for name, result in _results(sample):
        perf = result.get("perf")
        for label, item in (perf.items() if isinstance(perf, Mapping) else ()):
            value = num(item.get("value")) if isinstance(item, Mapping) else None
            if isinstance(label, str) and value is not None:
                uom = item.get("uom")
                yield (name, label, uom if isinstance(uom, str) else ""), value


FAMILY = Family(
    name="check",
    doc="Nagios plugin results: state 0-3, output, performance data (checks.<name>)",
    section="checks",
    schema=bounded_object(CHECKS_MAX_BYTES),
    optional=True,
    stored=(("checks.<name>", "object: the result of one [[checks]] entry", ""),
            ("checks.<name>.state", "integer 0..3 (OK, WARNING, CRITICAL, UNKNOWN)", ""),
            ("checks.<name>.output", "string: the first line of the plugin's output", ""),
            ("checks.<name>.long_output", "string: the other lines", ""),
            ("checks.<name>.perf", "object: label -> {value, uom, warn, crit, min, max}", ""),
            ("checks.<name>.duration_s", "number >= 0 or null", "s")),
    chart_prefix=CHART_PREFIX,
    chart_for=check_chart,
    chart_names=chart_names,
    thresholds=ThresholdSpec(check_states, Level(1.0, 2.0, CHECK_FOR_PASSES), unit="",
                             configurable=False, states=CHECK_STATE_NAMES, item_label="check"),
    exported=(
        gauge_series("osmon_check_state", "State of the check's last run: 0 OK, 1 WARNING, "
                     "2 CRITICAL, 3 UNKNOWN (Nagios plugin API).", state_points, ("check",)),
        gauge_series("osmon_check_perf", "Performance data of the check's last run, in the "
                     "plugin's unit of measure (label uom).", perf_points,
                     ("check", "label", "uom")),
        gauge_series("osmon_check_duration_seconds", "How long the check's last run took.",
                     duration_points, ("check",)),
    ),
)
