"""What a pass asks of a host's probe, and how it reads the answer.

The probe's parameters are data (one ``OSMON_PARAMS`` line before its source on stdin), never
shell words: ``remote_command`` is the same fixed string every pass.  The answer is untrusted:
exit status, then JSON, then the schema gate, and nothing of a bad answer goes further than a
reason.
"""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path
from typing import Any

import remote_probe
from collector.config import Config, Host
from collector.metrics.gate import InvalidProbeOutput, validate_probe_output
from collector.metrics.rates import probe_params_for
from collector.transport import host_text, ssh


def probe_params(config: Config, host: Host, previous: dict[str, Any] | None, *,
                 proc_prev: dict[str, Any] | None = None) -> dict[str, Any]:
    """The parameters the probe receives: what to measure on ``host`` this pass.

    The probe sleeps ``cpu_sample_s`` to measure CPU only when the previous sample cannot
    serve as the first reading (first pass, failure, long gap): the steady state never sleeps.
    ``proc_prev`` is the previous pass's process counters (collector.store.proc_counters),
    from which the probe computes per-process CPU percent over the interval between passes.
    """
    params: dict[str, Any] = probe_params_for(previous, time.time(), previous_epoch(previous))
    if proc_prev is not None:
        params["proc_prev"] = proc_prev
    params["network_fs"] = host.network_fs
    params["checks"] = check_params(config, host)
    if params["checks"]:
        params["checks_budget_s"] = checks_budget(config, params["checks"])
    return params


def remote_command(host: Host) -> str:
    """The command run on a host: its interpreter reading the probe from stdin.

    ``host.python`` is validated by the config (absolute path or plain name); it is quoted
    anyway, so no value from the config can ever reach the remote shell as syntax.

    ``-I -S``: the probe is stdlib-only, so ``site`` (and Debian's .pth files) is pure cost,
    about half the probe's CPU on every host every minute (bench/bench_probe.py: 51 -> 25 ms);
    isolated mode also keeps the account's home directory and PYTHON* variables out of
    ``sys.path``, so a stray ``json.py`` in that home cannot replace a module of the probe.
    Both flags exist since Python 3.4.
    """
    return f"{shlex.quote(host.python)} -I -S -"


def check_params(config: Config, host: Host) -> list[dict[str, Any]]:
    """The checks ``host`` must run this pass, as plain data for the probe."""
    return [{"name": c.name, "command": list(c.command), "timeout_s": c.timeout_s,
             "max_output": c.max_output} for c in config.checks_for(host)]


#: The probe runs this many checks side by side (``remote_probe.probe.CHECK_WORKERS``).
CHECKS_SIDE_BY_SIDE = 8


def checks_budget(config: Config, checks: list[dict[str, Any]]) -> float:
    """Wall time for all of a host's checks together: sent to the probe, and added to the
    command step's timeout, so both sides agree on when a check is late.

    Checks run in waves of :data:`CHECKS_SIDE_BY_SIDE`, each as long as the slowest timeout;
    never more than the host's deadline leaves after the SSH steps (the room each check's
    ``timeout_s`` is validated against): a last wave that would not fit is cut short in the
    probe and reported per check, instead of turning the whole host into a ``timeout``.
    """
    if not checks:
        return 0.0
    waves = -(-len(checks) // CHECKS_SIDE_BY_SIDE)
    longest = max(float(c["timeout_s"]) for c in checks)
    settings = config.settings
    room = settings.host_deadline_s - settings.ssh_timeout_s
    return round(max(0.1, min(room, waves * longest + 1.0)), 3)


def probe_stdin(params: dict[str, Any], probe: bytes) -> bytes:
    """The probe's stdin: one line binding ``OSMON_PARAMS``, then the probe source.

    ``json.dumps`` escapes to ASCII and ``repr`` makes it a Python string literal, so nothing in
    the parameters can break out of that line.
    """
    return b"OSMON_PARAMS = " + repr(json.dumps(params)).encode("ascii") + b"\n" + probe


def load_probe() -> bytes:
    """The probe's source, read once per pass and piped to every host."""
    return (Path(remote_probe.__file__).resolve().parent / "probe.py").read_bytes()


def decode_answer(host: Host, result: ssh.CommandResult) -> dict[str, Any]:
    """Exit status, then JSON, then shape: nothing of a bad answer goes further than a reason."""
    if result.exit_status != 0:
        line = host_text.failure_output(result.stderr, result.stdout)
        if result.exit_status == 127:
            message = f"{host.python} not found on the host (exit 127)"
        elif result.exit_status == -1:
            message = "the probe ended without an exit status (killed by a signal?)"
        else:
            message = f"the probe failed with exit status {result.exit_status}"
        raise ssh.SshFailure(ssh.PROBE, f"{message}: {line}" if line else message)
    if not result.stdout.strip():
        line = host_text.failure_output(result.stderr)
        raise ssh.SshFailure(ssh.INVALID_OUTPUT, "no output" + (f" ({line})" if line else ""))
    try:
        obj = json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise ssh.SshFailure(ssh.INVALID_OUTPUT,
                             f"not JSON: {exc.msg} at byte {exc.pos}") from None
    except (ValueError, RecursionError):  # bad UTF-8; absurd nesting
        raise ssh.SshFailure(ssh.INVALID_OUTPUT, "not JSON (bad encoding or nesting)") from None
    try:
        return validate_probe_output(obj)
    except InvalidProbeOutput as exc:
        raise ssh.SshFailure(ssh.INVALID_OUTPUT,
                             f"wrong shape: {host_text.first_line(str(exc).encode())}") from None


def previous_epoch(previous: dict[str, Any] | None) -> float | None:
    """When the previous sample was read (failed samples have no reading)."""
    if not isinstance(previous, dict) or not previous.get("ok"):
        return None
    collect = previous.get("collect")
    epoch = collect.get("epoch") if isinstance(collect, dict) else None
    if isinstance(epoch, bool) or not isinstance(epoch, (int, float)):
        return None
    return float(epoch)
