"""users: who is logged in (utmp), with terminal, origin and since when."""

from __future__ import annotations

from collections.abc import Iterator

from collector.metrics.exports import gauge_series
from collector.metrics.family import Column, Family, Point, Sample, Table
from collector.metrics.schema import array, record, string


def sessions(sample: Sample) -> Iterator[Point]:
    users = sample.get("users")
    if isinstance(users, list):
        yield (), float(len(users))

FAMILY = Family(
    name="users",
    doc="logged-in sessions from utmp: user, terminal, remote host, login time",
    section="users",
    schema=array(record({
        "name": string(64), "tty": string(64, nullable=True),
        "from": string(256, nullable=True), "since": string(32, nullable=True),
    })),
    table=Table("Logged-in users", "users", (
        Column("name", "User"), Column("tty", "Terminal"), Column("from", "From"),
        Column("since", "Since", "when")), "Nobody is logged in."),
    exported=(gauge_series("osmon_user_sessions", "Logged-in sessions (utmp).", sessions),),
)
