"""The OpenSSH client config (``~/.ssh/config``), read once for all hosts of a config."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol


class ProblemSink(Protocol):
    def problem(self, where: str, message: str) -> None: ...


class SshConfig:
    """An OpenSSH client config read with ``paramiko.SSHConfig``, parsed at most once.

    paramiko is imported only when a host needs a lookup and the file exists, so a config of
    fully described hosts (or of the local host alone) never pays for it.
    """

    def __init__(self, path: Path | None, parser: ProblemSink) -> None:
        self.path = path
        self._parser = parser
        self._parsed: Any = None
        self._loaded = False

    def lookup(self, name: str) -> dict[str, Any]:
        if not self._loaded:
            self._loaded = True
            self._parsed = self._load()
        if self._parsed is None:
            return {"hostname": name}
        return dict(self._parsed.lookup(name))

    def _load(self) -> Any:
        if self.path is None or not self.path.is_file():
            return None
        import paramiko

        class FastSSHConfig(paramiko.SSHConfig):
            """paramiko's own, minus a ``getpass.getuser()`` (a passwd lookup) for every
            ``Host`` block that does not match: with a few hundred hosts in the file that
            made loading hosts.toml cost seconds of CPU on every pass."""

            def _does_match(self, match_list: Any, *args: Any) -> Any:
                if not match_list:  # a Host block: paramiko would return [] all the same
                    return []
                return super()._does_match(match_list, *args)

        try:
            return FastSSHConfig.from_path(str(self.path))
        except Exception as exc:  # paramiko raises several kinds, and OSError
            # Reported, not fatal for the other hosts: their values may be complete.
            self._parser.problem("[settings]", f"cannot read the ssh config {self.path}: "
                                               f"{_first_line(str(exc))}")
            return None


def _first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0][:200]
