"""The config as the rest of osmon sees it: frozen dataclasses, built once by the parser.

Every other module receives a :class:`Config` and never looks at TOML again.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

from collector.config.shard import Shard
from collector.metrics.family import Level

#: A family with no level set: nothing is ever judged a problem.
OFF = Level(None, None)


@dataclass(frozen=True)
class Thresholds:
    """Resolved thresholds of one host: a level per judged family (:mod:`collector.metrics`),
    and per-item levels (a mount of ``disk``, a fixed item of its family) that win over it."""

    levels: Mapping[str, Level]
    items: Mapping[str, Mapping[str, Level]] = field(default_factory=dict)

    def for_metric(self, metric: str, item: str | None = None) -> Level:
        if item is not None:
            level = self.items.get(metric, {}).get(item)
            if level is not None:
                return level
        return self.levels.get(metric, OFF)


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    backup_dir: Path
    interval_s: int = 60
    concurrency: int = 32
    ssh_timeout_s: float = 10.0
    #: Hard wall-clock budget of one host, enforced outside paramiko.
    host_deadline_s: float = 30.0
    #: Budget of the whole pass; below the cron interval so passes never pile up.
    pass_deadline_s: float = 50.0
    known_hosts: Path | None = None
    #: osmon's own known_hosts, where ``accept-new`` records first-seen keys.
    osmon_known_hosts: Path | None = None
    host_key_policy: str = "strict"
    ssh_config: Path | None = None
    retention_days: int = 90
    retention_max_mb: int = 2048
    compress_after_days: int = 2
    #: This collector's share of the hosts when several boxes share the inventory; None: all.
    shard: Shard | None = None
    #: SSH handshakes in flight at once (sshd's MaxStartups drops beyond its start).
    max_handshakes: int = 10
    #: ``osmon run`` opens a resident session again after this long (leaks, key rotation).
    session_max_age_s: float = 86400.0


@dataclass(frozen=True)
class SmtpSettings:
    enabled: bool = False
    host: str = "localhost"
    port: int = 25
    security: str = "none"
    user: str = ""
    password_env: str = "OSMON_SMTP_PASSWORD"
    password_file: Path | None = None
    from_addr: str = "osmon@localhost"
    to: tuple[str, ...] = ()
    timeout_s: float = 10.0
    template: Path | None = None

    def password(self) -> str | None:
        """Read the secret when needed, so it never sits in the config object or its repr."""
        if self.password_file is not None:
            return self.password_file.read_text(encoding="utf-8").strip()
        if self.password_env:
            return os.environ.get(self.password_env) or None
        return None


@dataclass(frozen=True)
class WebhookSettings:
    """Notifications POSTed as Alertmanager webhook JSON (collector.alerts.webhook)."""

    enabled: bool = False
    #: Where to POST; may hold a secret in its path or query (chat services put one there),
    #: so messages name only :attr:`where`.
    url: str = ""
    bearer_token_file: Path | None = None
    timeout_s: float = 10.0

    def token(self) -> str | None:
        """Read the bearer token when sending, so it never sits in the config or its repr."""
        if self.bearer_token_file is None:
            return None
        return self.bearer_token_file.read_text(encoding="utf-8").strip() or None

    @property
    def where(self) -> str:
        """The endpoint as messages may name it: scheme, host and port, nothing secret."""
        parts = urlsplit(self.url)
        host = parts.hostname or "?"
        host = f"[{host}]" if ":" in host else host
        try:
            port = f":{parts.port}" if parts.port else ""
        except ValueError:
            port = ""
        return f"{parts.scheme}://{host}{port}"


@dataclass(frozen=True)
class CertFrSettings:
    enabled: bool = True
    feed_url: str = "https://www.cert.ssi.gouv.fr/alerte/feed/"
    interval_s: int = 1800
    timeout_s: float = 10.0
    max_bytes: int = 2_000_000


@dataclass(frozen=True)
class AlertSettings:
    repeat_interval_s: int = 4 * 3600
    #: Consecutive failed passes before a host is declared down.
    down_after: int = 2
    #: No successful sample for this long is an alert of its own (the collector may be dead).
    silent_after_s: int = 1800
    #: A problem clears only once the value is this many points below the threshold.
    hysteresis: float = 5.0


@dataclass(frozen=True)
class WebSettings:
    public_url: str = "http://localhost:5000"
    host: str = "127.0.0.1"
    port: int = 5000
    require_login: bool = False
    #: A file holding the bearer token Prometheus sends for ``/metrics`` (read when needed).
    metrics_token_file: Path | None = None

    def metrics_token(self) -> str | None:
        """The token, read now (so it can be rotated without a restart); None when no file is
        set.  ``OSError`` when the file cannot be read."""
        if self.metrics_token_file is None:
            return None
        return self.metrics_token_file.read_text(encoding="utf-8").strip()
    #: Addresses or networks of the reverse proxy in front: only requests from them may say
    #: who the client is (X-Forwarded-For), so the login throttle counts real clients.
    trusted_proxies: tuple[str, ...] = ()


@dataclass(frozen=True)
class BackupSettings:
    keep: int = 14
    keep_days: int = 30


@dataclass(frozen=True)
class Jump:
    """A bastion a host is reached through (``jump`` in hosts.toml, or ``ProxyJump`` of the
    ssh config): another host of the inventory, or one that is not monitored itself."""

    #: How messages name it: the inventory host's name, or ``user@address:port``.
    label: str
    address: str
    user: str
    port: int = 22
    identity_file: Path | None = None


@dataclass(frozen=True)
class Host:
    name: str
    local: bool = False
    enabled: bool = True
    address: str = ""
    user: str = ""
    port: int = 22
    identity_file: Path | None = None
    #: Interpreter started on the host; a path, never passed through a shell.
    python: str = "python3"
    #: Which probe runs there: "python" (remote_probe/probe.py), "sh" (remote_probe/probe.sh,
    #: for hosts without Python) or "auto" (Python, else the shell probe; remembered a day).
    probe: str = "auto"
    tags: tuple[str, ...] = ()
    network_fs: bool = False
    #: Collect the top processes' command lines (secrets masked on the host); false: none.
    command_lines: bool = True
    thresholds: Thresholds | None = None
    #: The bastion this host is reached through, or None for a direct connection.
    jump: Jump | None = None


@dataclass(frozen=True)
class Check:
    """A Nagios-plugin-API check; ``command`` is an argv list, run without a shell."""

    name: str
    command: tuple[str, ...]
    timeout_s: float = 10.0
    max_output: int = 65536
    hosts: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    def applies_to(self, host: Host) -> bool:
        if not self.hosts and not self.tags:
            return True
        return host.name in self.hosts or bool(set(self.tags) & set(host.tags))


@dataclass(frozen=True)
class Config:
    path: Path
    settings: Settings
    thresholds: Thresholds
    smtp: SmtpSettings
    certfr: CertFrSettings
    alerts: AlertSettings
    web: WebSettings
    backup: BackupSettings
    hosts: tuple[Host, ...]
    checks: tuple[Check, ...] = ()
    webhook: WebhookSettings = field(default_factory=WebhookSettings)

    @cached_property
    def enabled_hosts(self) -> tuple[Host, ...]:
        """The hosts this collector watches: enabled, and of its shard when it is one of
        several (:mod:`collector.config.shard`).  Passes, alerts, views and ``/metrics`` all
        use this, so a shard never judges or shows another shard's hosts."""
        shard = self.settings.shard
        return tuple(h for h in self.fleet_hosts if shard is None or shard.owns(h.name))

    @cached_property
    def fleet_hosts(self) -> tuple[Host, ...]:
        """Every enabled host of the file, whatever shard it belongs to."""
        return tuple(h for h in self.hosts if h.enabled)

    @property
    def state_dir(self) -> Path:
        return self.settings.data_dir / "state"

    def host(self, name: str) -> Host | None:
        return next((h for h in self.hosts if h.name == name), None)

    def thresholds_for(self, host: Host) -> Thresholds:
        return host.thresholds or self.thresholds

    def checks_for(self, host: Host) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.applies_to(host))


def default_config_path() -> Path:
    return Path(os.environ.get("OSMON_CONFIG") or "hosts.toml")
