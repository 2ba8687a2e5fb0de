"""Parse and validate ``hosts.toml`` once, into the frozen dataclasses of :mod:`.model`.

Every other module receives a :class:`Config` and never looks at TOML again, so a typo is caught
in one place, before any host is contacted, and is reported with the file, the table (or host)
and the key.  All problems of a file are collected and reported together: an admin fixing a new
inventory should not have to run ``osmon check`` once per typo.
"""

from __future__ import annotations

import getpass
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10 only
    import tomli as tomllib

from collector.config.jump import JumpText, written_jump
from collector.config.jump import resolve as resolve_jumps
from collector.config.model import (
    AlertSettings,
    BackupSettings,
    CertFrSettings,
    Check,
    Config,
    Host,
    Settings,
    SmtpSettings,
    Thresholds,
    WebSettings,
    default_config_path,
)
from collector.config.shard import Shard, parse_shard
from collector.config.ssh_config import SshConfig
from collector.config.thresholds import ThresholdReader
from collector.config.webhook import webhook as webhook_table
from collector.errors import ConfigError
from collector.names import SAFE_NAME

#: An SMTP server on this machine may take a password without TLS; no other may.
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
#: Deliberately loose (RFC 5322 is not the point): one address, nothing that could split a
#: header or a recipient list.
_MAIL_ADDRESS = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+\Z")
#: The probe caps a check's output at this (1 MiB): a larger max_output would be a silent lie.
MAX_CHECK_OUTPUT = 1 << 20
#: A host's ``python``: an absolute path or a bare command name, of characters no shell treats
#: specially.  The remote command is still quoted, but a value that needs quoting is a mistake.
SAFE_INTERPRETER = re.compile(
    r"^(/[A-Za-z0-9._+/-]{1,255}|[A-Za-z0-9_][A-Za-z0-9._+-]{0,63})\Z")
MAX_PORT = 65535



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


_TOP_KEYS = ("settings", "thresholds", "smtp", "webhook", "certfr", "alerts", "web", "backup",
             "hosts", "checks")
_SETTINGS_KEYS = ("data_dir", "backup_dir", "interval_s", "concurrency", "ssh_timeout_s",
                  "host_deadline_s", "pass_deadline_s", "known_hosts", "osmon_known_hosts",
                  "host_key_policy", "ssh_config", "retention_days", "retention_max_mb",
                  "compress_after_days", "shard", "max_handshakes", "session_max_age_s")
_SMTP_KEYS = ("enabled", "host", "port", "security", "user", "password_env", "password_file",
              "from", "to", "timeout_s", "template")
_HOST_KEYS = ("name", "local", "enabled", "address", "user", "port", "identity_file", "python",
              "probe", "tags", "network_fs", "command_lines", "thresholds", "jump")
_WEB_KEYS = ("public_url", "host", "port", "require_login", "metrics_token_file",
             "trusted_proxies")
#: A host's ``probe``: the Python probe, the POSIX shell probe, or the first that works there.
PROBES = ("auto", "python", "sh")
_CHECK_KEYS = ("name", "command", "timeout_s", "max_output", "hosts", "tags")


class _Parser(ThresholdReader):
    """Builds a :class:`Config`; problems are collected, not raised (see :class:`TableReader`)."""

    # -- sections ------------------------------------------------------------------------------
    def config(self, doc: Mapping[str, Any]) -> Config | None:
        self.unknown_keys(doc, _TOP_KEYS, "top level")
        settings = self.settings(self.table(doc, "settings", "top level"))
        defaults = self.thresholds(self.table(doc, "thresholds", "top level"), None, "[thresholds]")
        smtp = self.smtp(self.table(doc, "smtp", "top level"))
        webhook = webhook_table(self, self.table(doc, "webhook", "top level"))
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
        web = self.web(self.table(doc, "web", "top level"))
        backup = self.simple(doc, "backup", BackupSettings, {"keep": int, "keep_days": int},
                             {"keep": (1, 100000), "keep_days": (0, 100000)})
        ssh_config = self.ssh_config(settings, doc)
        self.jumps: dict[str, JumpText] = {}
        hosts = resolve_jumps(self, self.hosts(doc.get("hosts", []), defaults, ssh_config),
                             self.jumps, ssh_config)
        checks = self.checks(doc.get("checks", []), hosts, settings)
        return Config(path=self.path, settings=settings, thresholds=defaults, smtp=smtp,
                      certfr=certfr, alerts=alerts, web=web, backup=backup, hosts=hosts,
                      checks=checks, webhook=webhook)

    def settings(self, t: Mapping[str, Any]) -> Settings:
        w = "[settings]"
        self.unknown_keys(t, _SETTINGS_KEYS, w)
        data_dir = self.path_value(t, "data_dir", "data", w) or self.base / "data"
        interval = self.get(t, "interval_s", int, 60, w, minimum=5)
        # Short intervals (osmon run, down to 10 s) get steps short enough to fit a pass.
        ssh_timeout = self.get(t, "ssh_timeout_s", float, min(10.0, max(1.0, interval * 0.3)),
                               w, minimum=0.5)
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
            shard=self.shard(t, w),
            max_handshakes=self.get(t, "max_handshakes", int, 10, w, minimum=1, maximum=10000),
            session_max_age_s=self.get(t, "session_max_age_s", float, 86400.0, w, minimum=60),
        )

    def shard(self, t: Mapping[str, Any], where: str) -> Shard | None:
        text = self.get(t, "shard", str, None, where)
        if text is None:
            return None
        try:
            return parse_shard(text)
        except ValueError as exc:
            self.problem(where, f"'shard': {exc}")
            return None

    def web(self, t: Mapping[str, Any]) -> WebSettings:
        w = "[web]"
        self.unknown_keys(t, _WEB_KEYS, w)
        token_file = self.path_value(t, "metrics_token_file", None, w)
        if token_file is not None:
            self.check_token_file(token_file, w)
        return WebSettings(
            public_url=self.get(t, "public_url", str, WebSettings.public_url, w),
            host=self.get(t, "host", str, WebSettings.host, w),
            port=self.get(t, "port", int, WebSettings.port, w, minimum=1, maximum=MAX_PORT),
            require_login=self.get(t, "require_login", bool, False, w),
            metrics_token_file=token_file,
            trusted_proxies=self.networks(t, "trusted_proxies", w))

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
               bounds: Mapping[str, tuple[float, float]] | None = None,
               parsed_apart: tuple[str, ...] = ()) -> Any:
        t = self.table(doc, key, "top level")
        w = f"[{key}]"
        self.unknown_keys(t, tuple(kinds) + parsed_apart, w)
        defaults = cls()
        limits = bounds or {}
        values = {k: self.get(t, k, kind, getattr(defaults, k), w,
                              minimum=limits.get(k, (None, None))[0],
                              maximum=limits.get(k, (None, None))[1])
                  for k, kind in kinds.items()}
        return cls(**values)

    def hosts(self, raw: Any, defaults: Thresholds, ssh_config: SshConfig) -> tuple[Host, ...]:
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
             ssh_config: SshConfig) -> Host | None:
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
        probe = self.choice(t, "probe", PROBES, "auto", where)
        written = written_jump(self, self.get(t, "jump", str, None, where), local, where,
                               ssh_config, name)
        if written is not None:
            self.jumps[name] = written
        if local and probe == "sh":
            self.problem(where, "'probe' = \"sh\" is for remote hosts: the local host is "
                                "measured in-process (psutil), never by a probe")
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
            probe=probe,
            tags=self.str_list(t, "tags", where),
            network_fs=self.get(t, "network_fs", bool, False, where),
            command_lines=self.get(t, "command_lines", bool, True, where),
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

    def ssh_config(self, settings: Settings, doc: Mapping[str, Any]) -> SshConfig:
        """``settings.ssh_config``, parsed once for all hosts (only if a remote host needs it).

        The default ``~/.ssh/config`` may be absent; a file named in ``[settings]`` must exist.
        """
        path = settings.ssh_config
        raw_settings = doc.get("settings")
        named = isinstance(raw_settings, Mapping) and bool(raw_settings.get("ssh_config"))
        if path is not None and named and not path.is_file():
            self.problem("[settings]", f"'ssh_config' names {path}, which is not a file")
            path = None
        return SshConfig(path, self)

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

    def resolve_ssh(self, ssh_config: SshConfig, name: str, address: str, user: str,
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
