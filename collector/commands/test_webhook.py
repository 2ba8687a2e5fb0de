"""``osmon test-webhook``: POST one message with the [webhook] settings, or say exactly why not.

Like ``osmon test-email``, it sends directly, not through the outbox, so a wrong url, a
refused token, a redirect or a receiver that rejects the format shows up now, at the
terminal, rather than as silence on the night a disk fills up.  The message is in the format
every alert uses (Alertmanager webhook, version 4): one alert ``OsmonTest`` of severity
``info``, firing, that a chat bridge shows as it would a real one.
"""

from __future__ import annotations

import argparse
import json
import sys

from collector.alerts import alertmanager, webhook
from collector.config import load_config
from collector.times import format_ts, utc_now


def configure(parser: argparse.ArgumentParser) -> None:
    """No options: the [webhook] table of hosts.toml says everything."""


def test_message(public_url: str, now_ts: str) -> dict[str, object]:
    labels = {"alertname": "OsmonTest", "instance": "osmon", "severity": "info"}
    alert = {"status": "firing", "labels": labels,
             "annotations": {"summary": "osmon test notification",
                             "description": "Sent by osmon test-webhook: if you read this, "
                                            "osmon's alerts reach you here."},
             "startsAt": now_ts, "endsAt": alertmanager.NOT_ENDED,
             "generatorURL": public_url.rstrip("/"),
             "fingerprint": alertmanager.fingerprint(labels)}
    group = alertmanager.group_labels(labels)
    return alertmanager.message([alert], public_url.rstrip("/"), group,
                                alertmanager.group_key(group))


def run(args: argparse.Namespace) -> int:
    config = load_config(args)
    settings = config.webhook
    if not settings.url:
        _fail('no [webhook] url in hosts.toml: add [webhook] url = "https://..."')
        return 1
    if not settings.enabled:
        print("note: [webhook] enabled = false: alerts are not POSTed; sending the test "
              "anyway", file=sys.stderr)
    body = json.dumps(test_message(config.web.public_url, format_ts(utc_now())),
                      ensure_ascii=False).encode("utf-8")
    try:
        status = webhook.post(settings, body, settings.timeout_s)
    except webhook.WebhookError as exc:
        _fail(f"not delivered: {exc}")
        return 1
    print(f"test message delivered to {settings.where} (HTTP {status})")
    return 0


def _fail(message: str) -> None:
    print(f"osmon test-webhook: {message}", file=sys.stderr)
