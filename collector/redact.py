"""Masking config secrets (key paths, data paths, the SMTP password, the metrics token, the
webhook's URL and token) in collector messages.

Host error messages are written by the SSH layer and may quote an identity file or a
known_hosts path ("cannot read /home/osmon/.ssh/id_ed25519").  What the dashboard and
``osmon status --json`` show may be forwarded to people who must not learn where keys or data
live, so both pass messages through here.  Only messages, not host data such as mount points:
a mount named like the data directory is still shown as it is.  Flask-free, so the CLI can use
it (``collector`` never imports ``web``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from collector.config import Config


class Redactor:
    """``redact(text)``: ``text`` with every secret of ``config`` replaced by :data:`MASK`."""

    MASK = "[hidden]"

    def __init__(self, config: Config) -> None:
        settings = config.settings
        paths: list[Path | None] = [
            settings.data_dir, settings.backup_dir, settings.known_hosts,
            settings.osmon_known_hosts, settings.ssh_config, config.path.resolve().parent,
            config.smtp.password_file, config.web.metrics_token_file,
            config.webhook.bearer_token_file]
        paths += [h.identity_file for h in config.hosts]
        needles = set(_path_forms(p for p in paths if p is not None))
        secret = os.environ.get(config.smtp.password_env) if config.smtp.password_env else None
        if secret:
            needles.add(secret)
        for secret_file in (config.smtp.password_file, config.web.metrics_token_file,
                            config.webhook.bearer_token_file):
            if secret_file is None:
                continue
            try:  # its contents, not only its path
                secret = secret_file.read_text(encoding="utf-8").strip()
            except (OSError, ValueError):
                secret = ""
            if secret:
                needles.add(secret)
        if config.webhook.url:  # a chat service's webhook URL is itself a secret
            needles.add(config.webhook.url)
        # Longest first, so a file path is masked whole rather than its directory alone.
        self._needles = sorted((n for n in needles if len(n) >= 4), key=len, reverse=True)

    def __call__(self, text: str | None) -> str | None:
        if not text:
            return text
        for needle in self._needles:
            if needle in text:
                text = text.replace(needle, self.MASK)
        return text


def _path_forms(paths: Iterable[Path]) -> Iterable[str]:
    home = os.path.expanduser("~")
    for path in paths:
        text = str(path)
        yield text
        if home not in ("", "/") and text.startswith(home + os.sep):
            yield "~" + text[len(home):]
