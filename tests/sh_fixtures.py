"""Running remote_probe/probe.sh under the real shells it must support, as the collector feeds it.

``SHELLS`` names three set-ups, each a real shell with real tools:

- ``busybox``: BusyBox ash, with a PATH that holds only BusyBox applets (``busybox --install
  -s`` into a folder of this run), so no GNU tool is used by accident;
- ``dash``: Debian's dash with Debian's PATH (GNU coreutils, mawk);
- ``bash-posix``: ``bash --posix`` with the BusyBox applets.

:func:`run_sh_probe` pipes what the collector sends after its dispatch line
(collector.passes.sh_probe.sh_probe_stdin) into ``<shell> -s`` and returns the parsed answer.
Nothing skips: without ``busybox`` (Debian: ``busybox``; .ci/test installs it) it fails saying so.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from collector.passes.sh_probe import load_sh_probe, sh_probe_stdin

SCRIPT = load_sh_probe()
SHELLS = ("busybox", "dash", "bash-posix")
_APPLETS: Path | None = None


def busybox() -> str:
    path = shutil.which("busybox")
    if path is None:
        raise RuntimeError("busybox is missing: these tests run the shell probe under BusyBox "
                           "(apt-get install busybox; .ci/test installs it)")
    return path


def applets() -> Path:
    """A folder of this test run holding only BusyBox's applets (made once)."""
    global _APPLETS
    if _APPLETS is None:
        folder = Path(tempfile.mkdtemp(prefix="osmon-busybox-"))
        atexit.register(shutil.rmtree, folder, True)
        subprocess.run([busybox(), "--install", "-s", str(folder)], check=True, timeout=60)
        _APPLETS = folder
    return _APPLETS


def shell_command(shell: str, path_prefix: Path | None = None) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) to run ``<shell> -s`` in one of SHELLS; ``path_prefix`` (a folder of
    fake tools) goes first in PATH."""
    env = {"HOME": "/", "LANG": "C.UTF-8"}
    if shell == "busybox":
        argv, path = [busybox(), "sh", "-s"], str(applets())
    elif shell == "dash":
        argv, path = ["/usr/bin/dash", "-s"], "/usr/local/bin:/usr/bin:/bin"
    elif shell == "bash-posix":
        argv, path = ["/bin/bash", "--posix", "-s"], str(applets())
    else:
        raise ValueError(shell)
    env["PATH"] = f"{path_prefix}:{path}" if path_prefix is not None else path
    return argv, env


def run_sh_probe(shell: str, params: dict[str, Any], *, path_prefix: Path | None = None,
                 timeout: float = 60, cwd: str | os.PathLike[str] | None = None,
                 ) -> dict[str, Any]:
    """The shell probe's answer (parsed) for ``params``, run as the collector runs it."""
    argv, env = shell_command(shell, path_prefix)
    done = subprocess.run(argv, input=sh_probe_stdin(params, SCRIPT), capture_output=True,
                          env=env, timeout=timeout, cwd=cwd or "/")
    assert done.returncode == 0, (shell, done.returncode, done.stderr[-2000:])
    try:
        return json.loads(done.stdout)
    except ValueError as exc:
        raise AssertionError(f"{shell}: not JSON ({exc}): {done.stdout[:3000]!r} "
                             f"stderr {done.stderr[-2000:]!r}") from None


def fake_df(folder: Path, statvfs: dict[str, list[int]], hang: tuple[str, ...] = ()) -> Path:
    """A `df` for fixture trees: `df -P -k MOUNT...` answers from harness.json's statvfs
    table ({mount: [frsize, blocks, bfree, bavail]}) as a real df would, an unknown mount as
    a real df does (an error line, status 1); a mount in ``hang`` never answers (a dead NFS
    server).  Written in POSIX sh, so it runs with the BusyBox PATH too."""
    folder.mkdir(parents=True, exist_ok=True)
    pid_file = _quote(str(folder / "hung.pid"))
    cases = [f"\t{_quote(mount)}) echo $$ >{pid_file}; exec sleep 60 ;;" for mount in hang]
    for mount, (frsize, blocks, bfree, bavail) in statvfs.items():
        total, used, avail = (blocks * frsize // 1024, (blocks - bfree) * frsize // 1024,
                              bavail * frsize // 1024)
        capacity = -(-used * 100 // (used + avail)) if used + avail else 0
        line = f"fixturedev {total} {used} {avail} {capacity}% {mount}"
        cases.append(f"\t{_quote(mount)}) printf '%s\\n' {_quote(line)} ;;")
    body = "\n".join(cases)
    script = f"""#!/bin/sh
# fake df of the osmon tests: sizes from a fixture's harness.json
while [ $# -gt 0 ]; do case $1 in -P|-k) shift ;; --) shift; break ;; *) break ;; esac; done
echo 'Filesystem     1024-blocks      Used Available Capacity Mounted on'
rc=0
for m in "$@"; do
	case $m in
{body}
	*) echo "df: $m: No such file or directory" >&2; rc=1 ;;
	esac
done
exit $rc
"""
    tool = folder / "df"
    tool.write_text(script, encoding="utf-8")
    tool.chmod(0o755)
    return folder


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"
