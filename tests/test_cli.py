"""The CLI is documented and behaves the same way for every command."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from collector import cli

ROOT = Path(__file__).resolve().parent.parent


def test_every_command_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [name for name in cli.COMMANDS if not re.search(rf"osmon [^\n`]*\b{name}\b", readme)]
    assert not missing, f"commands not shown in README.md: {missing}"


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_every_command_has_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([name, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"osmon {name}" in out
    assert "exit status" in out


def test_exit_codes_are_documented_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["collect", "--help"])
    out = capsys.readouterr().out
    assert ("0  the command ran (for collect: the pass ran and stored its samples, even if "
            "hosts failed)") in out
    assert "1  the command ran and found a problem (collect: samples not stored" in out
    assert "2  could not run: bad config file, bad usage, or a data directory" in out
    assert "3  could not run: another osmon pass, backup or restore holds the data" in out


def test_unusable_data_dir_is_one_clear_line_and_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a-file").write_text("not a directory\n")
    cfg = tmp_path / "hosts.toml"
    cfg.write_text('[settings]\ndata_dir = "a-file/data"\n[[hosts]]\nname = "c"\n'
                   'local = true\n', encoding="utf-8")
    code = cli.main(["--config", str(cfg), "collect"])
    assert code == 2
    assert capsys.readouterr().err == (f"osmon collect: cannot use the data directory "
                                       f"{tmp_path / 'a-file' / 'data'}: Not a directory\n")


def test_python_dash_m_collector_is_osmon() -> None:
    result = subprocess.run([sys.executable, "-m", "collector", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "collect" in result.stdout and "exit status" in result.stdout


def test_bad_config_is_one_clear_line_and_exit_2(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "hosts.toml"
    cfg.write_text('[[hosts]]\nname = "web1"\nadress = "192.0.2.1"\n', encoding="utf-8")
    code = cli.main(["--config", str(cfg), "collect"])
    err = capsys.readouterr().err
    assert code == 2
    assert str(cfg) in err and "host 'web1'" in err and "did you mean 'address'" in err
    assert "Traceback" not in err


def test_missing_config_file_names_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["--config", str(tmp_path / "nope.toml"), "collect"])
    assert code == 2
    assert "nope.toml" in capsys.readouterr().err
