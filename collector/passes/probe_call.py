"""What a pass asks of a host's probe, and how it reads the answer.

The probe's parameters are data (one ``OSMON_PARAMS`` line before the Python probe's source on
stdin; here-documents before the shell probe's, see :mod:`collector.passes.sh_probe`), never
shell words: ``remote_command`` is one fixed string per host, the same every pass.  The answer
is untrusted: exit status, then JSON, then the schema gate, and nothing of a bad answer goes
further than a reason.
"""

from __future__ import annotations

import json
import logging
import math
import shlex
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from collector.config import Config, Host
from collector.metrics.gate import InvalidProbeOutput, validate_probe_output
from collector.metrics.rates import probe_params_for
from collector.passes.probe_source import probe_source
from collector.passes.sh_probe import sh_probe_stdin
from collector.store import probe_choice
from collector.transport import host_text, ssh

log = logging.getLogger(__name__)


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
    params["command_lines"] = host.command_lines
    params["checks"] = check_params(config, host)
    if params["checks"]:
        params["checks_budget_s"] = checks_budget(config, params["checks"])
    return params


#: The first line of stdin for each probe (see :func:`remote_command`); ``resident`` is the
#: Python probe of ``osmon run``'s resident sessions.
PYTHON, SHELL, RESIDENT = "python", "sh", "resident"
#: How the resident Python probe is started: it reads "<length>\n<probe.py>" from stdin and
#: runs it as ``osmon-resident`` (``remote_probe.probe.serve``), stdin still open for the
#: requests.  No quote in it, so the whole remote command needs none either.
RESIDENT_BOOTSTRAP = ("import sys;b=sys.stdin.buffer;exec(b.read(int(b.readline(32))),"
                      "dict(__name__=sys.argv[1],OSMON_STDIN=b))")
#: The argument that tells the probe it is resident (``remote_probe.probe.RESIDENT_NAME``).
RESIDENT_NAME = "osmon-resident"
#: The host-side limit outlasts the collector's own wait for the command by this much, so the
#: collector's "no answer" is what a slow probe gets, and the kill only what outlives it.
REMOTE_GRACE_S = 2


def remote_command(config: Config, host: Host) -> str:
    """The command run on a host: one fixed string per host, whatever the pass sends (it
    depends only on the config), so it can be pinned in ``authorized_keys`` with
    ``command="..."``.

    Everything that varies per pass is on stdin, the probe included: its first line names the
    interpreter (``python`` or ``sh``, or ``resident`` for a resident session of ``osmon
    run``: :func:`_resident_start`) and the rest is that interpreter's input.  ``read`` takes
    one byte at a time from a pipe, so the interpreter starts exactly at the probe.  So one
    command serves every probe and both modes, and the shell probe can follow a failed Python
    start on the same connection.  It runs under ``sh -c`` so that a login shell that is not
    POSIX (fish, csh) does not matter, and ``exec`` makes that shell the session's process
    (one process less on the host; the leader of the process group the resident watchdog
    kills).  The string holds no double quote, so it goes into ``command="..."`` as it is.

    ``host.python`` is validated by the config (absolute path or plain name); it is escaped
    anyway (:func:`sh_word`), so no value from the config can ever reach the remote shell as
    syntax.

    ``-I -S``: the probe is stdlib-only, so ``site`` (and Debian's .pth files) is pure cost,
    about half the probe's CPU on every host every minute (bench/bench_probe.py: 51 -> 25 ms);
    isolated mode also keeps the account's home directory and PYTHON* variables out of
    ``sys.path``, so a stray ``json.py`` in that home cannot replace a module of the probe.
    Both flags exist since Python 3.4.

    The limit: closing the SSH connection does not stop the remote command (sshd sends no
    signal to a session without a terminal), and the probe cannot police itself when it is
    what hangs (a dead NFS ``statvfs``, an interpreter that never reads its input).  So the
    interpreter runs under ``timeout -s KILL`` (coreutils, and BusyBox since 1.30), killed
    :data:`REMOTE_GRACE_S` after the collector stops waiting for it: nothing it started in
    its process group outlives the host's deadline by more than that.  A host without
    ``timeout``, or whose ``timeout`` does not take this syntax (BusyBox before 1.30: it
    exits 127 without reading the probe), runs the interpreter as before.
    """
    limit = math.ceil(config.settings.ssh_timeout_s
                      + checks_budget(config, check_params(config, host))) + REMOTE_GRACE_S
    interpreter = sh_word(host.python)
    python = _start(interpreter, "-I -S -", limit)
    shell = _start("sh", "-s", limit)
    resident = _resident_start(interpreter,
                               math.ceil(config.settings.ssh_timeout_s) + REMOTE_GRACE_S)
    script = (f"read -r osmon_probe || exit 2; case $osmon_probe in "
              f"{PYTHON}) {python} ;; {SHELL}) {shell} ;; {RESIDENT}) {resident} ;; esac; "
              "echo osmon: unknown probe language >&2; exit 2")
    assert "'" not in script and '"' not in script  # one plain quoting level
    return "exec sh -c " + shlex.quote(script)


def sh_word(text: str) -> str:
    """``text`` as one shell word, without quotes: every character but letters, digits and
    ``_.,/+-`` behind a backslash.  The remote command then holds no quote at all, so it
    goes into ``command="..."`` of authorized_keys as it is."""
    return "".join(c if c.isalnum() and c.isascii() or c in "_.,/+-" else "\\" + c
                   for c in text)


def _resident_start(interpreter: str, limit: int) -> str:
    """The resident probe's start, under a start-up limit only (docs/architecture.md,
    "Resident sessions").

    ``timeout`` cannot stay around a resident probe (it would kill it after ``limit``), and a
    probe that forks to leave it behind loses its stdin: sshd closes the command's input as
    soon as the process it started exits.  So the shell sshd started becomes the interpreter
    (``exec``: the session's process, leader of its process group, with nothing waiting
    beside it) after starting a watchdog in the background: it sleeps ``limit`` seconds,
    then kills the whole process group (sshd starts every command with setsid).  The
    watchdog is the interpreter's child, and its pid is the probe's argument after its name:
    the probe stops it (SIGTERM, whose trap ends the sleep too) and reaps it once it serves
    and has armed its own alarm.  An interpreter that never gets there (one that hangs before
    reading) is killed at ``limit``.  Each trap ends the watchdog, so a SIGTERM however early
    never lets it reach its kill; a host without ``sleep`` gets no start-up limit (``wait``
    then fails, and the kill needs it to succeed).  The watchdog's stdio is /dev/null: sshd
    closes the channel when the probe ends, not when the watchdog does.
    """
    boot = sh_word(RESIDENT_BOOTSTRAP)
    watchdog = (f"( trap exit TERM; sleep {limit} & trap kill\\ $!\\;exit TERM; "
                "wait $! && kill -9 -$$ ) </dev/null >/dev/null 2>&1 &")
    return f"{watchdog} exec {interpreter} -I -S -c {boot} {RESIDENT_NAME} $!"


def _start(interpreter: str, arguments: str, limit: int) -> str:
    """How the remote command starts one probe's interpreter on the rest of stdin: under
    ``timeout -s KILL`` where the host has one that takes this syntax, else directly.

    `command -v` is a builtin (no process); a missing interpreter is left to `exec`, whose
    "not found" is the message the admin reads.  ``timeout`` of BusyBox before 1.30 exits 127
    on this syntax without reading stdin: the interpreter then runs directly.  An exit of 127
    can also be the interpreter's own (a wrapper script whose target is gone): only when
    ``timeout -s KILL 1 true`` fails too (the old syntax; checked on that rare path only) is
    the interpreter started again, so the probe never runs twice."""
    run = f"{interpreter} {arguments}"
    return (f"command -v timeout >/dev/null 2>&1 && command -v {interpreter} >/dev/null 2>&1 "
            f"&& {{ timeout -s KILL {limit} {run}; s=$?; [ $s -eq 127 ] || exit $s; "
            f"timeout -s KILL 1 true >/dev/null 2>&1 && exit 127; }}; exec {run}")


def python_stdin(params: dict[str, Any], probe: bytes) -> bytes:
    """The stdin of a Python probe run: the dispatch line, then :func:`probe_stdin`."""
    return PYTHON.encode() + b"\n" + probe_stdin(params, probe)


def resident_stdin(probe: bytes) -> bytes:
    """What starts a resident session: the dispatch line and the length-prefixed probe; the
    requests follow, one JSON line each (:mod:`collector.transport.resident`)."""
    return RESIDENT.encode() + b"\n" + str(len(probe)).encode() + b"\n" + probe


def shell_stdin(params: dict[str, Any], script: bytes) -> bytes:
    """The stdin of a shell probe run: the dispatch line, then the parameters and probe.sh."""
    return SHELL.encode() + b"\n" + sh_probe_stdin(params, script)
def needs_shell_probe(result: ssh.CommandResult) -> bool:
    """True when the Python probe could not start for want of a usable Python: the
    interpreter is missing or not executable (exit 127 or 126), or it is too old to read the
    probe (before 3.6: a SyntaxError, or before 3.4 an unknown ``-I``), with no answer."""
    if result.exit_status in (126, 127):
        return True
    if result.exit_status not in (1, 2) or result.stdout.strip():
        return False
    return b"SyntaxError" in result.stderr or b"nknown option" in result.stderr


class ProbeRun:
    """Which probe a remote host runs this pass, and what to remember of it.

    ``probe = "auto"``: the shell probe at once while state/probe-choice remembers that the
    host has no usable Python, else the Python probe, followed on the same connection by the
    shell probe when the host turns out to have no usable Python (needs_shell_probe).  A
    shell probe that answered is remembered (a day, collector.store.probe_choice); a Python
    probe that started forgets an expired choice.  ``state_dir`` is None for ``osmon check``,
    which remembers nothing.  ``python_known``: the host's Python answered already (a resident
    session of ``osmon run``), so the remembered choice is not read.
    """

    def __init__(self, config: Config, host: Host, state_dir: Path | None, *,
                 python_known: bool = False) -> None:
        self.config = config
        self.host = host
        self.state_dir = state_dir
        self.probe = SHELL if host.probe == SHELL else PYTHON
        self.fell_back = False
        if host.probe == "auto" and state_dir is not None and not host.local and \
                not python_known and \
                probe_choice.remembered(state_dir, host.name, time.time()) == SHELL:
            self.probe = SHELL

    def execute(self, session: ssh.Session, params: dict[str, Any], python_probe: bytes,
                sh_probe: bytes) -> ssh.CommandResult:
        """Run the probe (and the fallback) on ``session``; the probe that answered is in
        ``self.probe`` afterwards."""
        command = remote_command(self.config, self.host)
        extra_s = params.get("checks_budget_s", 0.0)
        if self.probe == SHELL:
            return session.run(command, shell_stdin(params, sh_probe), extra_s=extra_s)

        def retry(result: ssh.CommandResult) -> bytes | None:
            if self.host.probe != "auto" or not needs_shell_probe(result):
                return None
            self.probe, self.fell_back = SHELL, True
            return shell_stdin(params, sh_probe)

        return session.run(command, python_stdin(params, python_probe), extra_s=extra_s,
                           retry=retry)

    def keep_choice(self, writing: Callable[[], AbstractContextManager[Any]] = nullcontext) -> None:
        """After a good answer: remember a fallback, forget a choice the host outgrew.

        ``writing`` guards the write like the pass's other state writes of a worker (it may
        refuse once the pass has given up on the host and released the data lock)."""
        if self.host.probe != "auto" or self.state_dir is None or self.host.local:
            return
        try:
            with writing():
                if self.fell_back:
                    probe_choice.remember_shell(self.state_dir, self.host.name, time.time())
                elif self.probe == PYTHON:
                    probe_choice.forget(self.state_dir, self.host.name)
        except OSError as exc:  # costs one failed Python start next pass, nothing more
            log.error("cannot keep the probe choice of %s: %s", self.host.name, exc)


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
    """The probe's source, piped to every host (read again when it changed)."""
    return probe_source("probe.py")


def decode_answer(host: Host, result: ssh.CommandResult, probe: str = PYTHON) -> dict[str, Any]:
    """Exit status, then JSON, then shape: nothing of a bad answer goes further than a reason."""
    if result.exit_status != 0:
        line = host_text.failure_output(result.stderr, result.stdout)
        if result.exit_status == 127:
            what = host.python if probe == PYTHON else "sh"
            message = f"{what} not found on the host (exit 127)"
        elif result.exit_status == 137:  # 128 + SIGKILL: what timeout -s KILL returns
            message = "the probe was killed at its host-side time limit (exit 137)"
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
