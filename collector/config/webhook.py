"""The ``[webhook]`` table: where notifications are POSTed, checked like every other table.

Apart from :mod:`.parser` so that file stays small; it reads through the same
:class:`TableReader`, so a mistake is reported with the file, the table and the key, with
every other problem of the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from collector.config.model import WebhookSettings
from collector.config.reader import TableReader

KEYS = ("enabled", "url", "bearer_token_file", "timeout_s")
#: An endpoint on this machine may get the token over plain HTTP; no other may.
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


def webhook(reader: TableReader, t: Mapping[str, Any]) -> WebhookSettings:
    """``[webhook]``: on when it names a ``url`` (or ``enabled = false`` to keep it off)."""
    w = "[webhook]"
    reader.unknown_keys(t, KEYS + ("bearer_token",), w)  # "bearer_token": its own message
    if "bearer_token" in t:
        reader.problem(w, "'bearer_token' in clear is not accepted: put the token in a file "
                          "readable by osmon only and name it in bearer_token_file")
    url = reader.get(t, "url", str, "", w)
    enabled = reader.get(t, "enabled", bool, bool(url), w)
    token_file = reader.path_value(t, "bearer_token_file", None, w)
    timeout = reader.get(t, "timeout_s", float, 10.0, w, minimum=0.1, maximum=300)
    if enabled and not url:
        reader.problem(w, "'url' is missing: the address to POST notifications to")
    elif url:
        _check_url(reader, url, token_file is not None, w)
    if token_file is not None and not token_file.is_file():
        reader.problem(w, f"'bearer_token_file' names {token_file}, which is not a file")
    return WebhookSettings(enabled=enabled and bool(url), url=url, bearer_token_file=token_file,
                           timeout_s=timeout)


def _check_url(reader: TableReader, url: str, token: bool, w: str) -> None:
    # The URL itself is never quoted: a chat service's webhook URL is a secret.
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
        port_ok = True
    except ValueError:
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        reader.problem(w, "'url' must be an http:// or https:// URL with a host (and a numeric "
                          "port, if any)")
    elif parts.username is not None or parts.password is not None:
        reader.problem(w, "'url' must not hold a user or password: put a token in "
                          "bearer_token_file")
    elif any(ch.isspace() or not ch.isprintable() for ch in url):
        reader.problem(w, "'url' must not hold spaces or control characters")
    elif token and parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        reader.problem(w, "'bearer_token_file' is set with an http:// url: the token would "
                          "cross the network in clear; use https://")
