"""Host keys: the user's known_hosts plus osmon's own, checked before any key is offered."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import threading
from collections.abc import Callable
from pathlib import Path

import paramiko
from paramiko.hostkeys import HostKeyEntry

from collector.config import Host, Settings
from collector.store.statefile import FileIdentity, atomic_write_bytes, file_identity
from collector.transport.failures import HOSTKEY, SshFailure

#: ``with guard():`` around a session's one write, a new host key (passes.one_host.HostJob).
WriteGuard = Callable[[], contextlib.AbstractContextManager[None]]


def known_hosts_name(address: str, port: int) -> str:
    """The name known_hosts files use: OpenSSH writes ``[host]:port`` for non-22 ports."""
    return address if port == 22 else f"[{address}]:{port}"


class HostKeyChecker:
    """The user's known_hosts plus osmon's own, shared by every session of one pass.

    ``accept-new`` records a first-seen key in osmon's file only (never in the user's), under a
    thread lock and an ``flock`` so parallel sessions and a concurrent ``osmon check`` cannot
    lose or duplicate a line; a key that differs from a recorded one is always refused.
    """

    def __init__(self, settings: Settings) -> None:
        self.policy = settings.host_key_policy
        self.user_file = settings.known_hosts
        self.osmon_file = settings.osmon_known_hosts
        self._files = [f for f in (self.user_file, self.osmon_file) if f is not None]
        self._read_as = self._identities()  # before reading: a change meanwhile is seen later
        self._known = [(f, load_host_keys(f)) for f in self._files]
        self._lock = threading.Lock()

    def still_valid(self, settings: Settings) -> bool:
        """Whether this checker still holds what ``settings``' files say: ``osmon run`` keeps
        it from pass to pass instead of parsing every known_hosts line again each pass (a
        fleet's file has a line per host).  Any change to a file (``ssh-keygen -R``, a key
        added, a key this checker accepted) means reading them again."""
        return (settings.host_key_policy == self.policy
                and (settings.known_hosts, settings.osmon_known_hosts)
                == (self.user_file, self.osmon_file)
                and self._identities() == self._read_as)

    def _identities(self) -> list[FileIdentity | None]:
        return [file_identity(path) for path in self._files]

    def known_types(self, name: str) -> list[str]:
        """Key types already recorded for ``name``, so the session can ask for one of them."""
        types: list[str] = []
        for _path, keys in self._known:
            entry = keys.lookup(name)
            if entry:
                types.extend(t for t in entry if t not in types)
        return types

    def keyscan_hint(self, host: Host) -> str:
        """The shell command that adds the host's key to the user's known_hosts, creating its
        directory first (private, as ssh wants ``~/.ssh``): on a new central server
        ``~/.ssh`` often does not exist yet, and ``>>`` cannot create a directory."""
        if self.user_file is None:
            directory, target = "~/.ssh", "~/.ssh/known_hosts"
        else:
            directory = shlex.quote(str(Path(self.user_file).parent))
            target = shlex.quote(str(self.user_file))
        return (f"mkdir -p -m 700 {directory} && ssh-keyscan -p {host.port} "
                f"{shlex.quote(host.address)} >> {target}")

    def verify(self, host: Host, key: paramiko.PKey,
               write_guard: WriteGuard = contextlib.nullcontext) -> None:
        """Return if ``key`` is the host's known key (or was just accepted); else raise."""
        name = known_hosts_name(host.address, host.port)
        with self._lock:
            status = self._status(name, key)
            if status == "known":
                return
            if status == "unknown" and self.policy == "accept-new" and self.osmon_file:
                try:
                    with write_guard():  # raises if the pass gave up on the host
                        self._accept(name, key)
                except OSError as exc:  # a key we cannot record is a key we do not trust
                    raise SshFailure(HOSTKEY, (
                        f"cannot record the new host key of {name} in {self.osmon_file}: "
                        f"{exc.strerror or exc}")) from None
                return
        if status == "unknown":
            files = " or ".join(str(f) for f in self._files) or "no known_hosts file"
            raise SshFailure(HOSTKEY, (
                f"host key of {name} ({key.get_name()} {key.fingerprint}) is not in {files}; "
                f"check it and add it with: {self.keyscan_hint(host)} (or set "
                f"host_key_policy = \"accept-new\")"))
        path, kind = status
        if kind == "changed":
            raise SshFailure(HOSTKEY, (
                f"host key for {host.name} ({name}) changed — possible attack; if the change "
                f"is expected remove the old key with: ssh-keygen -R '{name}' -f {path}"))
        raise SshFailure(HOSTKEY, (
            f"{name} offered a {key.get_name()} key but {path} knows it by another key type; "
            f"if that is expected remove the old key with: ssh-keygen -R '{name}' -f {path}"))

    def _status(self, name: str, key: paramiko.PKey) -> str | tuple[Path, str]:
        verdict: str | tuple[Path, str] = "unknown"
        for path, keys in self._known:
            entry = keys.lookup(name)
            if not entry:
                continue
            known = entry.get(key.get_name())
            if known is None:
                verdict = (path, "other-type") if verdict == "unknown" else verdict
            elif known.asbytes() != key.asbytes():
                return (path, "changed")
            else:
                verdict = "known"
        return verdict

    def _accept(self, name: str, key: paramiko.PKey) -> None:
        """Append ``name key`` to osmon's file; another process may have written it meanwhile."""
        assert self.osmon_file is not None
        path = self.osmon_file
        path.parent.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            fresh = load_host_keys(path)
            entry = fresh.lookup(name)
            recorded = entry.get(key.get_name()) if entry else None
            if recorded is None:
                old = path.read_bytes() if path.exists() else b""
                if old and not old.endswith(b"\n"):
                    old += b"\n"
                line = HostKeyEntry([name], key).to_line()
                atomic_write_bytes(path, old + line.encode("ascii"), 0o600)
                fresh.add(name, key.get_name(), key)
            elif recorded.asbytes() != key.asbytes():
                raise SshFailure(HOSTKEY, (
                    f"host key for {name} changed while accepting it — possible attack; "
                    f"check {path}"))
        finally:
            os.close(lock_fd)
        self._known = [(f, fresh if f == path else keys) for f, keys in self._known]


def load_host_keys(path: Path) -> paramiko.HostKeys:
    keys = paramiko.HostKeys()
    try:
        keys.load(str(path))
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise SshFailure(HOSTKEY, f"cannot read {path}: {exc.strerror}") from None
    except ValueError:  # not text: refusing every host beats guessing which keys it held
        raise SshFailure(HOSTKEY, f"cannot read {path}: not a known_hosts text file") from None
    return keys


