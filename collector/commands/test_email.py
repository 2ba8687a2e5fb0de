"""``osmon test-email``: send one mail with the [smtp] settings, or say exactly why not.

It sends directly, not through the outbox, and renders the (possibly custom) templates, so a
wrong port, a refused login, a TLS mismatch or a template typo show up now, at the terminal,
rather than as silence on the night a disk fills up.
"""

from __future__ import annotations

import argparse
import smtplib
import sys

from collector.alerts import mail as notify
from collector.config import load_config
from collector.times import utc_now


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--to", action="append", metavar="ADDRESS",
                        help="send to this address instead of [smtp] to (repeatable)")


def run(args: argparse.Namespace) -> int:
    config = load_config(args)
    smtp = config.smtp
    recipients = tuple(args.to or smtp.to)
    if not recipients:
        _fail("no recipients: list them in [smtp] to = [\"admin@example.org\"] "
              "(or give --to ADDRESS)")
        return 1
    if not smtp.enabled:
        print("note: [smtp] enabled = false: alerts are not mailed; sending the test anyway",
              file=sys.stderr)
    try:
        msg = notify.compose_test(config, recipients, utc_now())
    except Exception as exc:
        _fail(f"the e-mail template {smtp.template or '(built-in)'} failed: {exc}")
        return 1
    try:
        refused = notify.send_now(smtp, msg)
    except (OSError, smtplib.SMTPException, notify.SmtpSetupError) as exc:
        _fail(f"not sent: {notify.explain(exc, smtp)}")
        return 1
    accepted = [r for r in recipients if r not in refused]
    print(f"test e-mail sent to {', '.join(accepted)} through {smtp.host}:{smtp.port} "
          f"(security {smtp.security})")
    if refused:
        _fail("the server refused: " + ", ".join(
            f"{r} ({code} {notify.decode_answer(answer)})"
            for r, (code, answer) in refused.items()))
        return 1
    return 0


def _fail(message: str) -> None:
    print(f"osmon test-email: {message}", file=sys.stderr)
