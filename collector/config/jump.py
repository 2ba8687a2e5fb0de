"""A host's bastion: ``jump`` in hosts.toml, else ``ProxyJump`` in the ssh config.

``jump = "bastion1"`` names another host of the inventory: its address, user, port and key are
used (and its host key is checked under its own address, as for any host).  A bastion that is
not monitored itself is written ``user@host:port`` (user and port optional; what is missing
comes from the ssh config's block for that host, else the host's own user, port 22 and the
host's key).  ``jump = ""`` overrides a ``ProxyJump`` of the ssh config; ``ProxyJump none``
means none.  One bastion per host: ``ssh -J a,b`` chains are refused, naming the host.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from collector.config.model import Host, Jump
from collector.config.ssh_config import SshConfig

MAX_PORT = 65535
#: ``[user@]host[:port]``, the host possibly an IPv6 address in brackets.
_SPEC = re.compile(r"^(?:(?P<user>[^@\s:/\[\]]+)@)?"
                   r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9._-]+))"
                   r"(?::(?P<port>\d{1,5}))?\Z")


class ProblemSink(Protocol):
    def problem(self, where: str, message: str) -> None: ...


@dataclass(frozen=True)
class JumpText:
    """A host's bastion as written, before the inventory is complete."""

    text: str
    where: str
    #: "jump" (hosts.toml) or the ssh config file it came from (ProxyJump).
    origin: str


def written_jump(sink: ProblemSink, text: str | None, local: bool, where: str,
                 ssh_config: SshConfig, name: str) -> JumpText | None:
    """A host's bastion as written (``jump``, else the ssh config's ``ProxyJump``), to be
    resolved once every host is known (:func:`resolve`)."""
    if text is not None:
        if local and text:
            sink.problem(where, "'jump' is for remote hosts: the local host is measured "
                                "in-process")
        return JumpText(text, where, "jump") if text and not local else None
    if local or ssh_config.path is None or not ssh_config.path.is_file():
        return None
    proxy = ssh_config.lookup(name).get("proxyjump")
    return JumpText(str(proxy), where, str(ssh_config.path)) if proxy else None


def resolve(sink: ProblemSink, hosts: tuple[Host, ...], written: Mapping[str, JumpText],
            ssh_config: SshConfig) -> tuple[Host, ...]:
    """The hosts with their bastions resolved; every problem reported to ``sink``."""
    by_name = {h.name: h for h in hosts}
    resolved = []
    for host in hosts:
        spec = written.get(host.name)
        jump = _jump(sink, host, spec, by_name, written, ssh_config) if spec else None
        resolved.append(replace(host, jump=jump) if jump is not None else host)
    return tuple(resolved)


def _jump(sink: ProblemSink, host: Host, spec: JumpText, by_name: Mapping[str, Host],
          written: Mapping[str, JumpText], ssh_config: SshConfig) -> Jump | None:
    text = spec.text.strip()
    key = "'jump'" if spec.origin == "jump" else f"ProxyJump of {spec.origin}"
    if not text or (spec.origin != "jump" and text.lower() == "none"):
        return None
    if "," in text:
        sink.problem(spec.where, f"{key} {text!r} chains several bastions; osmon reaches a "
                                 "host through one (make the last one the jump)")
        return None
    found = _SPEC.match(text)
    if found is None:
        sink.problem(spec.where, f"{key} {text!r} is neither the name of a host of this file "
                                 "nor user@host:port")
        return None
    user, address, port = found["user"], found["v6"] or found["host"], found["port"]
    named = by_name.get(text)
    if named is not None:
        if named.local or named.name == host.name:
            sink.problem(spec.where, f"{key} names {text!r}, which cannot be a bastion "
                                     f"({'the local host' if named.local else 'itself'})")
            return None
        if named.name in written and written[named.name].text.strip() not in ("", "none"):
            sink.problem(spec.where, f"{key} names {text!r}, which has a jump of its own; "
                                     "osmon reaches a host through one bastion")
            return None
        return Jump(label=named.name, address=named.address, user=named.user, port=named.port,
                    identity_file=named.identity_file)
    if spec.origin == "jump" and user is None and port is None:
        sink.problem(spec.where, f"'jump' names {text!r}, which is no host of this file (a "
                                 "bastion that is not monitored is written user@host:port)")
        return None
    if port is not None and not 1 <= int(port) <= MAX_PORT:
        sink.problem(spec.where, f"{key} {text!r}: {port} is not a port number")
        return None
    block = ssh_config.lookup(address)  # what `ssh -J` would take for that host
    identity = block.get("identityfile")
    try:
        block_port = int(block.get("port", 22))
    except ValueError:
        block_port = 22
    return Jump(label=text, address=block.get("hostname") or address,
                user=user or block.get("user") or host.user,
                port=int(port) if port is not None else block_port,
                identity_file=Path(os.path.expanduser(identity[0])) if identity
                else host.identity_file)
