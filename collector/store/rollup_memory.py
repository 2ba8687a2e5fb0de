"""The open rollup buckets of each host, kept in memory by a long-lived process.

Why: closing a bucket used to mean reading back and decoding every raw sample in it (30 of
them at a 10 s interval, each a few KiB of JSON), for every host at the same pass, every 5
minutes: at 20 hosts a pass of 100 ms instead of 17, at 10,000 hosts more than the pass's
budget, so the rollups fell behind.  ``osmon run`` has seen every one of those samples as it
stored it: it adds each into its host's open buckets (:class:`rollup_buckets.Bucket`, the
same sums in the same order as from the file), and a bucket that closes becomes a record
ready to write, without reading anything.

The files stay the truth, and memory is only used where it is sure to hold what they hold:
a host's buckets count from the first sample this process stored after it started watching
it, and only while the sample file grew by nothing but its own appends
(:class:`samples.Appended`: each append must start where the last one ended, in the same
file, or in a new file begun at 0 with the old one as it was left).  Anything else (a sample
appended by hand with ``osmon collect``, a restore, a repair, a new day after a gap, a
sample older than its predecessor) makes it start again from that sample: buckets that began
before are written from the files, as they always were (:func:`rollup.catch_up`).

Nothing is kept for a host before its second pass in the process, so a one-pass process
(cron's ``osmon collect``) pays nothing; but for the first sample of a day file, which no
sample of its buckets can precede.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from collector.store.rollup_buckets import Bucket, point_of
from collector.store.samples import Appended


class OpenBuckets:
    """One host's open buckets and the closed ones not written yet."""

    def __init__(self, since: float, appended: Appended) -> None:
        #: Buckets starting after this time were seen whole.
        self.since = since
        self.appended = appended
        self.open: dict[str, Bucket] = {}
        #: res -> (start, record) of closed buckets, oldest first, until written.
        self.ready: dict[str, list[tuple[float, dict[str, Any]]]] = {}
        #: res -> end of the range last handed out: buckets before it are no longer here.
        self.taken_to: dict[str, float] = {}

    def serves(self, res: str, first: float) -> bool:
        """True when every bucket of ``res`` starting at ``first`` or later that has closed
        is here: seen whole, and not handed out already (a file that lost its last records,
        cut by a crash, is written again from the raw samples)."""
        return first > self.since and first >= self.taken_to.get(res, first)

    def take(self, res: str, first: float, limit: float) -> list[dict[str, Any]]:
        """The ready records of buckets starting in ``[first, limit)``, handed out once;
        older ones are dropped."""
        ready = self.ready.get(res, [])
        self.ready[res] = [(start, record) for start, record in ready if start >= limit]
        self.taken_to[res] = max(limit, self.taken_to.get(res, limit))
        return [record for start, record in ready if first <= start < limit]


#: (data dir, host) -> that host's open buckets; a host only seen once maps to None.
_hosts: dict[tuple[str, str], OpenBuckets | None] = {}


def feed(data_dir: Path, host: str, sample: Mapping[str, Any], appended: Appended | None,
         resolutions: Mapping[str, int]) -> OpenBuckets | None:
    """Add the sample a pass has just stored for ``host`` into its open buckets; the host's
    buckets, or None while memory cannot be trusted for it (yet)."""
    key = (str(data_dir), host)
    if appended is None or not isinstance(sample, Mapping):  # nothing can be vouched for
        _hosts.pop(key, None)
        return None
    buckets = _hosts.get(key)
    fresh_day = buckets is None and _begins_its_day(appended)  # nothing before it in its buckets
    if key not in _hosts and not fresh_day:
        _hosts[key] = None  # first sight: from the next sample on
        return None
    point = point_of(sample)
    if point is None:
        _hosts[key] = None
        return None
    if fresh_day:
        buckets = _hosts[key] = OpenBuckets(-math.inf, appended)
    elif buckets is None or not _follows(buckets.appended, appended) or any(
            point.t < bucket.start for bucket in buckets.open.values()):
        buckets = _hosts[key] = OpenBuckets(point.t, appended)
    buckets.appended = appended
    for res, secs in resolutions.items():
        start = point.t - point.t % secs
        bucket = buckets.open.get(res)
        if bucket is not None and bucket.start != start:
            if bucket.start > buckets.since:
                buckets.ready.setdefault(res, []).append((bucket.start, bucket.record()))
            bucket = None
        if bucket is None:
            bucket = buckets.open[res] = Bucket(start)
        bucket.add(point)
    return buckets


def _begins_its_day(appended: Appended) -> bool:
    """True when the sample is the first of its day (its file began with it, and the day was
    not compressed already): every bucket it falls in holds nothing before it."""
    return appended.start == 0 and not os.path.exists(f"{appended.path}.gz")


def _follows(last: Appended, now: Appended) -> bool:
    """True when nothing but ``now`` was appended to the samples since ``last``."""
    if now.path == last.path:
        return now.inode == last.inode and now.start == last.end
    if now.start != 0:
        return False
    try:
        stat = os.stat(last.path)
    except OSError:
        return False
    return stat.st_ino == last.inode and stat.st_size == last.end
