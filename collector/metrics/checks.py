"""Custom checks: what the collector sends to a host, and what it makes of the answer.

A check's command reaches the host as data (an argv list inside the probe's parameters) and runs
there without a shell; only the admin's own config decides what runs.  The host answers with an
exit code and capped raw output, which is untrusted and parsed here by :mod:`collector.nagios`.
"""

from __future__ import annotations

from typing import Any

from collector.config import Config, Host
from collector.metrics.nagios import UNKNOWN, parse_output
from collector.metrics.schema import clean_text

_MAX_RAW_OUTPUT = 1 << 20


def check_params(config: Config, host: Host) -> list[dict[str, Any]]:
    """The checks ``host`` must run this pass, as plain data for the probe."""
    return [{"name": c.name, "command": list(c.command), "timeout_s": c.timeout_s,
             "max_output": c.max_output} for c in config.checks_for(host)]


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
