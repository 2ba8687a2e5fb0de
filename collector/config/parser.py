"""Parse and validate ``hosts.toml`` once, into frozen dataclasses.

Every other module receives a :class:`Config` and never looks at TOML again, so a typo is caught
in one place, before any host is contacted, and is reported with the file, the table (or host)
and the key.  All problems of a file are collected and reported together: an admin fixing a new
inventory should not have to run ``osmon check`` once per typo.
"""

from __future__ import annotations

import difflib
import getpass
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10 only
    import tomli as tomllib

from collector.errors import ConfigError

#: An SMTP server on this machine may take a password without TLS; no other may.
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
#: Deliberately loose (RFC 5322 is not the point): one address, nothing that could split a
#: header or a recipient list.
_MAIL_ADDRESS = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+\Z")
#: The probe caps a check's output at this (1 MiB): a larger max_output would be a silent lie.
MAX_CHECK_OUTPUT = 1 << 20
#: Host and check names become directory names and URL segments: keep them boring.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}\Z")  # \Z: "$" lets "web1\n" through
#: A host's ``python``: an absolute path or a bare command name, of characters no shell treats
#: specially.  The remote command is still quoted, but a value that needs quoting is a mistake.
SAFE_INTERPRETER = re.compile(
    r"^(/[A-Za-z0-9._+/-]{1,255}|[A-Za-z0-9_][A-Za-z0-9._+-]{0,63})\Z")
MAX_PORT = 65535

METRICS = ("cpu", "memory", "swap", "disk", "load")

#: Built-in thresholds, the most general level of the resolution chain
#: (per mount > per host > [thresholds] > these).  Load is per core.
BUILTIN_THRESHOLDS: dict[str, dict[str, float]] = {
    "cpu": {"warning": 80, "critical": 95, "for": 3},
    "memory": {"warning": 85, "critical": 95, "for": 3},
    "swap": {"warning": 50, "critical": 80, "for": 3},
    "disk": {"warning": 85, "critical": 95, "for": 1},
    "load": {"warning": 2.0, "critical": 4.0, "for": 3},
}


@dataclass(frozen=True)
class Level:
    """Thresholds of one metric: a value >= warning (critical) for ``for_passes`` passes alerts."""

    warning: float | None
    critical: float | None
    for_passes: int = 1


@dataclass(frozen=True)
class Thresholds:
    """Resolved thresholds of one host; ``disk_mounts`` overrides ``disk`` for single mounts."""

    cpu: Level
    memory: Level
    swap: Level
    disk: Level
    load: Level
    disk_mounts: Mapping[str, Level] = field(default_factory=dict)

    def for_metric(self, metric: str, item: str | None = None) -> Level:
        if metric == "disk" and item is not None and item in self.disk_mounts:
            return self.disk_mounts[item]
        return getattr(self, metric)


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


@dataclass(frozen=True)
class BackupSettings:
    keep: int = 14
    keep_days: int = 30


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
    tags: tuple[str, ...] = ()
    network_fs: bool = False
    thresholds: Thresholds | None = None


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

    @property
    def enabled_hosts(self) -> tuple[Host, ...]:
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


def load(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and validate a config file; raise :class:`ConfigError` listing every problem."""
    cfg_path = Path(path) if path is not None else default_config_path()
    try:
        raw = cfg_path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{cfg_path}: cannot read the config file: {exc.strerror}") from None
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{cfg_path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{cfg_path}: invalid TOML: {exc}") from None
    return parse(doc, cfg_path)


def parse(doc: Mapping[str, Any], path: Path) -> Config:
    """Build a :class:`Config` from an already-decoded TOML document."""
    p = _Parser(path)
    cfg = p.config(doc)
    if p.problems:
        raise ConfigError("\n".join(p.problems), problems=tuple(p.problems))
    assert cfg is not None
    return cfg


_TOP_KEYS = ("settings", "thresholds", "smtp", "certfr", "alerts", "web", "backup", "hosts",
             "checks")
_SETTINGS_KEYS = ("data_dir", "backup_dir", "interval_s", "concurrency", "ssh_timeout_s",
                  "host_deadline_s", "pass_deadline_s", "known_hosts", "osmon_known_hosts",
                  "host_key_policy", "ssh_config", "retention_days", "retention_max_mb",
                  "compress_after_days")
_SMTP_KEYS = ("enabled", "host", "port", "security", "user", "password_env", "password_file",
              "from", "to", "timeout_s", "template")
_HOST_KEYS = ("name", "local", "enabled", "address", "user", "port", "identity_file", "python",
              "tags", "network_fs", "thresholds")
_CHECK_KEYS = ("name", "command", "timeout_s", "max_output", "hosts", "tags")
_LEVEL_KEYS = ("warning", "critical", "for")


class _Parser:
    """Collects problems instead of stopping at the first; each names file, table and key."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.base = path.resolve().parent
        self.problems: list[str] = []

    # -- helpers -------------------------------------------------------------------------------
    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{self.path}: {where}: {message}")

    def table(self, doc: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
        value = doc.get(key, {})
        if not isinstance(value, Mapping):
            self.problem(where, f"'{key}' must be a table, not {_type_name(value)}")
            return {}
        return value

    def unknown_keys(self, table: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
        for key in table:
            if key not in allowed:
                guess = difflib.get_close_matches(key, allowed, n=1)
                hint = f" (did you mean '{guess[0]}'?)" if guess else ""
                self.problem(where, f"unknown key '{key}'{hint}")

    def get(self, table: Mapping[str, Any], key: str, kind: type | tuple[type, ...],
            default: Any, where: str, *, minimum: float | None = None,
            maximum: float | None = None) -> Any:
        if key not in table:
            return default
        value = table[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # TOML booleans are ints in Python: do not accept `port = true`.
        if isinstance(value, bool) and bool not in kinds:
            ok = False
        elif float in kinds and isinstance(value, int) and not isinstance(value, bool):
            ok = True
            value = float(value)
        else:
            ok = isinstance(value, kinds)
        if not ok:
            expected = " or ".join(_KIND_NAMES.get(k, k.__name__) for k in kinds)
            self.problem(where, f"'{key}' must be {expected}, not {_type_name(value)} "
                                f"({value!r})")
            return default
        if minimum is not None and value < minimum:
            self.problem(where, f"'{key}' must be at least {_number(minimum)}, not {value!r}")
            return default
        if maximum is not None and value > maximum:
            self.problem(where, f"'{key}' must be at most {_number(maximum)}, not {value!r}")
            return default
        return value

    def path_value(self, table: Mapping[str, Any], key: str, default: str | None,
                   where: str) -> Path | None:
        value = self.get(table, key, str, default, where)
        if value is None or value == "":
            return None
        expanded = Path(os.path.expanduser(value))
        return expanded if expanded.is_absolute() else self.base / expanded

    def str_list(self, table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
        value = table.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(where, f"'{key}' must be a list of strings")
            return ()
        return tuple(value)

    def choice(self, table: Mapping[str, Any], key: str, choices: tuple[str, ...], default: str,
               where: str) -> str:
        value = self.get(table, key, str, default, where)
        if value not in choices:
            self.problem(where, f"'{key}' must be one of {', '.join(choices)}, not {value!r}")
            return default
        return value

    # -- sections ------------------------------------------------------------------------------
    def config(self, doc: Mapping[str, Any]) -> Config | None:
        self.unknown_keys(doc, _TOP_KEYS, "top level")
        settings = self.settings(self.table(doc, "settings", "top level"))
        defaults = self.thresholds(self.table(doc, "thresholds", "top level"), None, "[thresholds]")
        smtp = self.smtp(self.table(doc, "smtp", "top level"))
        certfr = self.simple(doc, "certfr", CertFrSettings,
                             {"enabled": bool, "feed_url": str, "interval_s": int,
                              "timeout_s": float, "max_bytes": int},
                             {"interval_s": (60, 7 * 86400), "timeout_s": (1, 300),
                              "max_bytes": (4096, 64 << 20)})
        if urlsplit(certfr.feed_url).scheme not in ("http", "https"):
            self.problem("[certfr]", f"'feed_url' must be an http:// or https:// URL, not "
                                     f"{certfr.feed_url!r}")
        alerts = self.simple(doc, "alerts", AlertSettings,
                             {"repeat_interval_s": int, "down_after": int,
                              "silent_after_s": int, "hysteresis": float},
                             {"repeat_interval_s": (0, None), "down_after": (1, 1000),
                              "silent_after_s": (60, None), "hysteresis": (0, 50)})
        web = self.simple(doc, "web", WebSettings,
                          {"public_url": str, "host": str, "port": int, "require_login": bool},
                          {"port": (1, MAX_PORT)})
        backup = self.simple(doc, "backup", BackupSettings, {"keep": int, "keep_days": int},
                             {"keep": (1, 100000), "keep_days": (0, 100000)})
        hosts = self.hosts(doc.get("hosts", []), defaults, self.ssh_config(settings, doc))
        checks = self.checks(doc.get("checks", []), hosts, settings)
        return Config(path=self.path, settings=settings, thresholds=defaults, smtp=smtp,
                      certfr=certfr, alerts=alerts, web=web, backup=backup, hosts=hosts,
                      checks=checks)

    def settings(self, t: Mapping[str, Any]) -> Settings:
        w = "[settings]"
        self.unknown_keys(t, _SETTINGS_KEYS, w)
        data_dir = self.path_value(t, "data_dir", "data", w) or self.base / "data"
        interval = self.get(t, "interval_s", int, 60, w, minimum=5)
        ssh_timeout = self.get(t, "ssh_timeout_s", float, 10.0, w, minimum=0.5)
        host_deadline = self.get(t, "host_deadline_s", float,
                                 min(3 * ssh_timeout, interval * 0.8), w, minimum=1)
        pass_deadline = self.get(t, "pass_deadline_s", float, max(interval - 10, interval * 0.8),
                                 w, minimum=1)
        if pass_deadline >= interval:
            self.problem(w, f"'pass_deadline_s' ({pass_deadline:g}) must be below 'interval_s' "
                            f"({interval}), or passes pile up")
        return Settings(
            data_dir=data_dir,
            backup_dir=self.path_value(t, "backup_dir", "backups", w) or self.base / "backups",
            interval_s=interval,
            concurrency=self.get(t, "concurrency", int, 32, w, minimum=1),
            ssh_timeout_s=ssh_timeout,
            host_deadline_s=host_deadline,
            pass_deadline_s=pass_deadline,
            known_hosts=self.path_value(t, "known_hosts", "~/.ssh/known_hosts", w),
            osmon_known_hosts=(self.path_value(t, "osmon_known_hosts", None, w)
                               or data_dir / "state" / "known_hosts"),
            host_key_policy=self.choice(t, "host_key_policy", ("strict", "accept-new"), "strict",
                                        w),
            ssh_config=self.path_value(t, "ssh_config", "~/.ssh/config", w),
            retention_days=self.get(t, "retention_days", int, 90, w, minimum=1),
            retention_max_mb=self.get(t, "retention_max_mb", int, 2048, w, minimum=1),
            compress_after_days=self.get(t, "compress_after_days", int, 2, w, minimum=1),
        )

    def level(self, t: Any, metric: str, inherited: Level, where: str) -> Level:
        if not isinstance(t, Mapping):
            self.problem(where, f"'{metric}' must be a table like "
                                f"{{ warning = 80, critical = 95 }}, not {_type_name(t)}")
            return inherited
        allowed = _LEVEL_KEYS + (("mounts",) if metric == "disk" else ())
        self.unknown_keys(t, allowed, f"{where}.{metric}")
        w = f"{where}.{metric}"
        warning = self.get(t, "warning", float, inherited.warning, w, minimum=0)
        critical = self.get(t, "critical", float, inherited.critical, w, minimum=0)
        for_passes = self.get(t, "for", int, inherited.for_passes, w, minimum=1)
        if warning is not None and critical is not None and warning >= critical:
            self.problem(w, f"warning ({warning:g}) must be below critical ({critical:g})")
        return Level(warning, critical, for_passes)

    def thresholds(self, t: Mapping[str, Any], parent: Thresholds | None,
                   where: str) -> Thresholds:
        self.unknown_keys(t, METRICS, where)
        levels: dict[str, Level] = {}
        for metric in METRICS:
            if parent is not None:
                inherited = getattr(parent, metric)
            else:
                b = BUILTIN_THRESHOLDS[metric]
                inherited = Level(b["warning"], b["critical"], int(b["for"]))
            levels[metric] = (self.level(t[metric], metric, inherited, where)
                              if metric in t else inherited)
        mounts: dict[str, Level] = dict(parent.disk_mounts) if parent else {}
        disk_t = t.get("disk")
        if isinstance(disk_t, Mapping) and "mounts" in disk_t:
            raw_mounts = disk_t["mounts"]
            if not isinstance(raw_mounts, Mapping):
                self.problem(f"{where}.disk", "'mounts' must be a table of mount = { ... }")
            else:
                for mount, lt in raw_mounts.items():
                    mounts[mount] = self.level(lt, "disk", levels["disk"],
                                               f"{where}.disk.mounts[{mount!r}]")
        return Thresholds(disk_mounts=mounts, **levels)

    def smtp(self, t: Mapping[str, Any]) -> SmtpSettings:
        w = "[smtp]"
        self.unknown_keys(t, _SMTP_KEYS + ("password",), w)  # "password": its own message
        if "password" in t:
            self.problem(w, "'password' in clear is not accepted: use password_env (the name of "
                            "an environment variable) or password_file")
        security = self.choice(t, "security", ("none", "starttls", "ssl"), "none", w)
        to = self.str_list(t, "to", w)
        enabled = self.get(t, "enabled", bool, bool(t) and bool(to), w)
        if enabled and not to:
            self.problem(w, "'to' must list at least one recipient when e-mail is enabled")
        from_addr = self.get(t, "from", str, "osmon@localhost", w)
        for key, address in [("from", from_addr)] + [("to", a) for a in to]:
            if not _MAIL_ADDRESS.match(address):
                self.problem(w, f"'{key}' holds {address!r}, which is not an e-mail address "
                                "(name@domain, no spaces, commas or line breaks)")
        if (enabled and security == "none" and self.get(t, "user", str, "", w)
                and self.get(t, "host", str, "localhost", w) not in _LOOPBACK_NAMES):
            self.problem(w, "'user' is set with security = \"none\": the password would cross "
                            "the network in clear; use \"starttls\" or \"ssl\"")
        template = self.path_value(t, "template", None, w)
        if template is not None and not template.is_file():
            self.problem(w, f"'template' names {template}, which is not a file")
        return SmtpSettings(
            enabled=enabled,
            host=self.get(t, "host", str, "localhost", w),
            port=self.get(t, "port", int, 465 if security == "ssl" else 25, w, minimum=1,
                          maximum=MAX_PORT),
            security=security,
            user=self.get(t, "user", str, "", w),
            password_env=self.get(t, "password_env", str, "OSMON_SMTP_PASSWORD", w),
            password_file=self.path_value(t, "password_file", None, w),
            from_addr=from_addr,
            to=to,
            timeout_s=self.get(t, "timeout_s", float, 10.0, w, minimum=0.1),
            template=template,
        )

    def simple(self, doc: Mapping[str, Any], key: str, cls: type, kinds: dict[str, type],
               bounds: Mapping[str, tuple[float, float]] | None = None) -> Any:
        t = self.table(doc, key, "top level")
        w = f"[{key}]"
        self.unknown_keys(t, tuple(kinds), w)
        defaults = cls()
        limits = bounds or {}
        values = {k: self.get(t, k, kind, getattr(defaults, k), w,
                              minimum=limits.get(k, (None, None))[0],
                              maximum=limits.get(k, (None, None))[1])
                  for k, kind in kinds.items()}
        return cls(**values)

    def hosts(self, raw: Any, defaults: Thresholds, ssh_config: _SshConfig) -> tuple[Host, ...]:
        if not isinstance(raw, list):
            self.problem("top level", "'hosts' must be an array of tables: [[hosts]]")
            return ()
        hosts: list[Host] = []
        seen: set[str] = set()
        for index, t in enumerate(raw, start=1):
            if not isinstance(t, Mapping):
                self.problem(f"[[hosts]] #{index}", "must be a table")
                continue
            name = t.get("name")
            where = f"host '{name}'" if isinstance(name, str) else f"[[hosts]] #{index}"
            host = self.host(t, where, defaults, ssh_config)
            if host is None:
                continue
            if host.name in seen:
                self.problem(where, f"duplicate host name '{host.name}'")
                continue
            seen.add(host.name)
            hosts.append(host)
        return tuple(hosts)

    def host(self, t: Mapping[str, Any], where: str, defaults: Thresholds,
             ssh_config: _SshConfig) -> Host | None:
        self.unknown_keys(t, _HOST_KEYS, where)
        name = t.get("name")
        if not isinstance(name, str) or not name:
            self.problem(where, "'name' is missing")
            return None
        if not SAFE_NAME.match(name):
            self.problem(where, "'name' may only hold letters, digits, '.', '_' and '-' "
                                "(it is used in paths and URLs), at most 63 characters")
            return None
        local = self.get(t, "local", bool, False, where)
        address = self.get(t, "address", str, "", where)
        user = self.get(t, "user", str, "", where)
        port = self.get(t, "port", int, 0, where, minimum=1, maximum=MAX_PORT)
        identity = self.path_value(t, "identity_file", None, where)
        if not local:
            address, user, port, identity = self.resolve_ssh(ssh_config, name, address, user,
                                                             port, identity, where)
        python = self.get(t, "python", str, "python3", where)
        if not SAFE_INTERPRETER.match(python):
            self.problem(where, f"'python' must be an absolute path (/usr/bin/python3) or a "
                                f"command name (python3) of letters, digits, '.', '_', '+' and "
                                f"'-', with no spaces, quotes or shell characters; not "
                                f"{python!r}")
            python = "python3"
        host_thresholds = None
        if "thresholds" in t:
            tt = t["thresholds"]
            if isinstance(tt, Mapping):
                host_thresholds = self.thresholds(tt, defaults, f"{where}.thresholds")
            else:
                self.problem(where, "'thresholds' must be a table")
        return Host(
            name=name, local=local, enabled=self.get(t, "enabled", bool, True, where),
            address=address, user=user, port=port or 22, identity_file=identity, python=python,
            tags=self.str_list(t, "tags", where),
            network_fs=self.get(t, "network_fs", bool, False, where),
            thresholds=host_thresholds,
        )

    def checks(self, raw: Any, hosts: tuple[Host, ...], settings: Settings) -> tuple[Check, ...]:
        if not isinstance(raw, list):
            self.problem("top level", "'checks' must be an array of tables: [[checks]]")
            return ()
        checks: list[Check] = []
        names = {h.name for h in hosts}
        for index, t in enumerate(raw, start=1):
            if not isinstance(t, Mapping):
                self.problem(f"[[checks]] #{index}", "must be a table")
                continue
            name = t.get("name")
            where = f"check '{name}'" if isinstance(name, str) else f"[[checks]] #{index}"
            self.unknown_keys(t, _CHECK_KEYS, where)
            if not isinstance(name, str) or not SAFE_NAME.match(name):
                self.problem(where, "'name' is missing or holds characters other than letters, "
                                    "digits, '.', '_' and '-'")
                continue
            if any(c.name == name for c in checks):
                self.problem(where, f"duplicate check name '{name}'")
                continue
            command = t.get("command")
            if isinstance(command, str):
                command = command.split()
            if (not isinstance(command, list) or not command
                    or not all(isinstance(a, str) and a for a in command)):
                self.problem(where, "'command' must be a non-empty list of arguments, e.g. "
                                    "[\"/usr/lib/nagios/plugins/check_load\", \"-w\", \"5\"]")
                continue
            for_hosts = self.str_list(t, "hosts", where)
            for unknown in sorted(set(for_hosts) - names):
                self.problem(where, f"'hosts' names '{unknown}', which is not a host in this file")
            checks.append(Check(
                name=name, command=tuple(command),
                timeout_s=self.check_timeout(t, where, settings),
                max_output=self.get(t, "max_output", int, 65536, where, minimum=256,
                                    maximum=MAX_CHECK_OUTPUT),
                hosts=for_hosts, tags=self.str_list(t, "tags", where)))
        return tuple(checks)

    def ssh_config(self, settings: Settings, doc: Mapping[str, Any]) -> _SshConfig:
        """``settings.ssh_config``, parsed once for all hosts (only if a remote host needs it).

        The default ``~/.ssh/config`` may be absent; a file named in ``[settings]`` must exist.
        """
        path = settings.ssh_config
        raw_settings = doc.get("settings")
        named = isinstance(raw_settings, Mapping) and bool(raw_settings.get("ssh_config"))
        if path is not None and named and not path.is_file():
            self.problem("[settings]", f"'ssh_config' names {path}, which is not a file")
            path = None
        return _SshConfig(path, self)

    def check_timeout(self, t: Mapping[str, Any], where: str, settings: Settings) -> float:
        """A check runs inside the probe, within its host's deadline: leave room for the rest.

        The host deadline covers connecting and logging in too (up to ``ssh_timeout_s``), so a
        check allowed longer than ``host_deadline_s - ssh_timeout_s`` would make its host a
        ``timeout`` instead of a check result.
        """
        room = settings.host_deadline_s - settings.ssh_timeout_s
        default = min(10.0, room) if room >= 0.1 else 10.0
        timeout = self.get(t, "timeout_s", float, default, where, minimum=0.1)
        if timeout > room:
            self.problem(where, f"'timeout_s' ({timeout:g}) must leave room within the host "
                                f"deadline: at most [settings] host_deadline_s - ssh_timeout_s "
                                f"({settings.host_deadline_s:g} - {settings.ssh_timeout_s:g} = "
                                f"{room:g}); lower it or raise host_deadline_s")
        return timeout

    def resolve_ssh(self, ssh_config: _SshConfig, name: str, address: str, user: str,
                    port: int, identity: Path | None, where: str
                    ) -> tuple[str, str, int, Path | None]:
        """Fill what the inventory omits from the ssh config file, as ``ssh name`` would."""
        if address and user and port and identity is not None:
            return address, user, port, identity  # nothing to look up
        ssh_cfg = ssh_config.lookup(name)
        if not address:
            address = ssh_cfg.get("hostname", "")
            if not address or address == name:
                self.problem(where, "'address' is missing (needed for a remote host; or set "
                                    "local = true, or give it a HostName in ~/.ssh/config)")
        if not user:
            user = ssh_cfg.get("user") or getpass.getuser()
        if not port:
            try:
                port = int(ssh_cfg.get("port", 22))
            except ValueError:
                port = 0
            if not 1 <= port <= MAX_PORT:
                self.problem(where, f"the Port {ssh_cfg.get('port')!r} given by "
                                    f"{ssh_config.path} is not a port number")
                port = 22
        if identity is None and ssh_cfg.get("identityfile"):
            identity = Path(os.path.expanduser(ssh_cfg["identityfile"][0]))
        return address, user, port, identity


class _SshConfig:
    """An OpenSSH client config read with ``paramiko.SSHConfig``, parsed at most once.

    paramiko is imported only when a host needs a lookup and the file exists, so a config of
    fully described hosts (or of the local host alone) never pays for it.
    """

    def __init__(self, path: Path | None, parser: _Parser) -> None:
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


_KIND_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _type_name(value: Any) -> str:
    for kind, label in ((bool, "a boolean"), (str, "a string"), (int, "an integer"),
                        (float, "a number"), (list, "an array"), (Mapping, "a table")):
        if isinstance(value, kind):
            return label
    return type(value).__name__


def _number(value: float) -> str:
    """``1048576``, not ``1.04858e+06``: a limit is quoted so the admin can copy it."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
