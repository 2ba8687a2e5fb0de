"""Least privilege: the ``authorized_keys`` line ``osmon check`` prints pins osmon's key to
the one fixed command osmon runs on that host, and both modes work under it (cron's
one-shot passes and ``osmon run``'s resident sessions), on a real sshd whose only key for
the account is that line."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
import sshd as harness

from collector import config as config_mod
from collector.passes import authorized_keys, collect, probe_call
from collector.passes.sessions import SessionPool

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def pinned() -> Iterator[harness.Sshd]:
    with harness.running_sshd(log_level="INFO") as started:
        yield started


def test_check_prints_the_line_and_both_modes_work_under_it(pinned: harness.Sshd,
                                                            tmp_path: Path) -> None:
    path = pinned.write_hosts_toml(tmp_path / "hosts.toml", ["web1", "web2"])
    config = config_mod.load(path)
    shown = subprocess.run([sys.executable, "-m", "collector", "--config", str(path), "check",
                            "--from", "127.0.0.1"], cwd=ROOT, capture_output=True, text=True,
                           timeout=120)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    (line,) = [row for row in shown.stdout.splitlines() if row.startswith("restrict,")]
    key = pinned.client_key_path.with_suffix(".pub").read_text(encoding="ascii").strip()
    command = probe_call.remote_command(config, config.hosts[0])
    assert line == f'restrict,from="127.0.0.1",command="{command}" {key}'
    assert "  web1, web2:" in shown.stdout  # one line serves both: the same command
    (pinned.workdir / "authorized_keys").write_text(line + "\n", encoding="ascii")

    one_shot = collect.run_pass(config)
    assert [o.describe() for o in one_shot.failures()] == []
    pool = SessionPool(config.settings)
    try:
        resident = [collect.run_pass(config, sessions=pool) for _ in range(3)]
    finally:
        pool.close_all()
    assert [r.failed for r in resident] == [0, 0, 0]
    assert resident[-1].outcomes[0].sample["collect"]["resident"] is True


def test_the_pinned_key_runs_nothing_else(pinned: harness.Sshd, tmp_path: Path) -> None:
    """Whatever the client asks, sshd runs osmon's command, which reads its probe language
    from stdin: a shell command sent by someone holding the key is only an unknown language."""
    config = config_mod.load(pinned.write_hosts_toml(tmp_path / "hosts.toml", ["web1"]))
    (line,) = authorized_keys.lines_for(config, config.hosts)
    (pinned.workdir / "authorized_keys").write_text(line.line + "\n", encoding="ascii")
    marker = tmp_path / "pwned"
    transport = paramiko.Transport((pinned.address, pinned.port))
    try:
        transport.connect(username=pinned.user,
                          pkey=paramiko.PKey.from_path(str(pinned.client_key_path)))
        channel = transport.open_session(timeout=10)
        channel.exec_command(f"touch {marker}")
        channel.sendall(b"touch " + str(marker).encode() + b"\n")
        channel.shutdown_write()
        status = channel.recv_exit_status()
        stderr = channel.makefile_stderr().read()
    finally:
        transport.close()
    assert status == 2 and b"unknown probe language" in stderr
    assert not marker.exists()


def test_a_key_pinned_to_another_address_is_refused(pinned: harness.Sshd,
                                                    tmp_path: Path) -> None:
    config = config_mod.load(pinned.write_hosts_toml(tmp_path / "hosts.toml", ["web1"]))
    (line,) = authorized_keys.lines_for(config, config.hosts, source="192.0.2.1")
    (pinned.workdir / "authorized_keys").write_text(line.line + "\n", encoding="ascii")
    error = collect.run_pass(config).outcomes[0].error
    assert error is not None and error["kind"] == "auth"


def test_a_bastion_of_the_inventory_may_forward_to_its_hosts_only(tmp_path: Path) -> None:
    path = tmp_path / "hosts.toml"
    key = tmp_path / "id_ed25519"
    key.write_text("private\n")
    Path(f"{key}.pub").write_text("ssh-ed25519 AAAAC3Nza osmon@central\n")
    path.write_text(f'[[hosts]]\nname = "gw"\naddress = "192.0.2.1"\nuser = "u"\n'
                    f'identity_file = "{key}"\n'
                    '[[hosts]]\nname = "web1"\naddress = "10.0.0.5"\nuser = "u"\njump = "gw"\n'
                    '[[hosts]]\nname = "web2"\naddress = "10.0.0.6"\nport = 2222\nuser = "u"\n'
                    'jump = "gw"\n')
    config = config_mod.load(path)
    lines = {k.hosts: k.line for k in authorized_keys.lines_for(config, config.hosts)}
    gw = lines[("gw",)]
    assert gw.startswith('restrict,port-forwarding,permitopen="10.0.0.5:22",'
                         'permitopen="10.0.0.6:2222",command="exec sh -c ')
    assert gw.endswith(" ssh-ed25519 AAAAC3Nza osmon@central")
    assert lines[("web1", "web2")].endswith(authorized_keys.NO_PUBLIC_KEY)
