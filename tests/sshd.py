"""A real OpenSSH ``sshd`` on 127.0.0.1, for the tests and for ``bench/bench_collect.py``.

Use it through the fixtures of ``tests/conftest.py``:

``sshd`` (session scope)
    A running :class:`Sshd`: ``address``, ``port``, ``user``, ``workdir``, ``host_key_path``,
    ``host_public_key`` (a paramiko key), ``client_key_path`` (ed25519, no passphrase),
    ``known_hosts_line()`` (the line a known_hosts file needs for it),
    ``write_known_hosts(path)``, ``script(name, body)`` (an executable in the work directory,
    usable as a host's ``python`` to play a hostile host), and
    ``write_hosts_toml(path, names, ...)`` which writes a complete ``hosts.toml`` whose hosts
    are all aliases of this one sshd (see its docstring for per-host overrides).
``refused_port``
    A 127.0.0.1 port that refuses connections (bound, never listening).
``silent_port``
    A 127.0.0.1 port that accepts TCP connections and never says a word.

Why this shape: sshd must run as root to log in another account, and the account must be clean.
When the suite runs as root (CI), :func:`ensure_test_account` creates the system account
``osmon-test`` (home ``/var/lib/osmon-test``, shell ``/bin/sh``, no password but not locked)
if it is missing: root's own login would source a heavy ``~/.bashrc`` (pyenv) on every
command, which a real monitoring account would not.  When the suite runs as an ordinary user,
sshd runs as that user and logs that same user in.  The work directory sits directly in the
temp dir with mode 0755 so the account can read its authorized_keys and run the scripts;
``StrictModes no`` because ``/tmp`` itself is world-writable.

Nothing here skips: without ``/usr/sbin/sshd`` (Debian: ``openssh-server``) it raises with a
message saying what to install.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko

SSHD = "/usr/sbin/sshd"
TEST_USER = "osmon-test"
TEST_HOME = Path("/var/lib/osmon-test")
ADDRESS = "127.0.0.1"
NOLOGIN_USER = "osmon-nologin"
NOLOGIN_SHELL = "/usr/sbin/nologin"


class HarnessError(RuntimeError):
    """The test sshd could not be started; the message says why and what to install."""


def ensure_test_account() -> str:
    """The account tests log in as; created (idempotently) when running as root."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()).pw_name
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        # -p '*': no password, but not "locked" ('!'), which sshd without PAM would refuse.
        _run(["useradd", "--system", "--no-create-home", "--home-dir", str(TEST_HOME),
              "--shell", "/bin/sh", "--password", "*", TEST_USER])
    else:
        _run(["usermod", "--password", "*", TEST_USER])
    entry = pwd.getpwnam(TEST_USER)
    TEST_HOME.mkdir(mode=0o755, parents=True, exist_ok=True)
    os.chown(TEST_HOME, entry.pw_uid, entry.pw_gid)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    return TEST_USER


def ensure_nologin_account() -> str:
    """A second account as Debian makes service accounts: shell ``/usr/sbin/nologin``, home
    ``/nonexistent`` (root only).  sshd logs it in, then says it cannot chdir home, and
    nologin says "This account is currently not available." and exits 1."""
    if os.geteuid() != 0:
        raise HarnessError("a second account needs root; use force_command instead")
    try:
        pwd.getpwnam(NOLOGIN_USER)
    except KeyError:
        _run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
              "--shell", NOLOGIN_SHELL, "--password", "*", NOLOGIN_USER])
    else:
        _run(["usermod", "--password", "*", "--shell", NOLOGIN_SHELL, NOLOGIN_USER])
    return NOLOGIN_USER


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise HarnessError(f"{' '.join(argv)} failed: {result.stderr.strip()}")


def generate_key(path: Path, comment: str = "osmon-test") -> Path:
    """An ed25519 key pair (``path`` and ``path.pub``), no passphrase."""
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((ADDRESS, 0))
        return int(sock.getsockname()[1])


@dataclass
class Sshd:
    workdir: Path
    port: int
    user: str
    host_key_path: Path
    client_key_path: Path
    process: subprocess.Popen[bytes]
    address: str = ADDRESS
    subreaper: bool = False
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / "sshd.log"

    @property
    def host_public_key(self) -> paramiko.PKey:
        return paramiko.PKey.from_path(str(self.host_key_path))

    @property
    def known_hosts_name(self) -> str:
        return f"[{self.address}]:{self.port}"

    def known_hosts_line(self, key: paramiko.PKey | None = None) -> str:
        key = key or self.host_public_key
        return f"{self.known_hosts_name} {key.get_name()} {key.get_base64()}\n"

    def write_known_hosts(self, path: Path, key: paramiko.PKey | None = None) -> Path:
        path.write_text(self.known_hosts_line(key), encoding="ascii")
        return path

    def script(self, name: str, body: str) -> Path:
        """An executable ``#!/bin/sh`` script the test account may run (a fake interpreter)."""
        path = self.workdir / name
        path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
        path.chmod(0o755)
        return path

    def write_hosts_toml(self, path: Path, names: Iterable[str] | int, *,
                         settings: Mapping[str, Any] | None = None,
                         hosts: Mapping[str, Mapping[str, Any]] | None = None,
                         extra: str = "") -> Path:
        """Write a ``hosts.toml`` whose hosts are all this sshd.

        ``names`` is a list of host names or a count (``h001``...).  Settings default to a
        data dir beside the file, a known_hosts file holding this sshd's key, strict host keys,
        and short timeouts; ``settings`` overrides them.  ``hosts`` maps a name to keys that
        override or extend that host's table (``{"local": True}`` makes it the local host).
        ``extra`` is appended verbatim (e.g. ``[[checks]]`` tables).  The CERT-FR feed is
        disabled (tests have no network) unless ``extra`` has its own ``[certfr]`` table.
        """
        if isinstance(names, int):
            names = [f"h{i:03d}" for i in range(1, names + 1)]
        known_hosts = self.write_known_hosts(path.parent / "known_hosts")
        merged: dict[str, Any] = {
            "data_dir": str(path.parent / "data"), "known_hosts": str(known_hosts),
            "host_key_policy": "strict", "ssh_timeout_s": 10, "host_deadline_s": 30,
            "pass_deadline_s": 50, "concurrency": 32,
        }
        merged.update(settings or {})
        lines = ["[settings]"] + [f"{k} = {_toml(v)}" for k, v in merged.items()]
        overrides = hosts or {}
        for name in names:
            table: dict[str, Any] = {"name": name, "address": self.address, "port": self.port,
                                     "user": self.user,
                                     "identity_file": str(self.client_key_path)}
            table.update(overrides.get(name, {}))
            if table.get("local"):
                table = {k: v for k, v in table.items()
                         if k not in ("address", "port", "user", "identity_file")}
            lines += ["", "[[hosts]]"] + [f"{k} = {_toml(v)}" for k, v in table.items()]
        if "[certfr]" not in extra:
            lines += ["", "[certfr]", "enabled = false"]
        path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
        return path

    def descendants(self) -> list[tuple[int, str]]:
        """(pid, command line) of every process below this sshd (its sessions and what they
        run).  Started with ``subreaper=True``, orphans of its sessions stay below it too."""
        parents: dict[int, int] = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    with open(f"/proc/{entry.name}/stat", "rb") as fh:
                        fields = fh.read().rsplit(b")", 1)[1].split()
                except OSError:
                    continue  # ended meanwhile
                parents[int(entry.name)] = int(fields[1])
        found: list[tuple[int, str]] = []
        below = {self.process.pid}
        changed = True
        while changed:
            changed = False
            for pid, ppid in parents.items():
                if ppid in below and pid not in below:
                    below.add(pid)
                    changed = True
        for pid in sorted(below - {self.process.pid}):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    found.append((pid, fh.read().replace(b"\0", b" ").decode(errors="replace")))
            except OSError:
                continue
        return found

    def logins(self) -> int:
        """Logins so far ("Accepted publickey" lines; needs ``log_level="INFO"``)."""
        return self.log_path.read_text(errors="replace").count("Accepted publickey for ")

    def authorize(self, options: str) -> None:
        """Give the client key these authorized_keys options (``restrict,command="..."``)."""
        key = self.client_key_path.with_suffix(".pub").read_text(encoding="ascii").strip()
        (self.workdir / "authorized_keys").write_text(f"{options} {key}\n", encoding="ascii")

    def restart(self) -> None:
        """Stop sshd and every session it runs (a reboot, as far as connections go), then
        start it again on the same port with the same host key."""
        sessions = [pid for pid, _cmd in self.descendants()]
        self.stop()
        for pid in sessions:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        self.process = _launch(self.workdir / "sshd_config", self.log_path, self.subreaper)
        if not _wait_for_banner(self, timeout=20):
            raise HarnessError(f"sshd did not start again; its log:\n"
                               f"{self.log_path.read_text(errors='replace')}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


_CONFIG = """\
ListenAddress {address}:{port}
HostKey {host_key}
PidFile none
UsePAM no
StrictModes no
AuthorizedKeysFile {authorized_keys}
AllowUsers {user}{extra_users}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin {permit_root}
MaxStartups {max_startups}
MaxSessions 100
MaxAuthTries 10
LoginGraceTime 60
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowTcpForwarding {forwarding}
LogLevel {log_level}
{extra}"""


def start_sshd(workdir: Path | None = None, *, log_level: str = "ERROR",
               subreaper: bool = False, extra_users: Iterable[str] = (),
               force_command: str | None = None, max_startups: str = "500:30:1000",
               forwarding: bool = False) -> Sshd:
    """Start sshd on a free loopback port and wait until it answers with its banner.

    ``subreaper``: sshd adopts the orphans of its sessions (``PR_SET_CHILD_SUBREAPER``,
    kept across ``exec``) instead of PID 1, so a test sees what a session left running
    among :meth:`Sshd.descendants`, and sshd reaps them when they end.  ``extra_users`` may
    log in too (with the same key); ``force_command`` replaces whatever command a client asks
    for (``ForceCommand``), as some hardened accounts do.  ``log_level`` ``INFO`` logs every
    login ("Accepted publickey", :meth:`Sshd.logins`); ``max_startups`` is sshd's MaxStartups
    (the default's ``10:30:100`` drops connections beyond ten unauthenticated ones);
    ``forwarding`` allows ``direct-tcpip`` (a bastion)."""
    if not os.path.exists(SSHD):
        raise HarnessError(f"{SSHD} not found: the SSH tests need a real OpenSSH server "
                           f"(Debian/Ubuntu: apt-get install openssh-server)")
    user = ensure_test_account()
    if workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix="osmon-sshd-"))
    workdir.chmod(0o755)  # the test account reads authorized_keys and runs scripts here
    host_key = generate_key(workdir / "ssh_host_ed25519_key", "osmon-test-host")
    client_key = generate_key(workdir / "client_ed25519", "osmon-test-client")
    authorized = workdir / "authorized_keys"
    authorized.write_bytes(client_key.with_suffix(".pub").read_bytes())
    authorized.chmod(0o644)
    last_log = ""
    for _attempt in range(3):
        port = free_port()
        config = workdir / "sshd_config"
        config.write_text(_CONFIG.format(
            address=ADDRESS, port=port, host_key=host_key, authorized_keys=authorized,
            user=user, permit_root="prohibit-password" if user == "root" else "no",
            log_level=log_level, extra_users="".join(f" {u}" for u in extra_users),
            extra=f"ForceCommand {force_command}\n" if force_command else "",
            max_startups=max_startups, forwarding="yes" if forwarding else "no"),
            encoding="utf-8")
        server = Sshd(workdir, port, user, host_key, client_key,
                      _launch(config, workdir / "sshd.log", subreaper), subreaper=subreaper)
        if _wait_for_banner(server, timeout=20):
            return server
        server.stop()
        last_log = server.log_path.read_text(errors="replace")
    raise HarnessError(f"sshd did not start; its log:\n{last_log}")


def _launch(config: Path, log_path: Path, subreaper: bool) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log:
        return subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                preexec_fn=_become_subreaper if subreaper else None)


def _become_subreaper() -> None:
    import ctypes

    pr_set_child_subreaper = 36  # linux/prctl.h
    if ctypes.CDLL(None, use_errno=True).prctl(pr_set_child_subreaper, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def _wait_for_banner(server: Sshd, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        try:
            with socket.create_connection((server.address, server.port), timeout=2) as sock:
                if sock.recv(64).startswith(b"SSH-"):
                    return True
        except OSError:
            time.sleep(0.05)
    return False


@contextlib.contextmanager
def running_sshd(**kwargs: Any) -> Iterator[Sshd]:
    """``with running_sshd() as server:`` — stopped and cleaned up afterwards."""
    server = start_sshd(**kwargs)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A port bound but not listening: connecting to it is refused at once, with no race."""
    with socket.socket() as sock:
        sock.bind((ADDRESS, 0))
        yield int(sock.getsockname()[1])


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never sends a byte (a hung host)."""
    held: list[socket.socket] = []
    listener = socket.socket()
    listener.bind((ADDRESS, 0))
    listener.listen(64)

    def accept() -> None:
        while True:
            try:
                conn, _addr = listener.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        # shutdown wakes the blocked accept(); close alone would not on Linux.
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        for conn in held:
            conn.close()
