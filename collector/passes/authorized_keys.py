"""The ``authorized_keys`` line that pins osmon's key to what osmon runs on a host.

``restrict`` turns off everything a key may do beyond its command (forwarding, a terminal, the
agent, X11, ``~/.ssh/rc``); ``command="..."`` makes sshd run the host's remote command
whatever the client asks (:func:`collector.passes.probe_call.remote_command`: one fixed string
per host, the same for cron's one-shot passes and ``osmon run``'s resident sessions, since
everything that varies travels on stdin); ``from="..."`` optionally accepts the key only from
the central server's address.  A host that is another host's bastion (``jump``) also needs
``port-forwarding`` and one ``permitopen`` per host behind it, and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from collector.config import Config, Host
from collector.passes.probe_call import remote_command

#: Where the public key goes when osmon cannot read it next to the private key.
NO_PUBLIC_KEY = "<the public key of osmon's private key>"


@dataclass(frozen=True)
class KeyLine:
    line: str
    hosts: tuple[str, ...]


def options(command: str, *, source: str | None = None,
            forwarding_to: Sequence[str] = ()) -> str:
    """The options field: ``restrict,...,command="..."`` (a ``"`` in the command escaped)."""
    parts = ["restrict"]
    if forwarding_to:
        parts.append("port-forwarding")
        parts.extend(f'permitopen="{destination}"' for destination in forwarding_to)
    if source:
        parts.append(f'from="{source}"')
    # sshd reads a backslash as an escape only before a quote (auth-options.c, opt_dequote).
    parts.append('command="' + command.replace('"', '\\"') + '"')
    return ",".join(parts)


def public_key(host: Host) -> str:
    """The text of ``<identity_file>.pub``, else a placeholder saying what goes there."""
    if host.identity_file is None:
        return NO_PUBLIC_KEY
    try:
        text = Path(f"{host.identity_file}.pub").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return NO_PUBLIC_KEY
    return text if text and "\n" not in text else NO_PUBLIC_KEY


def lines_for(config: Config, hosts: Iterable[Host], source: str | None = None) -> list[KeyLine]:
    """One line per distinct line needed, with the hosts whose account takes it."""
    behind: dict[str, list[str]] = {}
    for other in config.hosts:
        if other.jump is not None and config.host(other.jump.label) is not None:
            behind.setdefault(other.jump.label, []).append(f"{other.address}:{other.port}")
    grouped: dict[str, list[str]] = {}
    for host in hosts:
        if host.local:
            continue
        line = (options(remote_command(config, host), source=source,
                        forwarding_to=sorted(set(behind.get(host.name, ()))))
                + " " + public_key(host))
        grouped.setdefault(line, []).append(host.name)
    return [KeyLine(line, tuple(names)) for line, names in grouped.items()]
