"""Placeholder: CERT-FR feed (owned by the alerting work)."""

from __future__ import annotations

from pathlib import Path


def recent_alerts(state_dir: Path, limit: int = 50) -> list[dict]:
    return []
