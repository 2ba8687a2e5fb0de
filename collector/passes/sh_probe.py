"""The shell probe's stdin: the same parameters as the Python probe's, as data for a POSIX sh.

``remote_probe/probe.sh`` runs on hosts without a usable Python.  It reads its parameters the
way its header describes: two shell functions whose bodies are quoted here-documents, put
before the script itself.  A quoted here-document is never expanded by the shell, and every
line of it is ``<key> <value>`` (so none can be the closing word): the values reach the script
as text it compares and passes on, never as code.

- ``osmon_params``: one line per scalar parameter (numbers, ``true``/``false``, paths), and
  ``checks <count>`` when there are checks;
- ``osmon_input``: the checks (``check <name>``, ``check_timeout_s``, ``check_max_output``,
  then one ``check_arg`` per argument: ``check_argb`` with ``\\0ooo`` escapes for one holding a
  line break, which ``printf %b`` undoes) and the previous per-process counters
  (``prev_uptime``, ``prev_boot_id``, ``tick <pid> <starttime> <ticks>``).
"""

from __future__ import annotations

import math
from typing import Any

from collector.passes.probe_source import probe_source

#: The scalar parameters the shell probe understands (remote_probe.probe.DEFAULTS).
SCALARS = ("cpu_sample_s", "network_fs", "statvfs_timeout_s", "top_n", "include_loopback",
           "max_processes", "max_scan_s", "proc_root", "sys_root", "etc_root", "utmp_path",
           "utmp_check_pids", "self_timing", "clk_tck", "page_size", "checks_budget_s",
           "command_lines")
PARAMS_END = b"OSMON_PARAMS_END"
INPUT_END = b"OSMON_INPUT_END"


def load_sh_probe() -> bytes:
    """The shell probe's source (read again when it changed)."""
    return probe_source("probe.sh")


def sh_probe_stdin(params: dict[str, Any], script: bytes) -> bytes:
    """What ``sh -s`` reads on the host: the two parameter functions, then the script."""
    scalars, data = encode_params(params)
    return (_function(b"osmon_params", PARAMS_END, scalars)
            + _function(b"osmon_input", INPUT_END, data) + script)


def _function(name: bytes, end: bytes, lines: list[bytes]) -> bytes:
    for line in lines:  # each line is "key value": none can be a closing word
        if b"\n" in line or b" " not in line:
            raise ValueError(f"not a parameter line: {line[:40]!r}")
    body = b"".join(line + b"\n" for line in lines)
    return name + b"() {\n\t\"$@\" <<'" + end + b"'\n" + body + end + b"\n}\n"


def encode_params(params: dict[str, Any]) -> tuple[list[bytes], list[bytes]]:
    """(osmon_params lines, osmon_input lines) for ``params``; unknown keys are left out, as
    the Python probe ignores them."""
    scalars: list[bytes] = []
    for key in SCALARS:
        value = params.get(key)
        if value is not None:
            scalars.append(key.encode() + b" " + _scalar(key, value))
    data: list[bytes] = []
    checks = params.get("checks")
    if isinstance(checks, list) and checks:
        scalars.append(b"checks " + str(len(checks)).encode())
        for check in checks:
            data.extend(_check_lines(check))
    prev = params.get("proc_prev")
    if isinstance(prev, dict):
        data.extend(_prev_lines(prev))
    return scalars, data


def _scalar(key: str, value: Any) -> bytes:
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, (int, float)):
        return repr(value).encode("ascii")
    text = str(value)
    if "\n" in text or "\0" in text:
        raise ValueError(f"parameter {key} cannot hold a line break or a NUL for the shell probe")
    return text.encode("utf-8", "surrogateescape")


def _check_lines(check: Any) -> list[bytes]:
    """One check; what the shell probe must refuse (no name, a bad command) is sent so that it
    is refused there, named, as the Python probe does."""
    if not isinstance(check, dict):
        return [b"check "]
    name = check.get("name")
    name = name if isinstance(name, str) and "\n" not in name and "\0" not in name else ""
    lines = [b"check " + name.encode("utf-8", "surrogateescape")]
    for key in ("timeout_s", "max_output"):
        value = check.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) \
                and math.isfinite(value):
            lines.append(f"check_{key} {value!r}".encode("ascii"))
    command = check.get("command")
    if not isinstance(command, list) or not command:
        return [*lines, b"check_arg "]
    for arg in command:
        if not isinstance(arg, str) or "\0" in arg:
            lines.append(b"check_arg ")  # refused there: not a non-empty string
        elif "\n" in arg:
            lines.append(b"check_argb " + _octal_escaped(arg.encode("utf-8", "surrogateescape")))
        else:
            lines.append(b"check_arg " + arg.encode("utf-8", "surrogateescape"))
    return lines


def _octal_escaped(raw: bytes) -> bytes:
    """Backslashes and control bytes as ``\\0ooo`` (what ``printf %b`` decodes), the rest as is."""
    return b"".join(b"\\0%03o" % byte if byte < 32 or byte == 92 else bytes((byte,))
                    for byte in raw)


def _prev_lines(prev: dict[str, Any]) -> list[bytes]:
    """The previous pass's ``processes.counters``; malformed entries are left out (for the
    probe they would only mean no previous reading of that pid), a malformed uptime is sent so
    that the probe reports it."""
    uptime = prev.get("uptime")
    ok = isinstance(uptime, (int, float)) and not isinstance(uptime, bool) \
        and math.isfinite(uptime)
    lines = [b"prev_uptime " + (repr(float(uptime)).encode("ascii") if ok else b"invalid")]
    boot_id = prev.get("boot_id")
    if isinstance(boot_id, str) and boot_id.isprintable() and " " not in boot_id and boot_id:
        lines.append(b"prev_boot_id " + boot_id.encode("utf-8", "surrogateescape"))
    ticks = prev.get("ticks")
    if isinstance(ticks, dict):
        for pid, entry in ticks.items():
            if (isinstance(pid, str) and pid.isdigit() and pid.isascii() and type(entry) is list
                    and len(entry) == 2 and all(type(v) is int and v >= 0 for v in entry)):
                lines.append(b"tick %s %d %d" % (pid.encode("ascii"), entry[0], entry[1]))
    return lines
