"""users: who is logged in (utmp), with terminal, origin and since when."""

from __future__ import annotations

from collector.metrics.family import Column, Family, Table
from collector.metrics.schema import array, record, string

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
)
