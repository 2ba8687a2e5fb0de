"""Choosing a host's probe: the remembered shell choice, the fallback rule, the stdin encoding.

The live halves (a real sshd, a missing Python) are in tests/test_probe_sh_live.py; these are
the pure parts, each with the case a user would notice.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sh_fixtures import SHELLS, shell_command

from collector.passes import sh_probe
from collector.passes.probe_call import needs_shell_probe
from collector.store import probe_choice
from collector.transport.ssh import CommandResult

DAY = probe_choice.RECHECK_S


def result(status: int, stdout: bytes = b"", stderr: bytes = b"") -> CommandResult:
    return CommandResult(stdout, stderr, status, 0.1, 0.0)


def test_a_remembered_shell_choice_lasts_a_day(tmp_path: Path) -> None:
    assert probe_choice.remembered(tmp_path, "tiny", 1000.0) is None
    probe_choice.remember_shell(tmp_path, "tiny", 1000.0)
    assert probe_choice.remembered(tmp_path, "tiny", 1000.0 + DAY - 1) == "sh"
    assert probe_choice.remembered(tmp_path, "tiny", 1000.0 + DAY + 1) is None
    assert probe_choice.remembered(tmp_path, "tiny", 900.0) is None  # the clock went back
    assert probe_choice.remembered(tmp_path, "other", 1000.0) is None
    probe_choice.forget(tmp_path, "tiny")
    probe_choice.forget(tmp_path, "tiny")  # nothing to forget is fine
    assert probe_choice.remembered(tmp_path, "tiny", 1000.0) is None


@pytest.mark.parametrize("content", [b"{not json", b'{"version": 1, "probe": "perl", '
                                     b'"since": 1}', b'{"version": 9}', b"\xff\xfe"])
def test_a_damaged_choice_file_only_costs_a_python_start(tmp_path: Path, content: bytes,
                                                         caplog: pytest.LogCaptureFixture,
                                                         ) -> None:
    path = probe_choice.path_for(tmp_path, "tiny")
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    assert probe_choice.remembered(tmp_path, "tiny", 10.0) is None
    assert str(path) in caplog.text
    probe_choice.remember_shell(tmp_path, "tiny", 10.0)  # and the next answer rebuilds it
    assert probe_choice.remembered(tmp_path, "tiny", 11.0) == "sh"


@pytest.mark.parametrize(("answer", "fallback"), [
    (result(127, stderr=b"sh: 1: exec: python3: not found\n"), True),
    (result(126, stderr=b"sh: 1: exec: /usr/bin/python3: Permission denied\n"), True),
    (result(1, stderr=b'  File "<stdin>", line 90\nSyntaxError: invalid syntax\n'), True),
    (result(2, stderr=b"Unknown option: -I\nusage: python [option] ...\n"), True),
    (result(0, stdout=b'{"probe": 1}'), False),
    (result(1, stderr=b"Traceback...\nMemoryError\n"), False),  # a Python that works
    (result(1, stdout=b'{"probe": 1', stderr=b"SyntaxError"), False),  # it answered
    (result(-1), False),  # killed: not a missing Python
    (result(3, stderr=b"SyntaxError"), False),
])
def test_only_a_missing_or_too_old_python_means_the_shell_probe(answer: CommandResult,
                                                                fallback: bool) -> None:
    assert needs_shell_probe(answer) is fallback


def test_parameters_become_lines_of_data() -> None:
    scalars, data = sh_probe.encode_params({
        "cpu_sample_s": 0.25, "network_fs": False, "top_n": 3, "proc_root": "/x y/$(z)",
        "unknown": "ignored", "checks": [
            {"name": "a", "command": ["/bin/echo", "two words", "line\nbreak", "b\\s"],
             "timeout_s": 5.0, "max_output": 4096}],
        "proc_prev": {"uptime": 12.5, "boot_id": "b-1", "ticks": {
            "1": [100, 7], "x": [1, 2], "2": [1], "3": [-1, 2], "4": [5, 6]}}})
    assert scalars == [b"cpu_sample_s 0.25", b"network_fs false", b"top_n 3",
                       b"proc_root /x y/$(z)", b"checks 1"]
    assert data == [b"check a", b"check_timeout_s 5.0", b"check_max_output 4096",
                    b"check_arg /bin/echo", b"check_arg two words",
                    b"check_argb line\\0012break", b"check_arg b\\s",
                    b"prev_uptime 12.5", b"prev_boot_id b-1", b"tick 1 100 7", b"tick 4 5 6"]
    with pytest.raises(ValueError, match="line break"):
        sh_probe.encode_params({"proc_root": "/a\nOSMON_PARAMS_END"})


@pytest.mark.parametrize("shell", SHELLS)
def test_the_here_documents_give_the_script_its_lines_unchanged(shell: str) -> None:
    """Through the real shells: quoted here-documents expand nothing, and a value that looks
    like a closing word or like code is only a value."""
    params = {"proc_root": "/p/$HOME/`id`/$(id)/\\n/'\"", "etc_root": "OSMON_PARAMS_END x",
              "checks": [{"name": "c", "command": ["OSMON_INPUT_END", "$(id)", "a\nb"]}]}
    script = (b'osmon_params sh -c \'cat\'\necho ---\nosmon_input sh -c \'cat\'\n')
    argv, env = shell_command(shell)
    done = subprocess.run(argv, input=sh_probe.sh_probe_stdin(params, script),
                          capture_output=True, env=env, timeout=30)
    assert done.returncode == 0, done.stderr
    scalars, data = sh_probe.encode_params(params)
    assert done.stdout == b"".join(line + b"\n" for line in scalars) + b"---\n" + \
        b"".join(line + b"\n" for line in data)
