"""Notifications POSTed to a webhook, through the same outbox as the e-mail.

Every message (:mod:`collector.alerts.alertmanager`) is first written to
``<data_dir>/state/outbox/<id>.webhook.json`` (atomically; its ``channel`` field says
``webhook``, the e-mail's files are ``.eml``), then the outbox is flushed oldest first; a
message leaves it only once the endpoint answered 2xx.  A refused or reset connection, a
timeout, a 5xx, a redirect, and the 4xx that say "later" (408, 425, 429) or "not with these
credentials" (401, 403: the token, which the admin fixes, is wrong for every message) stop the
flush: that message and those after it wait, in order, for the next pass.  Any other 4xx
(400, 404, 413, 422, ...) refuses *this* message for good: it is set aside as
``<id>.webhook.rejected`` and logged, and the flush goes on, as the e-mail does for a 5xx
answer to a message, so one message a bridge cannot take never blocks the others.  Delivery
is at least once, as for the e-mail: a crash between the 2xx and the removal of the file
sends that message again.

Whatever the endpoint does, one POST costs at most ``timeout_s`` and never goes past the pass
deadline: the exchange runs in a thread that the caller stops waiting for, and whose socket it
then shuts down.  Redirects are not followed (a notification must not go where the config did
not say).  The bearer token is read from its file at each flush, sent only in the
``Authorization`` header, and masked in every message osmon writes; the URL, which may hold a
secret of a chat service, is named by scheme, host and port only.

Failing is logged once when it starts and once when it ends, like the e-mail.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import socket
import ssl
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from collector import __version__
from collector.alerts.outbox import MAX_OUTBOX, Outbox
from collector.config import WebhookSettings

log = logging.getLogger(__name__)

CHANNEL = "webhook"
SUFFIX = f".{CHANNEL}.json"
STATUS_FILE = "webhook-status.json"
VERSION = 1
USER_AGENT = f"osmon/{__version__}"
#: Messages waiting at most (the oldest dropped beyond): one per alert, so more than the
#: e-mail's one digest a pass; a few MB.
MAX_MESSAGES = 4 * MAX_OUTBOX
#: An answer's status line is all osmon reads of it (its reason cut at this).
MAX_REASON = 100


#: 4xx answers that say "try again" (timeout, too early, too many requests) or that are about
#: the credentials rather than the message: retried like a 5xx.
RETRIED_4XX = frozenset({401, 403, 408, 425, 429})


class WebhookError(Exception):
    """Why a message could not be delivered, in words an admin can act on; ``permanent``:
    the endpoint refused this message for good (retrying it would block the outbox)."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


# -- outbox ---------------------------------------------------------------------------------------
#: The webhook's part of the shared outbox (:mod:`collector.alerts.outbox`).
OUTBOX = Outbox(name="webhook", suffix=SUFFIX, rejected_suffix=f".{CHANNEL}.rejected",
                status_file=STATUS_FILE, fail_words="cannot deliver", done_word="delivered")


def queue(state_dir: Path, payloads: list[dict[str, Any]], now: datetime) -> list[Path]:
    """Write each message to the outbox (atomically); names sort oldest first, and in the
    order given within a pass."""
    records = [json.dumps({"version": VERSION, "channel": CHANNEL, "payload": payload},
                          ensure_ascii=False, separators=(",", ":"),
                          allow_nan=False).encode("utf-8") for payload in payloads]
    return OUTBOX.queue(state_dir, records, now, numbered=True, limit=MAX_MESSAGES)


def pending(state_dir: Path) -> list[Path]:
    """Webhook messages waiting in the outbox, oldest first."""
    return OUTBOX.pending(state_dir)


def failure(state_dir: Path) -> str | None:
    """Why the webhook is failing (since the last attempt), or ``None`` if it is not."""
    return OUTBOX.failure(state_dir)


def flush_outbox(settings: WebhookSettings, state_dir: Path, deadline: float) -> int:
    """POST what waits, oldest first, until done, a failure, or ``deadline`` (monotonic).
    Returns how many were delivered; the rest stay for the next pass."""
    waiting = pending(state_dir)
    if not waiting:
        return 0
    sent = 0
    for path in waiting:
        left = deadline - time.monotonic()
        if left < 0.5:
            log.info("webhook: no time left in this pass; %d message(s) wait",
                     len(waiting) - sent)
            return sent
        body = _body(path)
        if body is None:
            continue
        try:
            post(settings, body, min(settings.timeout_s, left))
        except WebhookError as exc:
            if exc.permanent:
                OUTBOX.set_aside(path, str(exc))
                continue
            OUTBOX.failed(state_dir, str(exc), len(waiting) - sent)
            return sent
        path.unlink(missing_ok=True)
        sent += 1
    OUTBOX.works(state_dir, sent)
    return sent


def _body(path: Path) -> bytes | None:
    """The message to POST, or None for a file that is not one (set aside, never retried)."""
    try:
        record = json.loads(path.read_bytes())
        if not isinstance(record, dict) or record.get("channel") != CHANNEL or \
                not isinstance(record.get("payload"), dict):
            raise ValueError("not a webhook message")
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        OUTBOX.set_aside(path, str(exc), "is unreadable")
        return None
    return json.dumps(record["payload"], ensure_ascii=False).encode("utf-8")


# -- HTTP -----------------------------------------------------------------------------------------
def post(settings: WebhookSettings, body: bytes, budget_s: float) -> int:
    """POST ``body`` within ``budget_s`` seconds in all; the HTTP status when it is 2xx, else
    :class:`WebhookError`."""
    where = settings.where
    try:
        token = settings.token()
    except (OSError, ValueError) as exc:
        raise WebhookError(f"cannot read bearer_token_file {settings.bearer_token_file}: "
                           f"{getattr(exc, 'strerror', None) or exc}") from None
    parts = urlsplit(settings.url)
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
               "Content-Length": str(len(body))}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(parts.hostname or "", parts.port,
                                                 timeout=budget_s,
                                                 context=ssl.create_default_context())
    else:
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port,
                                                timeout=budget_s)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    box: dict[str, Any] = {}

    def exchange() -> None:
        try:
            connection.request("POST", target, body=body, headers=headers)
            answer = connection.getresponse()  # the status line and headers; no body read
            box["answer"] = (answer.status, answer.reason)
        except Exception as exc:  # handed to the caller's thread
            box["error"] = exc
        finally:
            connection.close()  # here, also when the caller has stopped waiting

    worker = threading.Thread(target=exchange, name="osmon-webhook", daemon=True)
    worker.start()
    worker.join(budget_s)
    if worker.is_alive():
        _shut(connection)  # the exchange fails at once, and the thread closes it
        raise WebhookError(f"no answer from {where} within {budget_s:.1f} s")
    if "error" in box:
        raise WebhookError(_mask(explain(box["error"], where, budget_s), token))
    status, reason = box["answer"]
    if 200 <= status < 300:
        return status
    said = "".join(ch if ch.isprintable() else " " for ch in str(reason))[:MAX_REASON]
    if 300 <= status < 400:
        raise WebhookError(_mask(f"{where} answered {status} {said}: a redirect, which osmon "
                                 "does not follow (set url to the final address)", token))
    permanent = 400 <= status < 500 and status not in RETRIED_4XX
    raise WebhookError(_mask(f"{where} answered {status} {said}".rstrip(), token),
                       permanent=permanent)


def _shut(connection: http.client.HTTPConnection) -> None:
    """Stop an exchange still running in its thread: its socket's reads fail at once."""
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def explain(exc: BaseException, where: str, budget_s: float) -> str:
    """One sentence for an error of the exchange."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS problem with {where}: its certificate is not trusted ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS problem with {where}: {exc.reason or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {where}: nothing listens there (check url)"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host of {where}: {exc.strerror}"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return f"no answer from {where} within {budget_s:.1f} s"
    if isinstance(exc, http.client.HTTPException):
        return f"{where} did not answer in HTTP ({type(exc).__name__})"
    if isinstance(exc, OSError):
        return f"cannot talk to {where}: {exc.strerror or exc}"
    return f"{where}: {type(exc).__name__}"


def _mask(text: str, token: str | None) -> str:
    return text.replace(token, "[hidden]") if token and len(token) >= 4 else text
