"""Secrets never reach the dashboard or ``osmon status --json`` through a collector message."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector import config
from collector.redact import Redactor


def test_password_file_contents_and_key_paths_are_masked(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSMON_SMTP_PASSWORD", "from-the-env-1")
    (tmp_path / "smtp.pass").write_text("from-the-file-2\n", encoding="utf-8")
    key = tmp_path / "keys" / "id_ed25519"
    (tmp_path / "hosts.toml").write_text(
        '[smtp]\nhost = "127.0.0.1"\nuser = "osmon"\npassword_file = "smtp.pass"\n'
        'to = ["admin@example.org"]\n'
        f'[[hosts]]\nname = "web1"\naddress = "192.0.2.1"\nidentity_file = "{key}"\n',
        encoding="utf-8")
    redact = Redactor(config.load(tmp_path / "hosts.toml"))
    text = (f"auth failed with from-the-file-2 (env from-the-env-1) reading {key}; "
            "disk / at 97 %")
    assert redact(text) == ("auth failed with [hidden] (env [hidden]) reading [hidden]; "
                            "disk / at 97 %")
