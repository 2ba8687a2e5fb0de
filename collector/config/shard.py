"""Which hosts a collector takes when several central boxes share one hosts.toml.

``[settings] shard = "K/N"`` (or ``--shard K/N``) makes this collector one of N: it takes the
hosts that rendezvous hashing (highest random weight) assigns to shard K.  Every box computes
the same assignment from the host names alone, with no coordination, so:

* while all boxes agree on N, every host belongs to exactly one shard (none is collected
  twice, none is missed);
* going from N to N + 1 shards moves only the hosts that the new shard wins, about 1/(N + 1)
  of them, and each moves *into* the new shard: no host moves between the old ones.

The weight of (shard k, host) is a keyed BLAKE2b digest of the pair, which is the same on every
machine and every Python version (``hash()`` is salted per process and would not be).  This
module is the one place that decides; the pass, the alert rules, the views and ``/metrics`` all
see only :attr:`collector.config.Config.enabled_hosts`, which it filters.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

#: More shards than this is a typo (10,000 hosts at 100 per box is 100 boxes).
MAX_SHARDS = 1000
_SHAPE = re.compile(r"\s*(\d{1,4})\s*/\s*(\d{1,4})\s*\Z")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count``, both counted from 1 as people say them ("2/3")."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, host_name: str) -> bool:
        return shard_of(host_name, self.count) == self.index


def parse_shard(text: str) -> Shard:
    """``"K/N"`` -> :class:`Shard`; ``ValueError`` saying what is wrong otherwise."""
    match = _SHAPE.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"a shard is written K/N, such as \"1/3\", not {text!r}")
    index, count = int(match.group(1)), int(match.group(2))
    if not 1 <= count <= MAX_SHARDS:
        raise ValueError(f"the number of shards must be between 1 and {MAX_SHARDS}, not {count}")
    if not 1 <= index <= count:
        raise ValueError(f"shard {index} of {count} does not exist: K must be between 1 and "
                         f"{count}")
    return Shard(index, count)


def weight(shard_index: int, host_name: str) -> int:
    """The pseudo-random weight of a host for one shard: a 64-bit integer, stable everywhere."""
    digest = hashlib.blake2b(host_name.encode("utf-8"), digest_size=8,
                             key=str(shard_index).encode("ascii"), person=b"osmon-shard")
    return int.from_bytes(digest.digest(), "big")


def shard_of(host_name: str, count: int) -> int:
    """The shard (1..count) that wins ``host_name``: the one with the highest weight."""
    best, best_weight = 1, -1
    for index in range(1, count + 1):
        candidate = weight(index, host_name)
        if candidate > best_weight:
            best, best_weight = index, candidate
    return best
