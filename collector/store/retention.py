"""Retention of the store: compress closed day files, drop whole old ones (``osmon prune``).

Three steps, in this order:

1. Day files older than ``compress_after_days`` are gzipped.  The slow part (compressing, then
   decompressing to check the copy) runs without the data lock so passes are not held up; only
   the swap takes the lock: if the plain file changed meanwhile, the copy is thrown away.  The
   copy is written to a temporary name, fsynced and renamed to ``<day>.jsonl.gz``, then the plain
   file is removed; a reader that sees both reads each line once.  A ``.gz`` already there
   (the clock went back across days) is merged with, never replaced.
2. Under the lock: day files (and chart rollups under ``rollups/``, named by day or month)
   older than ``retention_days`` are removed whole.
3. Still under the lock: while the store is larger than ``retention_max_mb``, the oldest files
   go first.  Today's files are never compressed nor removed: the collector appends to them.
4. The per-host state files of hosts gone from hosts.toml go once untouched for
   ``retention_days``.

"Older than N days" means the file's last day is more than N days before today (UTC).
"""

from __future__ import annotations

import calendar
import contextlib
import gzip
import hashlib
import logging
import os
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import IO

from collector.config import Config
from collector.store import disk_trend, probe_choice, proc_counters
from collector.store import swap as backup_swap
from collector.store.lock import DataLock
from collector.store.samples import Store
from collector.store.space import format_size
from collector.store.statefile import fsync_dir

log = logging.getLogger(__name__)

#: Rollup files are named by the day or month they cover; their content is not ours to parse.
_ROLLUP_NAME = re.compile(r"^(\d{4})-(\d{2})(?:-(\d{2}))?(?:\.[A-Za-z0-9.]+)?$")
_CHUNK = 1024 * 1024
#: The temporary name of a compressed copy (see :func:`_compress`), removed once this old.
_COPY_NAME = re.compile(r"^\.\d{4}-\d{2}-\d{2}\.jsonl\.gz\.[A-Za-z0-9_]+\.tmp$")
_STALE_S = 3600


@dataclass(frozen=True)
class PruneReport:
    compressed: tuple[Path, ...] = ()
    removed: tuple[Path, ...] = ()
    #: Bytes given back: removed files plus what compression saved.
    bytes_freed: int = 0
    #: Size of the day and rollup files left.
    total_bytes: int = 0
    #: Files that could not be compressed or removed, one sentence each (prune went on).
    problems: tuple[str, ...] = ()

    def summary(self) -> str:
        return (f"compressed {len(self.compressed)} day file(s), removed {len(self.removed)}, "
                f"freed {format_size(self.bytes_freed)}; the store now holds "
                f"{format_size(self.total_bytes)}")


@dataclass(frozen=True)
class _Dated:
    path: Path
    #: The newest day the file covers (a month file: the month's last day).
    last_day: date
    size: int


def prune(config: Config, now: datetime, *, lock_wait_s: float = 60) -> PruneReport:
    """Apply the retention settings to ``settings.data_dir`` as of ``now``."""
    settings = config.settings
    data_dir = Path(settings.data_dir)
    today = now.astimezone(timezone.utc).date()
    keep_from = today - timedelta(days=settings.retention_days)
    compress_before = today - timedelta(days=settings.compress_after_days)
    compressed: list[Path] = []
    removed: list[Path] = []
    problems: list[str] = []
    freed = 0

    backup_swap.recover(data_dir)  # never prune (or create) an empty stand-in for the data
    store = Store(data_dir)
    for host in _own_hosts(store):
        for day_file in store.day_files(host):
            if day_file.compressed or not keep_from <= day_file.day < min(compress_before, today):
                continue
            try:
                saved = _compress(day_file.path, data_dir, lock_wait_s)
            except OSError as exc:
                problems.append(f"cannot compress {day_file.path}: {exc.strerror or exc}")
                continue
            if saved is not None:
                compressed.append(day_file.path.with_name(day_file.path.name + ".gz"))
                freed += saved

    with DataLock(data_dir, "prune", wait_s=lock_wait_s):
        _remove_stale_copies(store)
        files = _dated_files(store) + _rollup_files(data_dir / "rollups")
        total = sum(f.size for f in files)
        limit = settings.retention_max_mb * 1024 * 1024
        for f in _removal_order(files, today, keep_from, total, limit):
            try:
                os.unlink(f.path)
            except OSError as exc:
                problems.append(f"cannot remove {f.path}: {exc.strerror}")
                continue
            removed.append(f.path)
            freed += f.size
            total -= f.size
            with contextlib.suppress(OSError):  # a host or rollup folder now empty goes too
                f.path.parent.rmdir()
        gone, trouble = _forgotten_host_state(config, now)
        removed.extend(gone)
        problems.extend(trouble)
    return PruneReport(compressed=tuple(compressed), removed=tuple(removed), bytes_freed=freed,
                       total_bytes=total, problems=tuple(problems))


def _forgotten_host_state(config: Config, now: datetime) -> tuple[list[Path], list[str]]:
    """The small state files a pass keeps per host (process counters, disk trend, probe
    choice) of hosts no longer in hosts.toml, untouched for ``retention_days``: of no use once
    the host is gone, and its samples expire in as long.  A host back in the file starts them
    again (a first pass without interval CPU, 30 minutes without a forecast)."""
    known = {host.name for host in config.hosts}
    cutoff = now.timestamp() - config.settings.retention_days * 86400
    removed: list[Path] = []
    problems: list[str] = []
    for folder in (proc_counters.DIRECTORY, disk_trend.DIRECTORY, probe_choice.DIRECTORY):
        try:
            entries = list(os.scandir(Path(config.state_dir) / folder))
        except FileNotFoundError:
            continue
        for entry in entries:
            host, dot, kind = entry.name.rpartition(".")
            if not dot or kind != "json" or host in known or \
                    not entry.is_file(follow_symlinks=False):
                continue
            try:
                if entry.stat(follow_symlinks=False).st_mtime >= cutoff:
                    continue
                os.unlink(entry.path)
            except OSError as exc:
                problems.append(f"cannot remove {entry.path}: {exc.strerror or exc}")
                continue
            removed.append(Path(entry.path))
    return removed, problems


def _removal_order(files: list[_Dated], today: date, keep_from: date, total: int,
                   limit: int) -> Iterator[_Dated]:
    """Day files to remove: every one past the age limit, then, while the store is over its
    size limit, the oldest file of whichever folder (a host's logs, a rollup) holds most.

    Why not simply the oldest first: one host that writes far more than the others (a
    misconfigured or hostile one) would then push every other host's history out, while
    keeping its own.  Today's files are never removed.
    """
    candidates = sorted((f for f in files if f.last_day < today),
                        key=lambda f: (f.last_day, str(f.path)))
    kept: dict[Path, list[_Dated]] = {}
    for f in candidates:
        if f.last_day < keep_from:
            total -= f.size
            yield f
        else:
            kept.setdefault(f.path.parent, []).append(f)
    usage: dict[Path, int] = {}
    for f in files:
        usage[f.path.parent] = usage.get(f.path.parent, 0) + f.size
    for f in candidates:
        if f.last_day < keep_from:
            usage[f.path.parent] -= f.size
    while total > limit and kept:
        folder = max(kept, key=lambda p: (usage[p], str(p)))
        f = kept[folder].pop(0)
        if not kept[folder]:
            del kept[folder]
        usage[folder] -= f.size
        total -= f.size
        yield f


def _own_hosts(store: Store) -> list[str]:
    """Host folders really inside the data directory: a symlinked one (put there by hand) may
    point anywhere, and prune deletes files."""
    hosts = []
    for host in store.hosts():
        if (store.hosts_dir / host).is_symlink():
            log.warning("prune: skipping %s: a symbolic link", store.hosts_dir / host)
            continue
        hosts.append(host)
    return hosts


def _remove_stale_copies(store: Store) -> None:
    """Remove compressed copies left by a prune killed while compressing (the caller holds the
    lock, so no copy of ours is in progress; an hour spares a slow one of another process)."""
    limit = time.time() - _STALE_S
    for host in _own_hosts(store):
        for path in (store.hosts_dir / host).glob(".*.jsonl.gz.*.tmp"):
            with contextlib.suppress(OSError):
                if _COPY_NAME.fullmatch(path.name) and path.lstat().st_mtime < limit:
                    log.info("prune: removing %s, left by an interrupted prune", path)
                    path.unlink()


def _dated_files(store: Store) -> list[_Dated]:
    found = []
    for host in _own_hosts(store):
        for day_file in store.day_files(host):
            with contextlib.suppress(FileNotFoundError):
                found.append(_Dated(day_file.path, day_file.day, day_file.path.stat().st_size))
    return found


def _rollup_files(rollups: Path) -> list[_Dated]:
    """Files below ``rollups/`` named ``YYYY-MM-DD*`` or ``YYYY-MM*``, at any depth."""
    found = []
    for root, _dirs, names in os.walk(rollups):
        for name in names:
            last_day = _rollup_last_day(name)
            path = Path(root) / name
            if last_day is None or not path.is_file() or path.is_symlink():
                continue
            found.append(_Dated(path, last_day, path.stat().st_size))
    return found


def _rollup_last_day(name: str) -> date | None:
    m = _ROLLUP_NAME.fullmatch(name)
    if not m or name.endswith(".tmp"):
        return None
    year, month = int(m.group(1)), int(m.group(2))
    try:
        if m.group(3):
            return date(year, month, int(m.group(3)))
        return date(year, month, calendar.monthrange(year, month)[1])
    except ValueError:  # not a date after all (month 13): not a file we know, leave it
        return None


def _compress(path: Path, data_dir: Path, lock_wait_s: float) -> int | None:
    """Replace ``path`` by ``path.gz``; return the bytes saved, or None if it changed meanwhile.

    The copy is checked by decompressing it before the original is removed: a store loses no
    line to a bad disk or a bug here.  When ``path.gz`` exists already it is never simply
    replaced: either it is a prefix of ``path`` (a prune killed after its rename: the plain
    file is whole) or it holds other lines of that day (the clock stepped back across days
    and the collector appended to a day already compressed): then the new copy is the old
    one's lines followed by the plain file's lines it does not hold yet.
    """
    before = os.stat(path)
    target = path.with_name(path.name + ".gz")
    old = _stat_or_none(target)
    merge = old is not None and not _gz_is_prefix_of(target, path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as raw:
            source_digest = (_gzip_merge(target, path, raw) if merge
                             else _gzip_copy(path, raw))
            raw.flush()
            os.fsync(raw.fileno())
        if _gunzip_digest(tmp) != source_digest:
            raise OSError(f"the compressed copy of {path.name} does not read back the same")
        os.chmod(tmp, before.st_mode & 0o777)
        with DataLock(data_dir, "prune", wait_s=lock_wait_s):
            after = _stat_or_none(path)
            now_old = _stat_or_none(target)
            if after is None or _identity(after) != _identity(before) or (
                    (now_old is None) != (old is None)
                    or (old is not None and now_old is not None
                        and _identity(now_old) != _identity(old))):
                log.info("prune: %s changed while it was compressed; left for next time", path)
                os.unlink(tmp)
                return None
            if merge:
                log.warning("prune: %s and %s both held samples (the clock went back?); "
                            "merged into %s", path.name, target.name, target.name)
            os.replace(tmp, target)
            fsync_dir(path.parent)
            os.unlink(path)
            fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return before.st_size + (old.st_size if old is not None else 0) - target.stat().st_size


def _stat_or_none(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _gz_is_prefix_of(gz_path: Path, plain: Path) -> bool:
    """Whether ``gz_path`` decompresses to the start of ``plain`` (an unreadable one: no)."""
    try:
        with gzip.open(gz_path, "rb") as packed, open(plain, "rb") as src:
            while True:
                chunk = packed.read(_CHUNK)
                if not chunk:
                    return True
                if src.read(len(chunk)) != chunk:
                    return False
    except (EOFError, OSError):
        return False


def _gzip_copy(path: Path, raw: IO[bytes]) -> str:
    digest = hashlib.sha256()
    # mtime=0 and no file name in the header: the same day compresses to the same bytes.
    with open(path, "rb") as src, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                compresslevel=6, mtime=0) as out:
        while True:
            chunk = src.read(_CHUNK)
            if not chunk:
                return digest.hexdigest()
            digest.update(chunk)
            out.write(chunk)


def _gzip_merge(gz_path: Path, plain: Path, raw: IO[bytes]) -> str:
    """Write the lines of ``gz_path`` then those of ``plain`` it lacks, compressed, to
    ``raw``; return the digest of what was written (uncompressed), for the read-back check.

    A line both files hold (a merge killed before the plain file was removed) is kept once;
    a torn last line of the old copy stays a line of its own, as appends keep it.
    """
    digest = hashlib.sha256()
    seen: set[bytes] = set()
    last = b"\n"
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0) as out:
        def write(data: bytes) -> None:
            digest.update(data)
            out.write(data)

        with gzip.open(gz_path, "rb") as packed:
            for line in packed:
                seen.add(hashlib.sha256(line.rstrip(b"\n")).digest())
                write(line)
                last = line[-1:]
        if last != b"\n":
            write(b"\n")
        with open(plain, "rb") as src:
            for line in src:
                if hashlib.sha256(line.rstrip(b"\n")).digest() not in seen:
                    write(line)
    return digest.hexdigest()


def _gunzip_digest(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with gzip.open(path, "rb") as fh:
            while True:
                chunk = fh.read(_CHUNK)
                if not chunk:
                    return digest.hexdigest()
                digest.update(chunk)
    except EOFError:  # truncated: the caller treats it like any other failed read-back
        return ""
