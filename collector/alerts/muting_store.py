"""Silences and acknowledgements on disk, and every change to them in the alert history.

* ``<data_dir>/state/silences.json`` and ``state/acks.json``: versioned JSON, written
  atomically (:mod:`collector.store.statefile`), so they survive restarts and are in backups.
* ``state/muting.lock``: ``osmon silence``, ``osmon ack``, the dashboard and the post-pass hook
  all change these files; each change is read-modify-write under this ``flock``, held for
  milliseconds, so two changes at once cannot lose one another.

Readers (:func:`read`) never write and never raise on damage.  A writer that finds a corrupt
file (one that does not parse) sets it aside as ``<name>.corrupt`` and starts again from
nothing: silences that were in it are gone (the history still names them), alerts are mailed
again, which is loud rather than lost.  A file that cannot be read now (no permission, an I/O
error) or that a newer osmon wrote is not corrupt: it is left as it is, a change that needs it
is refused, and the pass says so in the history and is judged without it (as
``alerts.json`` is handled by :mod:`collector.alerts.state`).  Run as root (``sudo osmon
silence add``), the files, the lock and the history are given to the state directory's owner,
so the collector's own user can still use them.  The hook drops silences that are over
(:func:`expire`) and acknowledgements whose alert recovered or got worse (:func:`end_acks`),
and records each in the history.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import pwd
import secrets
from collections.abc import Iterator, Mapping
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from collector.alerts import muting_input
from collector.alerts import state as alert_store
from collector.alerts.muting import LEVELS, Ack, Muting, Silence
from collector.alerts.wording import label
from collector.config import Config
from collector.errors import MutingError
from collector.store.lock import wait_for_flock
from collector.store.statefile import (
    StateFileUnusable,
    atomic_write_json,
    give_to_dir_owner,
    make_dirs,
    read_for_update,
    read_json,
)
from collector.times import format_ts

log = logging.getLogger(__name__)

SILENCES_FILE = "silences.json"
ACKS_FILE = "acks.json"
LOCK_FILE = "muting.lock"
VERSION = 1
#: A runaway script must not grow the file (read every pass) without bound.
MAX_SILENCES = 1000
#: How long a change waits for another one (or the pass's tidying) to finish.
LOCK_WAIT_S = 10.0


# -- reading --------------------------------------------------------------------------------------
def read(state_dir: Path) -> tuple[Muting, list[str]]:
    """Every stored silence and acknowledgement, and what was wrong with the files (if
    anything: a corrupt file reads as empty; a malformed entry is skipped)."""
    problems: list[str] = []
    silences = _entries(state_dir, SILENCES_FILE, problems)
    acks = _entries(state_dir, ACKS_FILE, problems)
    return Muting(_silences(silences), _acks(acks)), problems


def _entries(state_dir: Path, name: str, problems: list[str]) -> list[Any]:
    value, problem = read_json(Path(state_dir) / name, VERSION)
    if problem is not None:
        problems.append(problem)
    entries = value.get(_KEYS[name]) if isinstance(value, dict) else None
    return entries if isinstance(entries, list) else []


def _silences(raw: list[Any]) -> tuple[Silence, ...]:
    return tuple(s for s in map(Silence.from_dict, raw) if s is not None)


def _acks(raw: list[Any]) -> tuple[Ack, ...]:
    return tuple(a for a in map(Ack.from_dict, raw) if a is not None)


_KEYS = {SILENCES_FILE: "silences", ACKS_FILE: "acks"}


# -- changes --------------------------------------------------------------------------------------
class MutingFileUnusable(MutingError):
    """silences.json or acks.json exists but cannot be read now (no permission, an I/O error)
    or a newer osmon wrote it: it is left as it is, and nothing that needs it is changed."""


@contextlib.contextmanager
def _locked(state_dir: Path, wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
    """The muting lock.  Opened read-only (``flock`` needs no more) and readable by all (it
    holds nothing), so a lock file made by root is no obstacle to the collector's user; run
    as root, the lock and the two files are given to the state directory's owner."""
    path = Path(state_dir) / LOCK_FILE
    try:
        make_dirs(path.parent, dir_owner=True)
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    except OSError as exc:
        raise MutingFileUnusable(f"cannot use {path}: {exc.strerror or exc}"
                                 f"{_owner_hint(path)}") from None
    try:
        if not wait_for_flock(fd, wait_s):
            raise MutingError(f"{path} stays locked by another osmon process; try again")
        if os.geteuid() == 0:
            for name in (LOCK_FILE, SILENCES_FILE, ACKS_FILE, alert_store.HISTORY_FILE,
                         alert_store.HISTORY_LOCK_FILE):
                if (path.parent / name).exists():
                    give_to_dir_owner(path.parent / name)
        yield
    finally:
        os.close(fd)  # releases the lock


def _owner_hint(path: Path) -> str:
    """For a file another user made (root, by an older osmon under sudo): whose it is."""
    try:
        uid = path.stat().st_uid
    except OSError:
        return ""
    if uid == os.geteuid():
        return ""
    try:
        owner = pwd.getpwuid(uid).pw_name
    except KeyError:
        owner = f"uid {uid}"
    return (f" (it belongs to {owner}: give it to the owner of {path.parent}, or run any "
            "osmon silence command with sudo, which does)")


def _for_change(state_dir: Path, name: str, problems: list[str]) -> list[Any]:
    """Under the lock: the entries of one file.  A corrupt file is set aside (not
    overwritten) and said in ``problems``; one that cannot be read or is newer raises
    :class:`MutingFileUnusable`, and nothing is changed."""
    path = Path(state_dir) / name
    try:
        value, problem = read_for_update(path, VERSION)
    except StateFileUnusable as exc:
        raise MutingFileUnusable(f"{exc}; it is left as it is and nothing was changed"
                                 f"{'' if exc.newer else _owner_hint(path)}") from None
    if problem is not None:
        with contextlib.suppress(OSError):
            os.replace(path, path.with_name(name + ".corrupt"))
        log.error("%s; kept as %s.corrupt, started again from nothing", problem, name)
        problems.append(problem)
    entries = value.get(_KEYS[name]) if isinstance(value, dict) else None
    return entries if isinstance(entries, list) else []


def _silences_for_change(state_dir: Path, problems: list[str]) -> list[Silence]:
    return list(_silences(_for_change(state_dir, SILENCES_FILE, problems)))


def _acks_for_change(state_dir: Path, problems: list[str]) -> list[Ack]:
    return list(_acks(_for_change(state_dir, ACKS_FILE, problems)))


def _save_silences(state_dir: Path, silences: list[Silence]) -> None:
    atomic_write_json(Path(state_dir) / SILENCES_FILE,
                      {"version": VERSION, "silences": [s.as_dict() for s in silences]},
                      dir_owner=True)


def _save_acks(state_dir: Path, acks: list[Ack]) -> None:
    atomic_write_json(Path(state_dir) / ACKS_FILE,
                      {"version": VERSION, "acks": [a.as_dict() for a in acks]}, dir_owner=True)


def add_silence(config: Config, request: muting_input.SilenceRequest, *, author: str,
                now: datetime, zone: tzinfo | None) -> Silence:
    """Check ``request`` (:class:`MutingError` changes nothing), store it, record it."""
    state_dir = config.state_dir
    problems: list[str] = []
    with _locked(state_dir):
        silences = _silences_for_change(state_dir, problems)
        alert_store.append_history(state_dir, [_problem_record(p, now) for p in problems])
        taken = {s.id for s in silences}
        silence = muting_input.new_silence(config, request, silence_id=_new_id(taken),
                                           author=author, now=now, zone=zone)
        current = sum(1 for s in silences if s.end > now)
        if current >= MAX_SILENCES:
            raise MutingError(f"the silence was not added: {current} silences exist already "
                              f"(at most {MAX_SILENCES}); remove some first")
        _save_silences(state_dir, silences + [silence])  # the pass records those that are over
    alert_store.append_history(state_dir, [silence_record(silence, "silence-added", now)])
    return silence


def remove_silence(config: Config, silence_id: str, *, author: str,
                   now: datetime) -> Silence:
    state_dir = config.state_dir
    problems: list[str] = []
    with _locked(state_dir):
        silences = _silences_for_change(state_dir, problems)
        alert_store.append_history(state_dir, [_problem_record(p, now) for p in problems])
        found = next((s for s in silences if s.id == silence_id and s.end > now), None)
        if found is None:
            ids = ", ".join(s.id for s in silences if s.end > now) or "none"
            raise MutingError(f"no silence {silence_id!r} to remove (current silences: {ids}; "
                              "see osmon silence list)")
        _save_silences(state_dir, [s for s in silences if s.id != silence_id])
    who = muting_input.clean_author(author)
    alert_store.append_history(state_dir, [silence_record(
        found, "silence-removed", now, f"removed by {who} before its end")])
    return found


def acknowledge(config: Config, host: str, metric: str, item: str | None, reason: str, *,
                author: str, now: datetime) -> Ack:
    """Acknowledge an active alert (as the alert state has it now); one per alert, a new one
    replaces the old."""
    state_dir = config.state_dir
    alert_state, _problem = alert_store.read_state(state_dir)
    problems: list[str] = []
    with _locked(state_dir):
        acks = _acks_for_change(state_dir, problems)
        alert_store.append_history(state_dir, [_problem_record(p, now) for p in problems])
        ack = muting_input.new_ack(config, alert_state, host, metric, item, reason,
                                   ack_id=_new_id({a.id for a in acks}), author=author,
                                   now=now)
        _save_acks(state_dir, [a for a in acks if (a.host, a.key) != (ack.host, ack.key)]
                   + [ack])
    alert_store.append_history(state_dir, [ack_record(ack, "ack", now)])
    return ack


def expire(config: Config, now: datetime) -> list[dict[str, Any]]:
    """Before a pass is judged: silences that are over leave the file; returns their lines for
    the history, a line for a corrupt file set aside, and one for a file left alone because it
    cannot be used now (the pass is judged without what it holds).  Never raises: a silence
    that is over is inert anyway, and this is tried again on the next pass."""
    state_dir = config.state_dir
    records: list[dict[str, Any]] = []
    try:
        with _locked(state_dir, wait_s=2.0):
            problems: list[str] = []
            silences: list[Silence] = []
            try:
                silences = _silences_for_change(state_dir, problems)
            except MutingFileUnusable as exc:
                records.append(_unusable_record(str(exc), now))
            try:
                _acks_for_change(state_dir, problems)  # a corrupt one is set aside and said
            except MutingFileUnusable as exc:
                records.append(_unusable_record(str(exc), now))
            records[:0] = [_problem_record(p, now) for p in problems]
            over = [s for s in silences if s.end <= now]
            if over:
                _save_silences(state_dir, [s for s in silences if s.end > now])
                records += [silence_record(s, "silence-expired", now) for s in over]
    except MutingFileUnusable as exc:
        records.append(_unusable_record(str(exc), now))
    except (OSError, MutingError) as exc:
        log.warning("silences not tidied this pass: %s", exc)
    return records


def end_acks(config: Config, alert_state: Mapping[str, Any], now: datetime) -> None:
    """After a pass is judged: acknowledgements whose alert recovered or got worse leave the
    file, each with a line in the history.  Never raises (tried again on the next pass)."""
    state_dir = config.state_dir
    records: list[dict[str, Any]] = []
    try:
        with _locked(state_dir, wait_s=2.0):
            problems: list[str] = []
            acks = _acks_for_change(state_dir, problems)
            records += [_problem_record(p, now) for p in problems]
            ended = [(a, why) for a in acks if (why := _ack_over(a, alert_state)) is not None]
            if ended:
                gone = {a.id for a, _why in ended}
                _save_acks(state_dir, [a for a in acks if a.id not in gone])
                records += [ack_record(a, "ack-ended", now, why) for a, why in ended]
    except (OSError, MutingError) as exc:
        log.warning("acknowledgements not tidied this pass: %s", exc)
    if records:
        alert_store.append_history(state_dir, records)


def _ack_over(ack: Ack, alert_state: Mapping[str, Any]) -> str | None:
    """Why an acknowledgement no longer holds, or ``None`` while it does."""
    hosts = alert_state.get("hosts", {})
    alert = hosts.get(ack.host, {}).get("alerts", {}).get(ack.key)
    if alert is None or alert.get("since") != ack.since or alert.get("level") not in LEVELS:
        return "the alert is over"
    if alert.get("ack_spent") == ack.id:
        return f"the alert got worse ({alert.get('level')})"
    return None


def _new_id(taken: set[str]) -> str:
    while True:
        candidate = secrets.token_hex(4)
        if candidate not in taken:
            return candidate


def local_user() -> str:
    """Who runs the command: the person behind sudo rather than root, when there is one."""
    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


# -- the alert history ----------------------------------------------------------------------------
def silence_record(silence: Silence, event: str, now: datetime, note: str = "") -> dict[str, Any]:
    words = {"silence-added": "silenced", "silence-removed": "silence ended",
             "silence-expired": "silence over"}[event]
    message = (f"{silence.scope} {words}: {_when(silence.start)} to {_when(silence.end)} by "
               f"{silence.author}: {silence.reason}" + (f" ({note})" if note else ""))
    return {"ts": format_ts(now), "host": silence.host or "", "metric": silence.metric,
            "item": silence.item, "event": event, "level": "info", "value": None,
            "threshold": None, "message": message, "silence": silence.id,
            "tag": silence.tag}


def ack_record(ack: Ack, event: str, now: datetime, note: str = "") -> dict[str, Any]:
    what = f"{label(ack.metric, ack.item)} on {ack.host}"
    message = (f"{what} acknowledged by {ack.author}: {ack.reason}" if event == "ack" else
               f"acknowledgement of {what} by {ack.author} ended: {note}")
    return {"ts": format_ts(now), "host": ack.host, "metric": ack.metric, "item": ack.item,
            "event": event, "level": ack.level if event == "ack" else "info", "value": None,
            "threshold": None, "message": message, "ack": ack.id}


def _problem_record(problem: str, now: datetime) -> dict[str, Any]:
    return {"ts": format_ts(now), "host": "", "metric": "state", "item": None,
            "event": "state", "level": "warning", "value": None, "threshold": None,
            "message": f"{problem}; the silences or acknowledgements in it are gone"}


def _unusable_record(problem: str, now: datetime) -> dict[str, Any]:
    return {"ts": format_ts(now), "host": "", "metric": "state", "item": None,
            "event": "state", "level": "warning", "value": None, "threshold": None,
            "message": f"{problem}; alerts are judged without it until it can be used"}


def listing(muting: Muting, now: datetime) -> dict[str, Any]:
    """What ``osmon silence list --json`` and ``/api/silences`` give: the silences in force
    or to come, by start, each with ``active`` (in force now) beside its stored fields."""
    return {"generated": format_ts(now),
            "silences": [dict(s.as_dict(), active=s.active(now)) for s in muting.active(now)]}


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")
