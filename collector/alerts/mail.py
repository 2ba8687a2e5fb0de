"""E-mail: the digest of a pass, the outbox, and SMTP delivery.

Every digest is first written to ``<data_dir>/state/outbox/<id>.eml`` (atomically), then the
outbox is flushed oldest first; a message leaves the outbox only after the SMTP server accepted
it.  So an SMTP server that is down or refuses loses nothing: the messages wait and go out, in
order, on a later pass (Monit's outbox).

A message the server rejects for good (a 5xx answer to that message, e.g. every recipient
unknown) is renamed ``<id>.rejected`` and logged, so it cannot block the messages behind it.
When only some recipients are refused, the others get the message; those refused for now
(4xx) get it later, from a copy queued for them alone (its envelope is kept in an
``X-Osmon-Retry-To`` header that is removed before sending); those refused for good (5xx) are
logged.

Delivery is *at least once*.  The one window for a duplicate is a crash between the server's
"250 accepted" and the removal of the file; the message then goes again on the next pass with
the same ``Message-ID``, which lets a mail client or filter drop the copy.  Removing the file
before sending would trade that for a window where a message is lost; a monitor that loses an
alert is worse than one that, after a crash, mails it twice.

SMTP trouble is logged once when it starts and once when it ends, not every minute.
"""

from __future__ import annotations

import logging
import re
import smtplib
import socket
import ssl
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from collector.alerts.certfr import short_id
from collector.alerts.notification import Notification, severity_key
from collector.alerts.outbox import MAX_OUTBOX, Outbox
from collector.alerts.watchdog import Watchdog
from collector.alerts.wording import format_value, state_names
from collector.config import Config, SmtpSettings
from collector.metrics.registry import CHART_NAMES, JUDGED
from collector.store.statefile import atomic_write_bytes
from collector.times import format_ts

log = logging.getLogger(__name__)

#: Envelope of a copy queued for the recipients that refused it for now (never sent as is).
RETRY_HEADER = "X-Osmon-Retry-To"
STATUS_FILE = "smtp-status.json"
TEMPLATES = Path(__file__).resolve().parent / "templates"
#: A notification about one of these links to its chart (disk_full: the disk chart).
CHART_OF = {**{name: name for name in CHART_NAMES},
            **{f.name: f.thresholds.chart for f in JUDGED if f.thresholds and f.thresholds.chart}}
_LABELS = {"problem": "", "escalation": "", "reminder": "STILL ", "recovery": "RESOLVED",
           "certfr": "CERT-FR"}
_EVENT_TEXT = {"problem": "new problem", "escalation": "escalated to critical",
               "reminder": "still going on", "recovery": "resolved", "certfr": "new CERT-FR alert"}


class SmtpSetupError(Exception):
    """A problem on our side, found before talking to the server (e.g. no password)."""


# -- composing ------------------------------------------------------------------------------------
def subject_for(notes: Sequence[Notification]) -> str:
    """``[osmon] CRITICAL db1 disk / 97%  (+2 more)``: the worst notification, and a count."""
    worst = sorted(notes, key=severity_key)[0]
    view = _view(worst, "")
    more = f"  (+{len(notes) - 1} more)" if len(notes) > 1 else ""
    return _one_line(f"[osmon] {view['label']} {view['headline']}{more}")


def compose(config: Config, notes: Sequence[Notification], now: datetime) -> EmailMessage:
    """The digest of one pass: plain text plus an HTML alternative, worst first."""
    ordered = sorted(notes, key=severity_key)
    public_url = config.web.public_url.rstrip("/")
    context = {"test": False, "notifications": [_view(n, public_url) for n in ordered],
               "generated": format_ts(now), "public_url": public_url,
               "alerts_url": f"{public_url}/alerts", "sender": config.smtp.from_addr,
               "recipients": list(config.smtp.to)}
    return _message(config.smtp, subject_for(ordered), context, now, strict=False)


def compose_test(config: Config, recipients: Sequence[str], now: datetime) -> EmailMessage:
    """The ``osmon test-email`` message, rendered with the same (possibly custom) templates;
    a broken custom template raises here instead of falling back, so the admin sees it."""
    public_url = config.web.public_url.rstrip("/")
    context = {"test": True, "notifications": [], "generated": format_ts(now),
               "public_url": public_url, "alerts_url": f"{public_url}/alerts",
               "sender": config.smtp.from_addr, "recipients": list(recipients)}
    return _message(config.smtp, "[osmon] test e-mail", context, now, strict=True,
                    recipients=recipients)


def _message(smtp: SmtpSettings, subject: str, context: dict[str, Any], now: datetime, *,
             strict: bool, recipients: Sequence[str] | None = None) -> EmailMessage:
    text, html = render(smtp.template, context, strict=strict)
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = _one_line(smtp.from_addr)
    msg["To"] = _one_line(", ".join(recipients if recipients is not None else smtp.to))
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = f"<osmon.{now:%Y%m%d%H%M%S}.{uuid.uuid4().hex[:16]}@" \
                        f"{_domain(smtp.from_addr)}>"
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to the monitor
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg


def render(custom: Path | None, context: dict[str, Any], *,
           strict: bool) -> tuple[str, str | None]:
    """Text and HTML bodies.  ``custom`` (``smtp.template``) replaces the text body, or the
    HTML body if it ends in ``.html``; a sibling with the other suffix replaces the other one.
    A custom text template without an HTML sibling gives a text-only mail (a default HTML
    part would contradict it).  A broken custom template falls back to the built-in one
    (``strict``: raises), so an alert is never lost to a template typo."""
    text_path, html_path = TEMPLATES / "alert_email.txt", TEMPLATES / "alert_email.html"
    if custom is not None:
        if custom.suffix.lower() in (".html", ".htm"):
            sibling = custom.with_suffix(".txt")
            text_path, html_path = (sibling if sibling.is_file() else text_path), custom
        else:
            sibling = custom.with_suffix(".html")
            text_path, html_path = custom, (sibling if sibling.is_file() else None)
    try:
        text = _render_file(text_path, context, html=False)
        html = _render_file(html_path, context, html=True) if html_path is not None else None
    except Exception as exc:
        if strict or custom is None:
            raise
        log.error("e-mail template %s failed (%s); using the built-in one", custom, exc)
        return render(None, context, strict=True)
    return text, html


def _render_file(path: Path, context: dict[str, Any], *, html: bool) -> str:
    import jinja2  # only passes that mail pay for it

    env = jinja2.Environment(autoescape=html, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True, undefined=jinja2.ChainableUndefined)
    return env.from_string(path.read_text(encoding="utf-8")).render(context)


def _view(note: Notification, public_url: str) -> dict[str, Any]:
    """What a template needs of one notification, already worded."""
    level_word = note.level.upper() if note.level in ("warning", "critical") else ""
    label = _LABELS.get(note.event, "")
    label = (label + level_word) if note.event in ("problem", "escalation", "reminder") else label
    host_url = chart_url = None
    if note.host is not None:
        host_url = f"{public_url}/hosts/{quote(note.host, safe='')}"
        chart = CHART_OF.get(note.metric)
        if chart is not None:
            chart_url = f"{host_url}/charts/{chart}.svg?range=24h"
    return {"event": note.event, "event_text": _EVENT_TEXT.get(note.event, note.event),
            "level": note.level, "label": label, "headline": _headline(note),
            "message": note.message, "host": note.host, "metric": note.metric,
            "item": note.item, "value": format_value(note.value, note.unit),
            # Only measured values have a readable threshold (not "down after 2 passes").
            "threshold": format_value(note.threshold, note.unit) if note.unit else "",
            "since": note.since,
            "host_url": host_url, "chart_url": chart_url, "link": note.link,
            "details": note.details}


def _headline(note: Notification) -> str:
    if note.event == "certfr":
        return f"{short_id(note.item or '')} {note.message}".strip()
    host = note.host or ""
    if note.metric == "down":
        return f"{host} down"
    if note.metric == "hostkey":
        return f"{host} host key changed"
    if note.metric == "silent":
        return f"{host} silent"
    states = state_names(note.metric)
    if states:
        state = states.get(int(note.value), "?") if note.value is not None else "?"
        return f"{host} {note.metric} {note.item} {state}"
    item = f" {note.item}" if note.item else ""
    return f"{host} {note.metric}{item} {format_value(note.value, note.unit)}".rstrip()


def _one_line(text: str) -> str:
    """Header values must be one line: no CR, LF nor any other line break or control character
    a host or a feed could slip in (the double space before "(+N more)" is kept)."""
    return "".join(ch if ch.isprintable() else " " for ch in text)


def _domain(address: str) -> str:
    domain = address.rpartition("@")[2]
    return domain if re.fullmatch(r"[A-Za-z0-9.-]{1,253}", domain) else "osmon.localhost"


# -- outbox ---------------------------------------------------------------------------------------
#: The e-mail's part of the shared outbox (:mod:`collector.alerts.outbox`).
OUTBOX = Outbox(name="e-mail", suffix=".eml", rejected_suffix=".rejected",
                status_file=STATUS_FILE, fail_words="cannot be sent", done_word="sent")


def queue(state_dir: Path, msg: EmailMessage, now: datetime) -> Path:
    """Write ``msg`` to the outbox (atomically); names sort oldest first."""
    [path] = OUTBOX.queue(state_dir, [msg.as_bytes(policy=policy.SMTP)], now, numbered=False,
                          limit=MAX_OUTBOX)
    return path


def pending(state_dir: Path) -> list[Path]:
    """Messages waiting in the outbox, oldest first."""
    return OUTBOX.pending(state_dir)


def flush_outbox(settings: SmtpSettings, state_dir: Path, deadline: float) -> int:
    """Send what waits, oldest first, until done, an error, or ``deadline`` (monotonic).
    Returns how many were sent; the rest stay for the next pass.

    ``deadline`` is absolute: every step (connect, each reply, the TLS handshake, QUIT) ends
    by then whatever the server does (:class:`Watchdog`), ``timeout_s`` bounding each one."""
    waiting = pending(state_dir)
    if not waiting:
        return 0
    sent = 0
    left = deadline - time.monotonic()
    if left < 0.5:
        log.info("e-mail: no time left in this pass; %d message(s) wait", len(waiting))
        return 0
    with Watchdog(deadline) as dog:
        try:
            with connect(settings, min(settings.timeout_s, left), dog) as client:
                for path in waiting:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    if client.sock is not None:
                        client.sock.settimeout(min(settings.timeout_s, left))
                    msg = BytesParser(policy=policy.SMTP).parsebytes(path.read_bytes())
                    envelope = _envelope(msg)
                    try:
                        refused = client.send_message(msg, to_addrs=envelope)
                    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused,
                            smtplib.SMTPDataError) as exc:
                        if not _permanent(exc):
                            raise
                        OUTBOX.set_aside(path, explain(exc, settings))
                        continue
                    if refused:
                        _partly_refused(path, msg, refused)
                    path.unlink(missing_ok=True)
                    sent += 1
        except (OSError, smtplib.SMTPException, SmtpSetupError) as exc:
            OUTBOX.failed(state_dir, explain(exc, settings, dog), len(waiting) - sent)
            return sent
    OUTBOX.works(state_dir, sent)
    return sent


def _envelope(msg: EmailMessage) -> list[str] | None:
    """The recipients of a retry copy (and the header removed); ``None``: the To header."""
    retry = msg.get(RETRY_HEADER)
    if retry is None:
        return None
    del msg[RETRY_HEADER]
    return [a.strip() for a in str(retry).split(",") if a.strip()]


def _partly_refused(path: Path, msg: EmailMessage,
                    refused: dict[str, tuple[int, bytes]]) -> None:
    """Sent, but not to everyone: queue a copy for those refused for now, log the rest."""
    later = [r for r, (code, _m) in refused.items() if code < 500]
    never = {r: a for r, a in refused.items() if a[0] >= 500}
    if never:
        log.error("e-mail %s: refused for good for %s; not retried for them", path.name,
                  ", ".join(f"{r} ({c} {decode_answer(m)})" for r, (c, m) in never.items()))
    if later:
        msg[RETRY_HEADER] = ", ".join(later)
        base = path.stem.partition("-retry-")[0]  # a retry of a retry: the name does not grow
        retry = path.with_name(f"{base}-retry-{uuid.uuid4().hex[:6]}.eml")
        atomic_write_bytes(retry, msg.as_bytes(policy=policy.SMTP), mode=0o600)
        log.warning("e-mail %s: refused for now for %s; retried on the next passes", path.name,
                    ", ".join(later))


def _permanent(exc: smtplib.SMTPException) -> bool:
    """A 5xx answer to *this* message: retrying it would block the outbox for ever."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _msg in exc.recipients.values())
    return getattr(exc, "smtp_code", 0) >= 500


def smtp_failure(state_dir: Path) -> str | None:
    """Why e-mail is failing (since the last attempt), or ``None`` if it is not."""
    return OUTBOX.failure(state_dir)


# -- SMTP -----------------------------------------------------------------------------------------
class _SMTP(smtplib.SMTP):
    """smtplib's client, showing each new connection to a :class:`Watchdog` (given before
    ``__init__`` connects)."""

    watchdog: Watchdog | None = None

    def __init__(self, host: str, port: int, *, timeout: float,
                 watchdog: Watchdog | None) -> None:
        self.watchdog = watchdog
        super().__init__(host, port, timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = super()._get_socket(host, port, timeout)  # type: ignore[misc]
        if self.watchdog is not None:
            self.watchdog.watch(sock)  # the raw socket, before any TLS handshake
        return sock


class _SMTP_SSL(smtplib.SMTP_SSL, _SMTP):  # noqa: N801 - smtplib's naming
    """Implicit TLS; its ``_get_socket`` wraps what :class:`_SMTP`'s returns."""

    def __init__(self, host: str, port: int, *, timeout: float, watchdog: Watchdog | None,
                 context: ssl.SSLContext) -> None:
        self.watchdog = watchdog
        smtplib.SMTP_SSL.__init__(self, host, port, timeout=timeout, context=context)


def connect(settings: SmtpSettings, timeout: float,
            watchdog: Watchdog | None = None) -> smtplib.SMTP:
    """A connected, secured and authenticated client (the caller closes it); ``timeout``
    bounds each step, ``watchdog`` the whole exchange."""
    password = None
    if settings.user:
        try:
            password = settings.password()
        except OSError as exc:
            raise SmtpSetupError(f"cannot read password_file {settings.password_file}: "
                                 f"{exc.strerror}") from None
        if not password:
            raise SmtpSetupError(f"user {settings.user!r} is set but there is no password: set "
                                 f"${settings.password_env} or password_file in [smtp]")
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if settings.security == "ssl":
        client = _SMTP_SSL(settings.host, settings.port, timeout=timeout, watchdog=watchdog,
                           context=context)
    else:
        client = _SMTP(settings.host, settings.port, timeout=timeout, watchdog=watchdog)
    try:
        client.ehlo()
        if settings.security == "starttls":
            client.starttls(context=context)
            client.ehlo()
        if password is not None:
            client.login(settings.user, password)
    except BaseException:
        client.close()
        raise
    return client


#: ``osmon test-email`` has no pass deadline: its whole exchange gets this many timeout_s.
TEST_EMAIL_STEPS = 3


def send_now(settings: SmtpSettings, msg: EmailMessage) -> dict[str, Any]:
    """Send one message directly (no outbox); returns the recipients refused, if any.
    Raises :class:`DeadlineReached` when the server was still answering after
    :data:`TEST_EMAIL_STEPS` x ``timeout_s``."""
    limit = TEST_EMAIL_STEPS * settings.timeout_s
    with Watchdog(time.monotonic() + limit, f"{limit:g} s ({TEST_EMAIL_STEPS} x timeout_s)"
                  ) as dog:
        try:
            with connect(settings, settings.timeout_s, dog) as client:
                return dict(client.send_message(msg))
        except (OSError, smtplib.SMTPException) as exc:
            if dog.ended(exc):
                raise DeadlineReached(explain(exc, settings, dog)) from None
            raise


class DeadlineReached(SmtpSetupError):
    """The whole exchange took longer than it may (its message is already worded)."""


def explain(exc: BaseException, settings: SmtpSettings, watchdog: Watchdog | None = None) -> str:
    """One sentence an admin can act on, for any error of :func:`connect` or a send; with the
    exchange's ``watchdog``, an error that is the deadline's doing names the deadline."""
    where = f"{settings.host}:{settings.port}"
    if isinstance(exc, SmtpSetupError):
        return str(exc)
    if watchdog is not None and watchdog.ended(exc):
        return (f"gave up at {watchdog.label}: {where} had not finished answering by then "
                "(a server that answers too slowly?)")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"TLS problem with {where}: its certificate is not trusted "
                f"({exc.verify_message})")
    if isinstance(exc, ssl.SSLError):
        hint = (' (security = "ssl" expects TLS from the first byte, usually port 465; '
                'port 587 usually wants "starttls")') if settings.security == "ssl" else ""
        return f"TLS problem with {where}: {exc.reason or exc}{hint}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {where}: no mail server listens there (check host, port)"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {settings.host!r}: {exc.strerror}"
    if isinstance(exc, smtplib.SMTPServerDisconnected) and isinstance(
            exc.__context__, (socket.timeout, TimeoutError)):
        exc = exc.__context__  # smtplib reports a read timeout as "unexpectedly closed"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        hint = ' (port 465 usually wants security = "ssl")' if settings.port == 465 and \
            settings.security != "ssl" else ""
        return f"no answer from {where} within {settings.timeout_s:g} s{hint}"
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        if "STARTTLS" in str(exc).upper():
            return (f"TLS problem with {where}: the server does not offer STARTTLS "
                    '(use security = "ssl" on its TLS port, or "none" on a trusted network)')
        return (f"{where} does not offer authentication (AUTH); many servers offer it only "
                'after STARTTLS: try security = "starttls", or remove user')
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return (f"authentication failed for user {settings.user!r} at {where}: "
                f"{exc.smtp_code} {decode_answer(exc.smtp_error)}")
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return (f"{where} refused the sender {settings.from_addr!r}: {exc.smtp_code} "
                f"{decode_answer(exc.smtp_error)}")
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = ", ".join(f"{r} ({c} {decode_answer(m)})" for r, (c, m) in exc.recipients.items())
        return f"{where} refused every recipient: {refused}"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return f"{where} closed the connection ({exc})"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{where} answered {exc.smtp_code} {decode_answer(exc.smtp_error)}"
    if isinstance(exc, OSError):
        return f"cannot talk to {where}: {exc.strerror or exc}"
    return f"{where}: {exc}"


def decode_answer(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
