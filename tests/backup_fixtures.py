"""Helpers for the backup and retention tests: a config over a temporary folder, a store with
real day files and state files, byte-exact snapshots, and hand-crafted (hostile) archives."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from collector import config as config_mod
from collector.config import Config
from collector.store.samples import Store
from collector.times import format_ts

NOW = datetime(2026, 11, 21, 22, 41, 0, tzinfo=timezone.utc)


def make_config(root: Path, *, settings: dict[str, Any] | None = None,
                backup: dict[str, Any] | None = None) -> Config:
    """Write and load ``root/hosts.toml``: data in ``root/data``, backups in ``root/backups``."""
    values = {"data_dir": "data", "backup_dir": "backups", **(settings or {})}
    lines = ["[settings]"] + [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    lines += ["[backup]"] + [f"{key} = {value}" for key, value in (backup or {}).items()]
    lines += ["[[hosts]]", 'name = "central"', "local = true"]
    path = root / "hosts.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config_mod.load(path)


def sample(host: str, moment: datetime, percent: float = 12.5) -> dict[str, Any]:
    return {"v": 1, "ts": format_ts(moment), "host": host, "ok": True, "error": None,
            "cpu": {"count": 2, "percent": percent, "load": [0.1, 0.2, 0.3]},
            "memory": {"total": 8 << 30, "available": 4 << 30, "used": 4 << 30, "percent": 50.0}}


def fill_store(cfg: Config, hosts: tuple[str, ...] = ("central", "web1", "db2"), days: int = 3,
               per_day: int = 24, now: datetime = NOW) -> Store:
    """``days`` day files per host ending today, plus the state files a real install has."""
    store = Store(cfg.settings.data_dir)
    for host in hosts:
        for d in range(days - 1, -1, -1):
            start = now.replace(hour=0, minute=0) - timedelta(days=d)
            for i in range(per_day):
                store.append(host, sample(host, start + timedelta(minutes=i * 30), 1.0 + i))
    state = cfg.state_dir
    state.mkdir(parents=True, exist_ok=True)
    (state / "alerts.json").write_text('{"version": 1, "active": {"web1/cpu": "warning"}}\n')
    (state / "outbox.json").write_text('{"version": 1, "mails": ["Subject: web1 cpu"]}\n')
    (state / "certfr.json").write_text('{"version": 1, "seen": ["CERTFR-2026-ALE-001"]}\n')
    rollup = cfg.settings.data_dir / "rollups" / "web1" / "1h"
    rollup.mkdir(parents=True, exist_ok=True)
    (rollup / "2026-11.jsonl").write_bytes(b'{"ts": "2026-11-01T00:00:00Z"}\n')
    return store


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file below ``directory`` (but the lock file) with its bytes: the data, exactly."""
    found = {}
    for root, _dirs, names in os.walk(directory):
        for name in names:
            path = Path(root) / name
            rel = path.relative_to(directory).as_posix()
            if rel != ".lock":
                found[rel] = path.read_bytes()
    return found


def tree(directory: Path) -> set[str]:
    """Every entry below ``directory`` (but lock files), to prove nothing was written elsewhere."""
    return {str(Path(root, name).relative_to(directory))
            for root, dirs, names in os.walk(directory) for name in dirs + names
            if name != ".lock"}


def craft_archive(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], *,
                  manifest_files: list[dict[str, Any]] | None = None) -> None:
    """Write a tar.gz with ``MANIFEST.json`` first.  By default the manifest lists every regular
    member (minus the ``data/`` prefix) with its true size and sha256, and every other member
    with size 0, so a hostile archive looks valid to a careless reader."""
    if manifest_files is None:
        manifest_files = []
        for info, data in members:
            content = data or b""
            manifest_files.append({"path": info.name.removeprefix("data/"), "size": len(content),
                                   "sha256": hashlib.sha256(content).hexdigest()})
    manifest = {"format": 1, "osmon_version": "0.1.0", "schema_version": 1,
                "created": "2026-11-21T22:41:00Z", "hosts": ["web1"], "files": manifest_files}
    body = json.dumps(manifest).encode()
    with tarfile.open(path, "w:gz") as tar:
        head = tarfile.TarInfo("MANIFEST.json")
        head.size = len(body)
        tar.addfile(head, io.BytesIO(body))
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    os.chmod(path, 0o600)


def regular(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def special(name: str, kind: bytes, target: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


ROOT = Path(__file__).resolve().parent.parent


def in_private_tmpfs(mount_at: Path, size: str, script: str, *args: str) -> dict[str, Any]:
    """Run ``script`` (Python, prints one JSON object) with a tmpfs of ``size`` mounted at
    ``mount_at`` in a private mount namespace: a real small disk, seen by that process only.

    The tmpfs starts empty and vanishes with the process, so the script sets up what must live
    on it and checks the outcome itself.  Skips where unprivileged namespaces are not allowed.
    """
    import subprocess
    import sys

    import pytest

    mount_at.mkdir(parents=True, exist_ok=True)
    command = ["unshare", "-rm", "sh", "-c",
               'mount -t tmpfs -o "size=$2,mode=0700" tmpfs "$1" || exit 77; shift 2; '
               'exec "$@"',
               "sh", str(mount_at), size, sys.executable, "-c", script, *args]
    try:
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        pytest.skip("unshare is not installed")
    if result.returncode == 77 or "unshare failed" in result.stderr:
        pytest.skip(f"cannot mount a private tmpfs here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
