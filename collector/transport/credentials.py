"""Client keys: loaded once per pass and shared by every session of it."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import paramiko

from collector.transport.failures import AUTH, SshFailure

DEFAULT_KEY_FILES = ("id_ed25519", "id_ecdsa", "id_rsa")


class Credentials:
    """Private keys loaded once per pass (parsing a key file for each of 200 hosts is waste)."""

    def __init__(self) -> None:
        self._cache: dict[Path, paramiko.PKey | SshFailure] = {}
        self._lock = threading.Lock()

    def identity(self, path: Path) -> paramiko.PKey:
        with self._lock:
            if path not in self._cache:
                self._cache[path] = load_key(path)
            found = self._cache[path]
        if isinstance(found, SshFailure):  # a fresh exception: threads raise it at once
            raise SshFailure(found.kind, found.message)
        return found

    def default_keys(self) -> list[tuple[str, paramiko.PKey]]:
        """``~/.ssh/id_*`` files that load without a passphrase, as ``ssh`` would try them."""
        keys = []
        for name in DEFAULT_KEY_FILES:
            path = Path(os.path.expanduser(f"~/.ssh/{name}"))
            if path.is_file():
                try:
                    keys.append((str(path), self.identity(path)))
                except SshFailure:
                    continue
        return keys


def load_key(path: Path) -> paramiko.PKey | SshFailure:
    try:
        return paramiko.PKey.from_path(str(path))
    except FileNotFoundError:
        return SshFailure(AUTH, f"identity file {path} does not exist")
    except (paramiko.PasswordRequiredException, TypeError) as exc:
        # New-format OpenSSH keys say it with a TypeError from cryptography.
        if isinstance(exc, TypeError) and "password" not in str(exc).lower():
            return SshFailure(AUTH, f"cannot use identity file {path}: {exc}")
        return SshFailure(AUTH, f"identity file {path} needs a passphrase; use a key without "
                                f"one for monitoring (cron has no ssh-agent)")
    except (OSError, paramiko.SSHException, ValueError) as exc:
        return SshFailure(AUTH, f"cannot use identity file {path}: {exc}")


