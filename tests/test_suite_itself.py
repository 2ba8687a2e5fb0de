"""The suite does not depend on how it was started: as a background job, SIGINT is ignored.

`nohup bash .ci/test &` starts every process with SIGINT ignored, which children inherit;
the `osmon status --watch` tests end the watch with Ctrl-C and used to hang or fail there.
This runs them in a child pytest started that way.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_watch_tests_pass_with_sigint_ignored_as_in_a_background_job() -> None:
    def ignore_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/test_status_cli.py", "-k", "watch_redraws or watch_piped"],
        cwd=ROOT, capture_output=True, text=True, timeout=150, preexec_fn=ignore_sigint)
    assert "2 passed" in result.stdout, result.stdout[-3000:] + result.stderr[-2000:]
