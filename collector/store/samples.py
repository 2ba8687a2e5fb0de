"""The sample store: one JSON Lines file per host and UTC day, append-only.

Layout: ``<data_dir>/hosts/<name>/<YYYY-MM-DD>.jsonl`` (closed days may be ``.jsonl.gz``).
Why JSON Lines and not a database: a killed writer can at worst leave a torn last line, which
readers skip; files can be read, grepped, copied and backed up with ordinary tools; and a day
file is the unit of retention.  Everything that reads samples goes through this module, so the
torn-line and gzip rules live in one place.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NamedTuple

from collector.metrics.stored import bad_sample, check_stored
from collector.names import SAFE_NAME
from collector.times import format_ts, parse_ts

_DAY_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.jsonl(\.gz)?$")
#: In the line of every good sample (lines are written by :func:`encode_line`).
_GOOD = b'"ok":true'
#: How much of a file's end is read first to find its last line (a sample is usually a few
#: KiB); quadrupled until a whole line is found.  Reading less matters when the dashboard or
#: /metrics reads the new sample of every host after each pass.
_TAIL_CHUNK = 16 * 1024


#: A normal sample is 5 to 50 KiB.  A host that sends more (thousands of long mount or process
#: names, every minute) would fill the store and, through the total-size retention, push out
#: every other host's history: its line is refused and replaced by a failure line.
MAX_LINE_BYTES = 512 * 1024


class SampleTooLarge(ValueError):
    """A sample whose line would be over :data:`MAX_LINE_BYTES`."""


class Appended(NamedTuple):
    """Where one append went: the file, its inode, and the offsets the data took in it."""

    path: Path
    inode: int
    start: int
    end: int


def append_whole_lines(path: Path, data: bytes) -> Appended | None:
    """Append ``data`` (whole lines) to ``path`` in one ``write``, creating what is missing;
    where it went (None for no data): a reader that saw the file end at ``start`` knows that
    nothing but ``data`` came in since.

    Every append-only log of osmon (samples, rollups, alert history) goes through here.  If a
    previous writer was killed mid-line, the file does not end with a newline; ``data`` then
    starts with one, so the torn fragment stays a line of its own (skipped by readers) instead
    of swallowing the new line.

    A write that fails half-way (a disk that fills up during it) is undone: the file is cut
    back to its size before the call, so it never keeps a fragment of ours, and the error is
    raised for the caller to count.  Callers hold the data lock (the alert history, appended
    beside the pass too, its own lock), so nobody appended meanwhile.
    """
    if not data:
        return None
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
    except FileNotFoundError:  # a new host or log: its directory first (not tried every time)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        stat = os.fstat(fd)
        size = stat.st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data
        written = 0
        try:
            while written < len(data):  # a short write (disk nearly full): finish or raise
                written += os.write(fd, data[written:])
        except OSError:
            if written:
                os.ftruncate(fd, size)  # cutting back needs no free space
            raise
    finally:
        os.close(fd)
    return Appended(path, stat.st_ino, size, size + len(data))


@functools.lru_cache(maxsize=16)
def _day_of(ts: str) -> str:
    """The day file a sample's ``ts`` goes to (a pass's samples share one ``ts``)."""
    return parse_ts(ts).date().isoformat()


def encode_line(sample: dict[str, Any]) -> bytes:
    # allow_nan=False: a NaN would make the line invalid JSON for every other reader.
    text = json.dumps(sample, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8") + b"\n"


@dataclass(frozen=True)
class DayFile:
    day: date
    path: Path

    @property
    def compressed(self) -> bool:
        return self.path.suffix == ".gz"


def _checked(sample: dict[str, Any]) -> dict[str, Any]:
    """A newest sample as readers may use it: checked as the probe's answer was on write
    (:mod:`collector.metrics.stored`), a line of the wrong shape becoming a failure line."""
    problem = check_stored(sample)
    return sample if problem is None else bad_sample(sample, problem[:200])


class Store:
    """Reads and appends samples under one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.hosts_dir = self.data_dir / "hosts"
        #: host -> where this Store's last append of its samples went (a pass's own appends,
        #: which the rollup hook uses to know that no other line came in between).
        self.appended: dict[str, Appended] = {}

    # -- writing ---------------------------------------------------------------------------------
    def host_dir(self, host: str) -> Path:
        if not SAFE_NAME.match(host):
            raise ValueError(f"unsafe host name {host!r}")
        return self.hosts_dir / host

    def append(self, host: str, sample: dict[str, Any], *, line: bytes | None = None) -> Path:
        """Append one sample to its day file as one whole line (:func:`append_whole_lines`);
        ``line`` is the sample already encoded, when the caller had to encode it anyway."""
        path = self.host_dir(host) / f"{_day_of(sample['ts'])}.jsonl"
        line = encode_line(sample) if line is None else line  # given: encoded by the pass
        if len(line) > MAX_LINE_BYTES:
            raise SampleTooLarge(f"a sample of {len(line) >> 10} KiB is over the "
                                 f"{MAX_LINE_BYTES >> 10} KiB a line may hold")
        appended = append_whole_lines(path, line)
        if appended is not None:
            self.appended[host] = appended
        return path

    # -- listing ---------------------------------------------------------------------------------
    def hosts(self) -> list[str]:
        """Hosts that have data, whether or not they are still in the config."""
        try:
            return sorted(p.name for p in self.hosts_dir.iterdir()
                          if p.is_dir() and SAFE_NAME.match(p.name))
        except FileNotFoundError:
            return []

    def day_files(self, host: str) -> list[DayFile]:
        """A host's day files, oldest first; if a day exists both plain and gzipped, both."""
        try:
            entries = list(os.scandir(self.host_dir(host)))
        except FileNotFoundError:
            return []
        files = []
        for entry in entries:
            m = _DAY_FILE.match(entry.name)
            if m and entry.is_file(follow_symlinks=False):
                files.append(DayFile(date.fromisoformat(m.group(1)), Path(entry.path)))
        files.sort(key=lambda f: (f.day, not f.compressed))
        return files

    # -- reading ---------------------------------------------------------------------------------
    def latest(self, host: str) -> dict[str, Any] | None:
        """The newest readable sample of a host, reading only the end of its newest file.

        Checked as the probe's answer was on write (:mod:`collector.metrics.stored`): a line
        of the wrong shape comes back as the host's failure line, never as a good sample."""
        for day_file in reversed(self.day_files(host)):
            if day_file.compressed:
                sample = _last_valid(_read_lines(day_file.path))
            else:
                sample = _tail_sample(day_file.path)
            if sample is not None:
                return _checked(sample)
        return None

    def latest_good(self, host: str, max_bytes: int = 4 << 20) -> dict[str, Any] | None:
        """The newest good sample (``ok``) of a host, looked for in the last ``max_bytes`` of
        its two newest day files: what its disks were when it last answered, for a host whose
        last passes failed.  Failure lines are small, so that is days of them.  Checked as
        :meth:`latest` checks: a good line of the wrong shape is passed over.  Costly (up to
        2 x ``max_bytes`` read, or a whole ``.gz`` day): the dashboard caches it."""
        for day_file in list(reversed(self.day_files(host)))[:2]:
            try:
                lines = (_read_lines(day_file.path) if day_file.compressed
                         else tail_lines(day_file.path, max_bytes)[0])
            except FileNotFoundError:
                continue
            for line in reversed(lines):
                sample = _decode(line) if _GOOD in line else None
                if sample is not None and sample.get("ok") is True:
                    sample = _checked(sample)
                    if sample.get("ok") is True:
                        return sample
        return None

    def latest_in(self, host: str, path: Path) -> dict[str, Any] | None:
        """The newest readable sample of ``host`` when ``path`` is known to be its newest day
        file (a caller that keeps the listing, like the dashboard's cache): no directory
        listing; the other files are read only if that one holds no valid line."""
        sample = _last_valid(_read_lines(path)) if path.suffix == ".gz" else _tail_sample(path)
        return self.latest(host) if sample is None else _checked(sample)

    def latest_all(self, hosts: Iterable[str] | None = None) -> dict[str, dict[str, Any] | None]:
        names = list(hosts) if hosts is not None else self.hosts()
        return {name: self.latest(name) for name in names}

    def samples(self, host: str, start: datetime, end: datetime | None = None
                ) -> Iterator[dict[str, Any]]:
        """Samples with ``start <= ts <= end``, oldest first, opening only the days needed."""
        start_text = format_ts(start)
        end_text = format_ts(end) if end is not None else None
        first_day = start.astimezone(timezone.utc).date()
        last_day = end.astimezone(timezone.utc).date() if end is not None else None
        by_day: dict[date, list[Path]] = {}
        for day_file in self.day_files(host):
            if day_file.day < first_day or (last_day is not None and day_file.day > last_day):
                continue
            by_day.setdefault(day_file.day, []).append(day_file.path)
        for _day, paths in sorted(by_day.items()):
            for sample in _decode_lines(day_lines(paths)):
                ts = sample.get("ts")
                if not isinstance(ts, str) or ts < start_text:
                    continue
                if end_text is not None and ts > end_text:
                    continue
                yield sample

    def oldest_ts(self, host: str) -> str | None:
        """``ts`` of the host's oldest readable sample: the first line of its oldest day file
        (the next file when that one holds no valid line)."""
        for day_file in self.day_files(host):
            opener = gzip.open if day_file.compressed else open
            try:
                with opener(day_file.path, "rb") as fh:
                    for line in fh:
                        sample = _decode(line)
                        if sample is not None:
                            return str(sample["ts"])
            except (OSError, EOFError):  # pruned meanwhile, or a damaged archive
                continue
        return None

    def last_ok_ts(self, host: str) -> str | None:
        """``ts`` of the host's newest good sample, searching back through every day file.

        Costly for a host that has failed for weeks: the pass calls it only for a failure
        line whose predecessor predates ``last_ok`` (see ``passes.collect.note_last_ok``);
        from then on each failure line carries the answer forward."""
        for day_file in reversed(self.day_files(host)):
            for line in reversed(_read_lines(day_file.path)):
                if _GOOD not in line:  # most lines of a dead host: no decoding
                    continue
                sample = _decode(line)
                if sample is not None and sample.get("ok") is True:
                    return str(sample["ts"])
        return None

    def last_day_with_data(self, host: str) -> date | None:
        files = self.day_files(host)
        return files[-1].day if files else None


def day_lines(paths: list[Path]) -> list[bytes]:
    """The lines of one day, from its one file or from both its files, each line once.

    A day is both ``.jsonl.gz`` and ``.jsonl`` for a moment while prune swaps them (the two
    then hold the same lines), or for longer when the clock went back across days and the
    collector appended to a day already compressed (then they hold different lines, until
    prune merges them): either way every line is read, and read once.
    """
    if len(paths) == 1:
        return _read_lines(paths[0])
    lines: list[bytes] = []
    seen: set[bytes] = set()
    for path in paths:
        for line in _read_lines(path):
            if line not in seen:
                seen.add(line)
                lines.append(line)
    return lines


def _read_lines(path: Path) -> list[bytes]:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                try:
                    data = fh.read()
                except (EOFError, OSError, gzip.BadGzipFile):
                    return []
        else:
            data = path.read_bytes()
    except FileNotFoundError:
        return []
    return data.split(b"\n")


def _decode(line: bytes) -> dict[str, Any] | None:
    if not line.strip():
        return None
    try:
        value = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None  # a torn line from a killed writer, or damage: skip, never crash
    return value if isinstance(value, dict) and isinstance(value.get("ts"), str) else None


def _decode_lines(lines: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    for line in lines:
        sample = _decode(line)
        if sample is not None:
            yield sample


def _last_valid(lines: list[bytes]) -> dict[str, Any] | None:
    for line in reversed(lines):
        sample = _decode(line)
        if sample is not None:
            return sample
    return None


def tail_lines(path: Path, max_bytes: int) -> tuple[list[bytes], bool]:
    """The lines of the last ``max_bytes`` of ``path``, and whether the file is longer.

    Every "newest entry of an append-only log" reader starts here, so none reads a whole file.
    When the file was cut, a first piece that may be the middle of a line is dropped.  Raises
    FileNotFoundError.
    """
    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        start = max(0, size - max_bytes)
        fh.seek(start)
        lines = fh.read(size - start).split(b"\n")
    return (lines[1:], True) if start > 0 else (lines, False)


def _tail_sample(path: Path) -> dict[str, Any] | None:
    """Read the end in growing chunks until a complete, valid line is found."""
    chunk = _TAIL_CHUNK
    while True:
        try:
            lines, cut = tail_lines(path, chunk)
        except FileNotFoundError:
            return None
        sample = _last_valid(lines)
        if sample is not None or not cut:
            return sample
        chunk *= 4


def day_range(start: datetime, end: datetime) -> list[date]:
    first = start.astimezone(timezone.utc).date()
    last = end.astimezone(timezone.utc).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
