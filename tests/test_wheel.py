"""The wheel works on its own: built, installed in a fresh venv, one pass with alerting.

Things found by path break silently when files move: the package list and package data of
pyproject.toml, the post-pass hooks named by string, the probe file piped to the hosts, the
mail templates.  The editable install the other tests use hides all of them; this test does
not: it builds the wheel from a copy of the sources, installs it alone in a new venv (the
dependencies come from the test environment, the osmon code only from the wheel), and runs
``osmon collect`` from elsewhere: a sample from the real sshd through the packaged probe, an
alert mail from the packaged templates to a real SMTP server, and the alert history.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import sshd as harness
from mail_fixtures import SmtpSink

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "collector", "remote_probe", "web")


def _run(args: list[str], cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``bin/`` of a new venv holding osmon from its wheel and nothing else of ours."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, source / name)
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                  "--disable-pip-version-check", "-q", "-w", str(work / "dist"), str(source)],
                 work)
    assert built.returncode == 0, built.stderr
    wheel = next((work / "dist").glob("osmonitoring-*.whl"))
    venv = work / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], work)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    installed = _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                      "--no-deps", "--disable-pip-version-check", str(wheel)], work)
    assert installed.returncode == 0, installed.stderr
    # The dependencies (paramiko, flask, ...) from this environment: a .pth line adds the
    # directory to sys.path without running its .pth files, so the editable install of the
    # checkout is not loaded and `collector` can only come from the wheel.
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                work).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin"


def test_the_wheel_holds_every_module_and_file(installed: Path) -> None:
    code = ("import collector, remote_probe, web, pkgutil, importlib, pathlib\n"
            "for pkg in (collector, remote_probe, web):\n"
            "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
            "        if not m.name.endswith('__main__'): importlib.import_module(m.name)\n"
            "from collector.alerts import mail\n"
            "print(collector.__file__)\n"
            "print(sorted(p.name for p in mail.TEMPLATES.iterdir()))\n"
            "print((pathlib.Path(remote_probe.__file__).parent / 'probe.py').is_file())\n"
            "print((pathlib.Path(remote_probe.__file__).parent / 'probe.sh').is_file())\n")
    out = _run([str(installed / "python"), "-c", code], installed.parent)
    assert out.returncode == 0, out.stderr
    location, templates, probe, sh_probe = out.stdout.splitlines()
    assert location.startswith(str(installed.parent)), location  # not the checkout
    assert templates == "['alert_email.html', 'alert_email.txt']"
    assert probe == sh_probe == "True"


def test_a_pass_with_alerting_from_the_installed_wheel(installed: Path, sshd: harness.Sshd,
                                                       tmp_path: Path) -> None:
    with SmtpSink() as sink:
        extra = (f'\n[smtp]\nhost = "127.0.0.1"\nport = {sink.port}\n'
                 'from = "osmon@example.org"\nto = ["ops@example.org"]\n')
        config = sshd.write_hosts_toml(tmp_path / "hosts.toml", ["central", "remote", "tiny"],
                                       hosts={
            # Any memory use is over these thresholds: the first pass must mail.
            "central": {"local": True,
                        "thresholds": {"memory": {"warning": 0.001, "critical": 0.002,
                                                  "for": 1}}},
            "tiny": {"probe": "sh"}}, extra=extra)
        result = _run([str(installed / "osmon"), "--config", str(config), "collect"], tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout == ""  # every host answered
        for host in ("central", "remote", "tiny"):  # tiny: the packaged shell probe
            line = next((tmp_path / "data" / "hosts" / host).glob("*.jsonl")).read_text()
            sample = json.loads(line.splitlines()[-1])
            assert sample["ok"] is True, sample.get("error")
        assert len(sink.messages) == 1
        mail = sink.messages[0]
        assert "CRITICAL central memory" in mail["Subject"]
        assert {part.get_content_type() for part in mail.walk()} >= {"text/plain", "text/html"}
    history = (tmp_path / "data" / "state" / "alert-history.jsonl").read_text()
    assert '"metric": "memory"' in history
    cron = _run([str(installed / "osmon"), "--config", str(config), "cron"], tmp_path)
    assert f"{installed / 'osmon'} --config" in cron.stdout
