"""Setting up the service mode: ``osmon systemd`` prints a unit the way ``osmon cron`` prints
crontab lines, ``osmon cron`` points to it for an interval it cannot keep, and intervals
down to 10 s get defaults that fit them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from collector import config as config_mod
from collector.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def osmon(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "collector", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def write(tmp_path: Path, settings: str = "") -> Path:
    path = tmp_path / "hosts.toml"
    path.write_text(f'[settings]\n{settings}\n[[hosts]]\nname = "c"\nlocal = true\n')
    return path


def test_systemd_prints_a_unit_that_runs_osmon_run(tmp_path: Path) -> None:
    path = write(tmp_path, "interval_s = 10")
    result = osmon("--config", str(path), "systemd", "--user", "monitor")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    (start,) = [line for line in lines if line.startswith("ExecStart=")]
    assert start.endswith(f"-m collector --config {path} run")
    assert Path(start.split("=", 1)[1].split()[0]).is_absolute()  # systemd has no PATH
    (directory,) = [line for line in lines if line.startswith("WorkingDirectory=")]
    assert directory == f"WorkingDirectory={ROOT}"  # a source checkout: run from its root
    for expected in ("User=monitor", "ExecReload=/bin/kill -HUP $MAINPID",
                     "Restart=on-failure", "TimeoutStopSec=38", "WantedBy=multi-user.target"):
        assert expected in lines
    no_web = osmon("--config", str(path), "systemd", "--no-web")
    assert " run --no-web" in no_web.stdout


def test_cron_points_to_the_service_for_a_sub_minute_interval(tmp_path: Path) -> None:
    result = osmon("--config", str(write(tmp_path, "interval_s = 10")), "cron")
    assert result.returncode == 1
    assert "is below a minute" in result.stderr and "`osmon systemd`" in result.stderr


def test_a_ten_second_interval_gets_steps_that_fit_it(tmp_path: Path) -> None:
    settings = config_mod.load(write(tmp_path, "interval_s = 10")).settings
    assert (settings.ssh_timeout_s, settings.host_deadline_s, settings.pass_deadline_s) == \
        (3.0, 8.0, 8.0)
    assert config_mod.load(write(tmp_path, "interval_s = 60")).settings.ssh_timeout_s == 10.0


@pytest.mark.parametrize(("line", "problem"), [
    ("max_handshakes = 0", "'max_handshakes' must be at least 1, not 0"),
    ("session_max_age_s = 10", "'session_max_age_s' must be at least 60, not 10.0"),
])
def test_the_new_settings_are_checked(tmp_path: Path, line: str, problem: str) -> None:
    path = write(tmp_path, line)
    with pytest.raises(ConfigError) as caught:
        config_mod.load(path)
    assert caught.value.problems == (f"{path}: [settings]: {problem}",)
