"""The CERT-FR alert feed: fetch politely, parse safely, remember what was seen.

Why so careful for one RSS file:

* the pass runs every minute, the feed changes a few times a month: it is fetched at most every
  ``interval_s``, with a conditional GET (ETag / Last-Modified), and the fetch runs in a worker
  thread that the pass stops waiting for at its budget, whatever the server does (a server that
  accepts and never answers, or trickles a byte a second, cannot hold the pass);
* the body is untrusted: size-capped, parsed with defusedxml (an entity bomb is refused), and
  descriptions are reduced to plain text (the feed carries escaped HTML);
* an alert's identity is its ``guid`` (else its link).  CERT-FR revises alerts in place (same
  guid, ``[MàJ]`` title, new date): a revision updates what is shown, is written to the alert
  history, and sends no mail.  A known alert is also recognised by its link, or by its
  ``CERTFR-YYYY-ALE-NNN`` reference, so a revision that drops its guid (or changes its URL's
  form) is still a revision.  An older copy of an alert (a stale cache, items out of date
  order, the same alert listed twice) never overwrites a newer one.  The very first successful
  fetch only records the current alerts: installing osmon must not mail the last twenty
  alerts;
* a feed that is down, slow, empty or malformed is logged and put in the alert history once,
  when the problem starts, and once more when it ends; it never marks a host as failing.

State: ``<data_dir>/state/certfr.json`` (versioned, atomic).
"""

from __future__ import annotations

import http.client
import logging
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from collector import __version__
from collector.alerts.certfr_feed import FeedError, FeedItem, parse_feed
from collector.alerts.watchdog import Watchdog
from collector.config import CertFrSettings
from collector.store.statefile import atomic_write_json, read_json
from collector.times import format_ts, parse_ts

log = logging.getLogger(__name__)

STATE_FILE = "certfr.json"
STATE_VERSION = 1
#: Alerts remembered; the feed lists about twenty, so this is years of history.
MAX_REMEMBERED = 2000
#: Below this budget a fetch is not attempted at all (it would only time out).
MIN_BUDGET_S = 0.5
USER_AGENT = f"osmon/{__version__} (CERT-FR feed reader)"
#: CERT-FR's own reference of an alert, e.g. ``CERTFR-2026-ALE-012``.
_REFERENCE = re.compile(r"CERTFR-\d{4}-[A-Z]+-\d+")


@dataclass(frozen=True)
class Fetched:
    status: int  # 200, or 304 (not modified)
    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None


@dataclass
class PollResult:
    """What one pass learnt: alerts new since last time, and history events (feed problems)."""

    state: dict[str, Any]
    new_alerts: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    fetched: bool = False


# -- state (pure) ---------------------------------------------------------------------------------
def empty_state() -> dict[str, Any]:
    return {"version": STATE_VERSION, "initialized": False, "last_fetch": None,
            "last_success": None, "etag": None, "last_modified": None, "problem": None,
            "alerts": {}}


def is_due(state: Mapping[str, Any], settings: CertFrSettings, now: datetime) -> bool:
    last = state.get("last_fetch")
    if not isinstance(last, str):
        return True
    try:
        elapsed = (now - parse_ts(last)).total_seconds()
    except ValueError:
        return True
    return elapsed >= settings.interval_s or elapsed < 0  # < 0: the clock went back


def merge(state: dict[str, Any], items: list[FeedItem], now: datetime,
          revised: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Record ``items`` in ``state``; return the alerts that are new (none on the first run).
    Known alerts whose title, date, link or text changed are updated and appended to
    ``revised`` (if given): shown and logged, never mailed."""
    now_s = format_ts(now)
    known: dict[str, Any] = state["alerts"]
    new = []
    for key, item in _latest_versions(known, items).items():
        record = known.get(key)
        fields = {"title": item.title, "link": item.link, "description": item.description}
        if item.published:
            # "dated": the feed's own date, kept apart from "published" which falls back
            # to when we first saw an undated alert.
            fields["published"] = fields["dated"] = item.published
        if record is None:
            record = known[key] = {"id": key, "published": now_s, **fields,
                                   "first_seen": now_s, "updated": now_s}
            if state["initialized"]:
                new.append(record)
        elif _older(item, record):
            continue  # a stale copy: what we have is newer
        elif any(record.get(k) != v for k, v in fields.items()):
            record.update(fields)
            record["updated"] = now_s  # a revision ([MàJ]): shown, not mailed
            if revised is not None:
                revised.append(record)
    state["initialized"] = True
    if len(known) > MAX_REMEMBERED:
        for old in sorted(known.values(), key=lambda r: r["first_seen"])[:-MAX_REMEMBERED]:
            del known[old["id"]]
    new.sort(key=lambda r: r["published"])
    return new


def _latest_versions(known: Mapping[str, Any], items: list[FeedItem]) -> dict[str, FeedItem]:
    """One item per alert, keyed by the id it is known under: the newest, if listed twice."""
    names: dict[str, str] = {}
    for key, record in known.items():
        for name in _names(key, record.get("link")):
            names.setdefault(name, key)
    chosen: dict[str, FeedItem] = {}
    for item in items:
        key = next((names[n] for n in _lookups(item) if n in names), item.id)
        for name in _names(item.id, item.link):
            names.setdefault(name, key)
        if key not in chosen or _newer(item, chosen[key]):
            chosen[key] = item
    return chosen


def _names(identity: str, link: Any) -> list[str]:
    """The names an alert answers to: its id, its CERT-FR reference, and its link (kept apart
    when the alert has a guid of its own: two guids sharing a link are two alerts)."""
    names = [f"id:{identity}", *_references(identity, link)]
    if isinstance(link, str) and link:
        names.append(f"link:{link}" if identity == link else f"guid-link:{link}")
    return names


def _lookups(item: FeedItem) -> list[str]:
    """The names a feed item may be known under.  Identity is the guid, else the link: an item
    whose id is its link may be an alert first seen with a guid."""
    names = [f"id:{item.id}", *_references(item.id, item.link)]
    if item.link:
        names.append(f"link:{item.link}")
        if item.id == item.link:
            names.append(f"guid-link:{item.link}")
    return names


def _references(*texts: Any) -> list[str]:
    return [f"ref:{m.group(0)}" for t in texts if isinstance(t, str)
            for m in [_REFERENCE.search(t)] if m]


def _newer(item: FeedItem, other: FeedItem) -> bool:
    return item.published is not None and (other.published is None
                                           or item.published > other.published)


def _older(item: FeedItem, record: Mapping[str, Any]) -> bool:
    dated = record.get("dated")
    return item.published is not None and isinstance(dated, str) and item.published < dated


# -- fetching (I/O) -------------------------------------------------------------------------------
class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> Any:
        if urlparse(newurl).scheme not in ("http", "https"):
            raise FeedError(f"refused a redirect to {newurl[:100]}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _watched_opener(dog: Watchdog) -> urllib.request.OpenerDirector:
    """An opener whose every connection (redirects too) is shut down at ``dog``'s deadline."""

    def watched(base: type[http.client.HTTPConnection]) -> type[http.client.HTTPConnection]:
        class Watched(base):  # type: ignore[valid-type,misc]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                create = self._create_connection
                self._create_connection = lambda *a, **k: dog.watch(create(*a, **k))

        return Watched

    class Http(urllib.request.HTTPHandler):
        def http_open(self, req: Any) -> Any:
            return self.do_open(watched(http.client.HTTPConnection), req)

    class Https(urllib.request.HTTPSHandler):
        def https_open(self, req: Any) -> Any:
            return self.do_open(watched(http.client.HTTPSConnection), req,
                                context=self._context)  # type: ignore[attr-defined]

    return urllib.request.build_opener(_HttpOnlyRedirects, Http, Https)


def fetch(url: str, *, budget_s: float, max_bytes: int, etag: str | None = None,
          last_modified: str | None = None) -> Fetched:
    """GET the feed within ``budget_s`` seconds in all: the caller's thread is never held
    longer, and the connection itself is shut down then (:class:`Watchdog`), even when the
    server trickles its headers one byte a second."""
    if urlparse(url).scheme not in ("http", "https"):
        raise FeedError(f"feed_url must be an http(s) URL, not {url[:100]!r}")
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["result"] = _fetch(url, budget_s, max_bytes, etag, last_modified)
        except Exception as exc:  # handed to the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=work, name="osmon-certfr-fetch", daemon=True)
    worker.start()
    worker.join(budget_s)
    if worker.is_alive():
        raise FeedError(f"no complete answer within {budget_s:.1f} s")
    if "error" in box:
        error = box["error"]
        raise error if isinstance(error, FeedError) else FeedError(_describe(error))
    return box["result"]


def _fetch(url: str, budget_s: float, max_bytes: int, etag: str | None,
           last_modified: str | None) -> Fetched:
    deadline = time.monotonic() + budget_s
    headers = {"User-Agent": USER_AGENT, "Accept": "application/rss+xml, application/xml"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    request = urllib.request.Request(url, headers=headers)
    with Watchdog(deadline) as dog:
        try:
            fetched = _get(_watched_opener(dog), request, deadline, budget_s, max_bytes)
        except (OSError, http.client.HTTPException) as exc:
            if dog.ended(exc):
                raise FeedError(f"no complete answer within {budget_s:.1f} s") from None
            raise
        if dog.fired:  # the shutdown ended the body like an end of file: it is cut short
            raise FeedError(f"no complete answer within {budget_s:.1f} s")
        return fetched


def _get(opener: urllib.request.OpenerDirector, request: urllib.request.Request,
         deadline: float, budget_s: float, max_bytes: int) -> Fetched:
    try:
        with opener.open(request, timeout=budget_s) as response:
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise FeedError(f"the feed is {int(length)} bytes, over max_bytes ({max_bytes})")
            chunks, size = [], 0
            while True:
                if time.monotonic() > deadline:
                    raise FeedError(f"no complete answer within {budget_s:.1f} s")
                chunk = response.read1(65536)
                if not chunk:
                    break
                size += len(chunk)
                if size > max_bytes:
                    raise FeedError(f"the feed is over max_bytes ({max_bytes} bytes)")
                chunks.append(chunk)
            return Fetched(200, b"".join(chunks), response.headers.get("ETag"),
                           response.headers.get("Last-Modified"))
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 304:
            return Fetched(304)
        raise FeedError(f"HTTP {exc.code} {exc.reason}") from None


def _describe(exc: BaseException) -> str:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError) or "timed out" in str(reason):
        return "no answer (timed out)"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, OSError) and reason.strerror:
        return f"cannot connect: {reason.strerror}"
    return f"cannot fetch: {reason}"


# -- one pass -------------------------------------------------------------------------------------
def load_state(state_dir: Path) -> dict[str, Any]:
    value, problem = read_json(Path(state_dir) / STATE_FILE, STATE_VERSION)
    if problem is not None:
        log.error("CERT-FR state %s", problem)
    state = normalize_state(value)
    if isinstance(value, Mapping) and value.get("initialized") is True \
            and not state["initialized"]:
        log.error("CERT-FR state %s: damaged alert records dropped; the next fetch records "
                  "the feed again without mailing", Path(state_dir) / STATE_FILE)
    return state


def normalize_state(value: Any) -> dict[str, Any]:
    """``value`` with anything malformed replaced by its default (a hand-edited or damaged
    file must not break every pass; a lost record only means an alert is recorded again)."""
    state = empty_state()
    if not isinstance(value, Mapping):
        return state
    state["initialized"] = value.get("initialized") is True
    for key in ("etag", "last_modified"):
        state[key] = value[key] if isinstance(value.get(key), str) else None
    for key in ("last_fetch", "last_success"):
        state[key] = value[key] if _is_ts(value.get(key)) else None
    problem = value.get("problem")
    if isinstance(problem, Mapping) and isinstance(problem.get("message"), str):
        state["problem"] = {"message": problem["message"],
                            "since": problem["since"] if _is_ts(problem.get("since")) else "?"}
    alerts = value.get("alerts")
    if isinstance(alerts, Mapping):
        state["alerts"] = {k: dict(r) for k, r in alerts.items() if _valid_record(k, r)}
    if not isinstance(alerts, Mapping) or len(state["alerts"]) < len(alerts):
        # Damaged memory: the next fetch records again, as a first run, rather than mail
        # alerts it merely forgot.
        state["initialized"] = False
    return state


def _valid_record(key: Any, record: Any) -> bool:
    return (isinstance(key, str) and isinstance(record, Mapping) and record.get("id") == key
            and isinstance(record.get("title"), str)
            and all(_is_ts(record.get(k)) for k in ("published", "first_seen", "updated"))
            and (record.get("dated") is None or _is_ts(record.get("dated")))
            and (record.get("link") is None or isinstance(record.get("link"), str))
            and isinstance(record.get("description", ""), str))


def _is_ts(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parse_ts(value)
    except ValueError:
        return False
    return True


def save_state(state_dir: Path, state: dict[str, Any]) -> None:
    atomic_write_json(Path(state_dir) / STATE_FILE, state)


def poll(settings: CertFrSettings, state_dir: Path, now: datetime, budget_s: float) -> PollResult:
    """Fetch the feed if due and there is time; the caller saves ``result.state`` once the new
    alerts are safely queued (so a crash re-announces rather than loses them)."""
    state = load_state(state_dir)
    result = PollResult(state)
    if not is_due(state, settings, now) or budget_s < MIN_BUDGET_S:
        return result
    result.fetched = True
    state["last_fetch"] = format_ts(now)
    try:
        fetched = fetch(settings.feed_url, budget_s=budget_s, max_bytes=settings.max_bytes,
                        etag=state.get("etag"), last_modified=state.get("last_modified"))
        items = parse_feed(fetched.body) if fetched.status == 200 else None
        if items is not None and not items:
            raise FeedError("the feed lists no alerts")
    except FeedError as exc:
        result.events.extend(_feed_problem(state, str(exc), now))
        return result
    result.events.extend(_feed_recovered(state, now))
    state["last_success"] = format_ts(now)
    if items is not None:
        # Remember validators only for a body we could read, so a 304 never hides a bad one.
        state["etag"], state["last_modified"] = fetched.etag, fetched.last_modified
        revised: list[dict[str, Any]] = []
        result.new_alerts = merge(state, items, now, revised)
        result.events.extend(_revision_event(now, r) for r in revised)
    return result


def _feed_problem(state: dict[str, Any], message: str, now: datetime) -> list[dict[str, Any]]:
    if state.get("problem"):
        log.info("CERT-FR feed still unavailable: %s", message)
        return []
    log.warning("CERT-FR feed unavailable: %s (reported once; retried every interval)", message)
    state["problem"] = {"message": message, "since": format_ts(now)}
    return [_event(now, "warning", f"CERT-FR feed unavailable: {message}")]


def _feed_recovered(state: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    problem = state.get("problem")
    if not problem:
        return []
    state["problem"] = None
    since = problem.get("since", "?") if isinstance(problem, dict) else "?"
    log.warning("CERT-FR feed readable again (unavailable since %s)", since)
    return [_event(now, "ok", f"CERT-FR feed readable again (unavailable since {since})")]


def _revision_event(now: datetime, record: Mapping[str, Any]) -> dict[str, Any]:
    event = _event(now, "info", f"CERT-FR alert revised: {record['title']}", "certfr-update")
    event["item"] = record["id"]
    return event


def _event(now: datetime, level: str, message: str, event: str = "certfr") -> dict[str, Any]:
    return {"ts": format_ts(now), "host": "", "metric": "certfr", "item": None,
            "event": event, "level": level, "value": None, "threshold": None,
            "message": message}


def short_id(alert_id: str) -> str:
    """``CERTFR-2026-ALE-012`` from its URL, for subjects; the full id otherwise."""
    match = _REFERENCE.search(alert_id)
    return match.group(0) if match else alert_id


# -- read API (dashboard) -------------------------------------------------------------------------
def recent_alerts(state_dir: Path, limit: int = 50) -> list[dict[str, Any]]:
    """Known alerts newest first: ``{"id","title","link","published","description",
    "first_seen","updated"}``."""
    value, _problem = read_json(Path(state_dir) / STATE_FILE, STATE_VERSION)
    if value is None:
        return []
    alerts = normalize_state(value)["alerts"]
    keys = ("id", "title", "link", "published", "description", "first_seen", "updated")
    rows = [{k: a.get(k) for k in keys} for a in alerts.values()
            if isinstance(a, dict) and isinstance(a.get("published"), str)]
    rows.sort(key=lambda r: (r["published"], r["first_seen"] or ""), reverse=True)
    return rows[:max(0, limit)]


def feed_status(state_dir: Path) -> dict[str, Any]:
    """How the last fetches went, for the page: ``{"last_fetch", "last_success", "problem"}``
    (``problem``: ``{"message", "since"}`` while the feed fails, else None).  When
    ``problem`` is set, the fetch at ``last_fetch`` is the one that failed."""
    value, _problem = read_json(Path(state_dir) / STATE_FILE, STATE_VERSION)
    state = normalize_state(value)
    return {"last_fetch": state["last_fetch"], "last_success": state["last_success"],
            "problem": state["problem"]}
