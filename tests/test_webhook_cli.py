"""``osmon test-webhook`` against a real HTTP server: delivered, refused, or not set up, each
said at the terminal, never with the bearer token."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mail_fixtures import make_config
from webhook_fixtures import WebhookServer

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "tok-5d1e-test-webhook-never-shown"


@pytest.fixture
def hook() -> Iterator[WebhookServer]:
    with WebhookServer() as server:
        yield server


def _config(tmp_path: Path, url: str | None) -> Path:
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n", encoding="utf-8")
    token.chmod(0o600)
    extra = f'[webhook]\nurl = "{url}"\nbearer_token_file = "{token}"\ntimeout_s = 3\n' \
        if url else ""
    make_config(tmp_path, extra=extra)
    return tmp_path / "hosts.toml"


def _osmon(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "collector", "--config", str(path),
                           "test-webhook"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def test_the_test_message_arrives_in_the_alertmanager_format(tmp_path: Path,
                                                            hook: WebhookServer) -> None:
    done = _osmon(_config(tmp_path, hook.url("/hooks/ops?key=s3cret")))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("test message delivered to ")
    assert "s3cret" not in done.stdout + done.stderr and TOKEN not in done.stdout + done.stderr
    [received] = hook.received
    assert received.path == "/hooks/ops?key=s3cret"
    assert received.headers["Authorization"] == f"Bearer {TOKEN}"
    message = received.json
    assert message["version"] == "4" and message["status"] == "firing"
    assert message["externalURL"] == "https://osmon.example.org"
    [alert] = message["alerts"]
    assert alert["labels"] == {"alertname": "OsmonTest", "instance": "osmon", "severity": "info"}
    assert "osmon test-webhook" in alert["annotations"]["description"]


def test_a_refusal_is_said_with_its_status_and_exit_1(tmp_path: Path,
                                                      hook: WebhookServer) -> None:
    hook.status = 401
    done = _osmon(_config(tmp_path, hook.url("/hooks")))
    assert done.returncode == 1
    assert "osmon test-webhook: not delivered: " in done.stderr and "answered 401" in done.stderr
    assert TOKEN not in done.stdout + done.stderr


def test_no_webhook_in_hosts_toml_is_a_clear_error(tmp_path: Path) -> None:
    done = _osmon(_config(tmp_path, None))
    assert done.returncode == 1
    assert done.stderr.strip() == ('osmon test-webhook: no [webhook] url in hosts.toml: add '
                                   '[webhook] url = "https://..."')
