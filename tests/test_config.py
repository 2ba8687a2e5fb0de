"""Bad ``hosts.toml`` files: each problem names the file, the table or host, and the key.

The expected messages are spelled out in full: they are what an admin reads in ``osmon check``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from collector import config
from collector.errors import ConfigError

ADDRESS_MISSING = ("'address' is missing (needed for a remote host; or set local = true, or "
                   "give it a HostName in ~/.ssh/config)")
BAD_PYTHON = ("'python' must be an absolute path (/usr/bin/python3) or a command name (python3) "
              "of letters, digits, '.', '_', '+' and '-', with no spaces, quotes or shell "
              "characters; not ")
BAD_NAME = ("'name' may only hold letters, digits, '.', '_' and '-' (it is used in paths and "
            "URLs), at most 63 characters")

CASES = {
    "wrong types": (
        '[settings]\ninterval_s = "60"\nconcurrency = true\n',
        ["[settings]: 'interval_s' must be an integer, not a string ('60')",
         "[settings]: 'concurrency' must be an integer, not a boolean (True)"]),
    "typos with suggestions": (
        'setings = {}\n[settings]\ndata_dri = "x"\n[[hosts]]\nname = "a"\nadress = "192.0.2.1"\n',
        ["top level: unknown key 'setings' (did you mean 'settings'?)",
         "[settings]: unknown key 'data_dri' (did you mean 'data_dir'?)",
         "host 'a': unknown key 'adress' (did you mean 'address'?)",
         f"host 'a': {ADDRESS_MISSING}"]),
    "missing address": ('[[hosts]]\nname = "web1"\n', [f"host 'web1': {ADDRESS_MISSING}"]),
    "duplicate names": (
        '[[hosts]]\nname = "a"\nlocal = true\n[[hosts]]\nname = "a"\nlocal = true\n',
        ["host 'a': duplicate host name 'a'"]),
    "name with a path in it": ('[[hosts]]\nname = "../etc"\nlocal = true\n',
                               [f"host '../etc': {BAD_NAME}"]),
    "name too long for a directory": ('[[hosts]]\nname = "%s"\nlocal = true\n' % ("a" * 64),
                                      [f"host '{'a' * 64}': {BAD_NAME}"]),
    "name missing": ('[[hosts]]\nlocal = true\n', ["[[hosts]] #1: 'name' is missing"]),
    "warning above critical": (
        '[thresholds]\ncpu = { warning = 95, critical = 80 }\n'
        '[[hosts]]\nname = "a"\nlocal = true\nthresholds = { disk = { warning = 99 } }\n',
        ["[thresholds].cpu: warning (95) must be below critical (80)",
         "host 'a'.thresholds.disk: warning (99) must be below critical (95)"]),
    "negative threshold": ('[thresholds]\ndisk = { warning = -1 }\n',
                           ["[thresholds].disk: 'warning' must be at least 0, not -1.0"]),
    "pass deadline over the interval": (
        '[settings]\ninterval_s = 30\npass_deadline_s = 40\n',
        ["[settings]: 'pass_deadline_s' (40) must be below 'interval_s' (30), or passes "
         "pile up"]),
    "zero concurrency": ('[settings]\nconcurrency = 0\n',
                         ["[settings]: 'concurrency' must be at least 1, not 0"]),
    "unknown host key policy": (
        '[settings]\nhost_key_policy = "yes"\n',
        ["[settings]: 'host_key_policy' must be one of strict, accept-new, not 'yes'"]),
    "interpreter with arguments": (
        '[[hosts]]\nname = "a"\naddress = "192.0.2.1"\npython = "python3 -c evil"\n',
        [f"host 'a': {BAD_PYTHON}'python3 -c evil'"]),
    "interpreter with shell syntax": (
        '[[hosts]]\nname = "a"\naddress = "192.0.2.1"\npython = "python3;reboot"\n'
        '[[hosts]]\nname = "b"\naddress = "192.0.2.2"\npython = "$(reboot)"\n'
        '[[hosts]]\nname = "c"\naddress = "192.0.2.3"\npython = "bin/python3"\n'
        '[[hosts]]\nname = "d"\naddress = "192.0.2.4"\npython = "-c"\n'
        '[[hosts]]\nname = "e"\naddress = "192.0.2.5"\npython = ""\n',
        [f"host 'a': {BAD_PYTHON}'python3;reboot'", f"host 'b': {BAD_PYTHON}'$(reboot)'",
         f"host 'c': {BAD_PYTHON}'bin/python3'", f"host 'd': {BAD_PYTHON}'-c'",
         f"host 'e': {BAD_PYTHON}''"]),
    "ports out of range": (
        '[web]\nport = 0\n[smtp]\nto = ["a@example.org"]\nport = 65536\n'
        '[[hosts]]\nname = "a"\naddress = "192.0.2.1"\nport = 70000\n',
        ["[smtp]: 'port' must be at most 65535, not 65536",
         "[web]: 'port' must be at least 1, not 0",
         "host 'a': 'port' must be at most 65535, not 70000"]),
    "check longer than its host deadline allows": (
        '[settings]\nssh_timeout_s = 10\nhost_deadline_s = 30\n'
        '[[checks]]\nname = "slow"\ncommand = ["/bin/true"]\ntimeout_s = 25\n',
        ["check 'slow': 'timeout_s' (25) must leave room within the host deadline: at most "
         "[settings] host_deadline_s - ssh_timeout_s (30 - 10 = 20); lower it or raise "
         "host_deadline_s"]),
    "ssh config named but absent": (
        '[settings]\nssh_config = "fleet_ssh_config"\n',
        ["[settings]: 'ssh_config' names {dir}/fleet_ssh_config, which is not a file"]),
    "limits that make no sense": (
        '[backup]\nkeep = -3\nkeep_days = -5\n[alerts]\ndown_after = 0\nhysteresis = 80.0\n'
        '[certfr]\ninterval_s = 5\n'
        '[[checks]]\nname = "big"\ncommand = ["/bin/true"]\nmax_output = 10000000\n',
        ["[certfr]: 'interval_s' must be at least 60, not 5",
         "[alerts]: 'down_after' must be at least 1, not 0",
         "[alerts]: 'hysteresis' must be at most 50, not 80.0",
         "[backup]: 'keep' must be at least 1, not -3",
         "[backup]: 'keep_days' must be at least 0, not -5",
         "check 'big': 'max_output' must be at most 1048576, not 10000000"]),
    "mail and feed settings that cannot work": (
        '[smtp]\nfrom = ""\nto = ["admin@example.org", "a@b\\nBcc: x@y"]\n'
        'template = "missing.txt"\n'
        '[certfr]\nfeed_url = "file:///etc/passwd"\n',
        ["[smtp]: 'from' holds '', which is not an e-mail address (name@domain, no spaces, "
         "commas or line breaks)",
         "[smtp]: 'to' holds 'a@b\\nBcc: x@y', which is not an e-mail address (name@domain, "
         "no spaces, commas or line breaks)",
         "[smtp]: 'template' names {dir}/missing.txt, which is not a file",
         "[certfr]: 'feed_url' must be an http:// or https:// URL, not 'file:///etc/passwd'"]),
    "names with a trailing newline": (
        '[[hosts]]\nname = "web1\\n"\nlocal = true\n'
        '[[hosts]]\nname = "web2"\naddress = "192.0.2.2"\npython = "python3\\n"\n',
        [f"host 'web1\n': {BAD_NAME}", f"host 'web2': {BAD_PYTHON}'python3\\n'"]),
    "smtp password in clear over the network": (
        '[smtp]\nhost = "mail.example.org"\nuser = "osmon"\nto = ["a@example.org"]\n',
        ["[smtp]: 'user' is set with security = \"none\": the password would cross the "
         "network in clear; use \"starttls\" or \"ssl\""]),
    "hosts not an array": ('hosts = "a"\n',
                           ["top level: 'hosts' must be an array of tables: [[hosts]]"]),
    "tags not strings": ('[[hosts]]\nname = "a"\nlocal = true\ntags = [1]\n',
                         ["host 'a': 'tags' must be a list of strings"]),
    "probe that is neither python nor sh": (
        '[[hosts]]\nname = "a"\naddress = "192.0.2.1"\nprobe = "perl"\n'
        '[[hosts]]\nname = "b"\nlocal = true\nprobe = "sh"\n',
        ["host 'a': 'probe' must be one of auto, python, sh, not 'perl'",
         "host 'b': 'probe' = \"sh\" is for remote hosts: the local host is measured "
         "in-process (psutil), never by a probe"]),
    "check for an unknown host": (
        '[[hosts]]\nname = "a"\nlocal = true\n'
        '[[checks]]\nname = "x"\ncommand = ["/bin/true"]\nhosts = ["b"]\n',
        ["check 'x': 'hosts' names 'b', which is not a host in this file"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_file_gives_precise_messages(name: str, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh/config of the test machine
    text, expected = CASES[name]
    path = tmp_path / "hosts.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert list(info.value.problems) == [f"{path}: {message.format(dir=tmp_path)}"
                                         for message in expected]
    assert str(info.value) == "\n".join(info.value.problems)


def test_smtp_password_in_clear_is_refused_and_never_echoed(tmp_path: Path) -> None:
    path = tmp_path / "hosts.toml"
    path.write_text('[smtp]\nto = ["a@example.org"]\npassword = "hunter2"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert (f"{path}: [smtp]: 'password' in clear is not accepted: use password_env (the name "
            f"of an environment variable) or password_file") in info.value.problems
    assert "hunter2" not in str(info.value)
    assert len(info.value.problems) == 1  # said once, not also as an "unknown key"


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "hosts.toml"
    path.write_text('[[hosts]]\nname = "a"\n[settings\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"hosts\.toml: invalid TOML: .*line 3"):
        config.load(path)


def test_not_utf8_and_missing_files(tmp_path: Path) -> None:
    path = tmp_path / "hosts.toml"
    path.write_bytes(b"\xff\xfe[settings]\n")
    with pytest.raises(ConfigError, match=r"hosts\.toml: not UTF-8 text$"):
        config.load(path)
    with pytest.raises(ConfigError, match=r"nope\.toml: cannot read the config file: "
                                          r"No such file or directory"):
        config.load(tmp_path / "nope.toml")


def test_ssh_config_fills_what_the_inventory_omits(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text(
        "Host web1\n  HostName 192.0.2.10\n  User monitor\n  Port 2222\n"
        "  IdentityFile ~/.ssh/monitor_ed25519\n", encoding="utf-8")
    path = tmp_path / "hosts.toml"
    path.write_text('[[hosts]]\nname = "web1"\n\n[[hosts]]\nname = "db1"\n'
                    'address = "192.0.2.20"\nuser = "root"\nport = 22\n', encoding="utf-8")
    web1, db1 = config.load(path).hosts
    assert (web1.address, web1.user, web1.port) == ("192.0.2.10", "monitor", 2222)
    assert web1.identity_file == tmp_path / ".ssh" / "monitor_ed25519"
    assert (db1.address, db1.user, db1.port, db1.identity_file) == ("192.0.2.20", "root", 22,
                                                                    None)


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    path = tmp_path / "hosts.toml"
    path.write_text('[settings]\nssh_timeout_s = 5\n[[hosts]]\nname = "c"\nlocal = true\n',
                    encoding="utf-8")
    settings = config.load(path).settings
    assert settings.data_dir == tmp_path / "data"
    assert settings.osmon_known_hosts == tmp_path / "data" / "state" / "known_hosts"
    assert (settings.host_deadline_s, settings.pass_deadline_s) == (15.0, 50.0)
    assert settings.known_hosts == Path(os.path.expanduser("~/.ssh/known_hosts"))


def test_settings_ssh_config_is_the_file_read(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text("Host web1\n  HostName 192.0.2.99\n  Port 2200\n",
                                             encoding="utf-8")
    (tmp_path / "fleet_ssh_config").write_text("Host web1\n  HostName 192.0.2.10\n",
                                               encoding="utf-8")
    path = tmp_path / "hosts.toml"
    path.write_text('[settings]\nssh_config = "fleet_ssh_config"\n[[hosts]]\nname = "web1"\n',
                    encoding="utf-8")
    web1 = config.load(path).hosts[0]
    assert (web1.address, web1.port) == ("192.0.2.10", 22)  # ~/.ssh/config not read at all


SSH_CONFIG_WITH_MATCH = """\
Host web*
  User www
  Port 2201
Host * !web2
  IdentityFile ~/.ssh/fleet_key
Match originalhost db1
  HostName 192.0.2.30
  User postgres
Match host 192.0.2.30 user postgres
  Port 2230
Host web1
  HostName 192.0.2.11
Host web2
  HostName 192.0.2.12
Host *
  User fallback
"""


def test_ssh_config_lookups_match_paramiko_on_host_and_match_blocks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """osmon's faster lookup (see config._SshConfig) must give what paramiko gives."""
    import paramiko

    monkeypatch.setenv("HOME", str(tmp_path))
    ssh_config = tmp_path / "fleet_ssh_config"
    ssh_config.write_text(SSH_CONFIG_WITH_MATCH, encoding="utf-8")
    path = tmp_path / "hosts.toml"
    path.write_text('[settings]\nssh_config = "fleet_ssh_config"\n'
                    + "".join(f'[[hosts]]\nname = "{n}"\n' for n in ("web1", "web2", "db1")),
                    encoding="utf-8")
    reference = paramiko.SSHConfig.from_path(str(ssh_config))
    for host in config.load(path).hosts:
        expected = reference.lookup(host.name)
        identity = expected.get("identityfile")
        assert (host.address, host.user, host.port, host.identity_file) == (
            expected["hostname"], expected["user"], int(expected["port"]),
            Path(identity[0]) if identity else None), host.name
    web1, web2, db1 = config.load(path).hosts
    assert (web1.address, web1.user, web1.port) == ("192.0.2.11", "www", 2201)
    assert web2.identity_file is None
    assert (db1.address, db1.user, db1.port) == ("192.0.2.30", "postgres", 2230)


def test_check_timeout_defaults_to_what_the_host_deadline_leaves(tmp_path: Path) -> None:
    path = tmp_path / "hosts.toml"
    path.write_text('[settings]\nssh_timeout_s = 5\nhost_deadline_s = 9\n'
                    '[[checks]]\nname = "load"\ncommand = ["/bin/true"]\n', encoding="utf-8")
    assert config.load(path).checks[0].timeout_s == 4.0


def test_unreadable_ssh_config_is_reported(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "fleet_ssh_config").write_text("Host web1\n  Port\n", encoding="utf-8")
    path = tmp_path / "hosts.toml"
    path.write_text('[settings]\nssh_config = "fleet_ssh_config"\n[[hosts]]\nname = "web1"\n'
                    'address = "192.0.2.10"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert info.value.problems[0].startswith(
        f"{path}: [settings]: cannot read the ssh config {tmp_path / 'fleet_ssh_config'}: ")


def test_probe_defaults_to_auto(tmp_path: Path) -> None:
    path = tmp_path / "hosts.toml"
    path.write_text('[[hosts]]\nname = "a"\naddress = "192.0.2.1"\nuser = "m"\n'
                    '[[hosts]]\nname = "b"\naddress = "192.0.2.2"\nuser = "m"\nprobe = "sh"\n',
                    encoding="utf-8")
    a, b = config.load(path).hosts
    assert (a.probe, b.probe) == ("auto", "sh")
