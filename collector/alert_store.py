"""Placeholder: read access to alert state and history (owned by the alerting work)."""

from __future__ import annotations

from pathlib import Path


def active_alerts(state_dir: Path) -> list[dict]:
    return []


def history(state_dir: Path, limit: int = 200, host: str | None = None) -> list[dict]:
    return []
