"""Data folders for the dashboard's tests and benchmark: a hosts.toml and samples in the store.

Samples follow the sample schema (docs/architecture.md) and are written with the real
``Store.append``, so the web app reads exactly what a collection pass would have left.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from collector import config as config_mod
from collector.config import Config
from collector.store.samples import Store
from collector.times import format_ts
from web import create_app
from web.auth import write_admin_password

#: Untrusted strings a hostile host could send, planted in samples to test escaping.
XSS_PROCESS = "<img src=x onerror=alert(1)>"
XSS_MOUNT = '"><script>alert(1)</script>'
XSS_USER = "<b>mallory</b>"
XSS_HOSTNAME = "<svg onload=alert(2)>"
XSS_CMDLINE = "sh -c '</td><script>alert(3)</script>'"
#: The fixed "now" of test-client tests.
NOW = datetime(2026, 11, 21, 22, 41, tzinfo=timezone.utc)
PASSWORD = "correct horse battery"
#: Secrets planted in the config: no response may ever contain them.
SMTP_PASSWORD = "S3cret-smtp-passw0rd"
SECRET_ENV = "OSMON_TEST_SMTP_PASSWORD"


def sample(host: str, ts: datetime, *, cpu: float = 12.5, memory: float = 40.0,
           disk: float = 50.0, mount: str = "/", load1: float = 0.12,
           processes: list[dict[str, Any]] | None = None,
           users: list[dict[str, Any]] | None = None, hostname: str | None = None,
           checks: dict[str, Any] | None = None) -> dict[str, Any]:
    """A successful sample shaped like the example of docs/architecture.md."""
    result: dict[str, Any] = {
        "v": 1, "ts": format_ts(ts), "host": host, "ok": True, "error": None,
        "collect": {"transport": "ssh", "duration_s": 0.41, "connect_s": 0.12},
        "system": {"hostname": hostname or host, "os": "Linux", "kernel": "6.1.0-18-amd64",
                   "arch": "x86_64", "boot_time": 1763700000, "uptime_s": 86400,
                   "python": "3.11.2"},
        "cpu": {"count": 4, "percent": cpu, "per_core": [cpu] * 4, "load": [load1, 0.2, 0.31]},
        "memory": {"total": 8334774272, "available": 5000000000, "used": 3334774272,
                   "percent": memory},
        "swap": {"total": 2147483648, "used": 0, "percent": 0.0},
        "disks": [{"mount": mount, "device": "/dev/vda1", "fstype": "ext4",
                   "total": 107374182400, "used": int(107374182400 * disk / 100),
                   "free": int(107374182400 * (100 - disk) / 100), "percent": disk}],
        "net": [{"iface": "eth0", "rx_bytes": 123, "tx_bytes": 456, "rx_bps": 1000.0,
                 "tx_bps": 2000.0}],
        "processes": {"count": 180, "top": processes if processes is not None else [
            {"pid": 1, "user": "root", "name": "systemd", "cmdline": "/sbin/init",
             "cpu_percent": 0.1, "mem_percent": 0.2, "rss": 12000000}]},
        "users": users if users is not None else [
            {"name": "alice", "tty": "pts/0", "from": "10.0.0.9", "since": "2026-11-21T20:00:00Z"}],
        "errors": {},
    }
    if checks is not None:
        result["checks"] = checks
    return result


def failed_sample(host: str, ts: datetime, kind: str = "timeout",
                  message: str = "no answer within 10 s (connect)") -> dict[str, Any]:
    return {"v": 1, "ts": format_ts(ts), "host": host, "ok": False,
            "error": {"kind": kind, "message": message},
            "collect": {"transport": "ssh", "duration_s": 10.0}}


def hostile_sample(host: str, ts: datetime) -> dict[str, Any]:
    """A sample whose every free-text field is an attempt at markup injection."""
    s = sample(host, ts, mount=XSS_MOUNT, hostname=XSS_HOSTNAME,
               processes=[{"pid": 666, "user": XSS_USER, "name": XSS_PROCESS,
                           "cmdline": XSS_CMDLINE, "cpu_percent": 99.0, "mem_percent": 1.0,
                           "rss": 1000}],
               users=[{"name": XSS_USER, "tty": "pts/1", "from": XSS_PROCESS,
                       "since": "2026-11-21T20:00:00Z"}],
               checks={"web": {"state": 2, "output": XSS_PROCESS, "long_output": "",
                               "perf": {}}})
    s["system"]["kernel"] = XSS_PROCESS
    return s


def write_config(directory: Path, hosts: list[dict[str, Any]], *, web: str = "",
                 interval_s: int = 60, extra: str = "") -> Path:
    """A hosts.toml in ``directory`` whose data and backups live beside it.

    Every remote host gets an ``identity_file`` under ``directory`` and the SMTP password is
    read from :data:`SECRET_ENV`: tests grep responses for both.  ``extra`` is appended as
    it is (``[[checks]]`` tables).
    """
    lines = ["[settings]", 'data_dir = "data"', 'backup_dir = "backups"',
             f"interval_s = {interval_s}", 'known_hosts = ""', 'ssh_config = ""', "",
             "[smtp]", 'host = "127.0.0.1"', 'user = "osmon"',
             f'password_env = "{SECRET_ENV}"', 'to = ["admin@example.org"]', "",
             "[web]", web, ""]
    for host in hosts:
        lines.append("[[hosts]]")
        lines.append(f'name = "{host["name"]}"')
        if host.get("local"):
            lines.append("local = true")
        else:
            lines.append(f'address = "{host.get("address", "192.0.2.10")}"')
            lines.append('user = "monitor"')
            lines.append(f'identity_file = "{directory / "keys" / "id_secret_key"}"')
        if host.get("tags"):
            lines.append("tags = [" + ", ".join(f'"{t}"' for t in host["tags"]) + "]")
        if "enabled" in host:
            lines.append(f"enabled = {str(host['enabled']).lower()}")
        lines.append("")
    lines.append(extra)
    path = directory / "hosts.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def load_config(path: Path) -> Config:
    return config_mod.load(path)


def fill(store: Store, host: str, now: datetime, count: int = 3, step_s: int = 60,
         **kwargs: Any) -> None:
    """``count`` samples of ``host``, one per ``step_s``, the newest at ``now``."""
    for i in range(count - 1, -1, -1):
        store.append(host, sample(host, now - timedelta(seconds=i * step_s), **kwargs))


@dataclass
class Site:
    """A config, its data folder and a clock pinned at ``now``: what a dashboard test needs."""

    root: Path
    config: Config
    store: Store
    now: datetime

    def app(self, **test_config: Any) -> Flask:
        return create_app(self.config, test_config={"TESTING": True,
                                                    "OSMON_CLOCK": lambda: self.now,
                                                    **test_config})

    def client(self) -> FlaskClient:
        return self.app().test_client()

    def set_password(self, password: str = PASSWORD) -> None:
        write_admin_password(self.config.state_dir, password)

    @property
    def identity_file(self) -> Path:
        return self.root / "keys" / "id_secret_key"


def make_site(directory: Path, hosts: list[dict[str, Any]] | None = None, *, web: str = "",
              interval_s: int = 60, now: datetime = NOW, extra: str = "") -> Site:
    hosts = hosts if hosts is not None else [{"name": "central", "local": True},
                                             {"name": "web1", "tags": ["web"]}]
    config = load_config(write_config(directory, hosts, web=web, interval_s=interval_s,
                                      extra=extra))
    return Site(directory, config, Store(config.settings.data_dir), now)


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(client: FlaskClient, path: str = "/login") -> str:
    """The session's CSRF token, as a form on ``path`` carries it."""
    html = client.get(path).get_data(as_text=True)
    match = _CSRF.search(html)
    assert match, f"no CSRF token in {path}"
    return match.group(1)


def log_in(client: FlaskClient, password: str = PASSWORD) -> Any:
    return client.post("/login", data={"password": password, "csrf_token": csrf_from(client),
                                       "next": "/backups"})
