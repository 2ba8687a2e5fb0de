"""Table cells and headings of the pages, in Python rather than Jinja macros.

Why not macros: the overview of 1,000 hosts has 10,000 cells, and a Jinja macro call costs
about 35 us where this costs a few; the page must render in 300 ms.  Every value goes through
``markupsafe.escape``: host data is text, never markup.  ``static/app.js`` builds the very same
cells when it refreshes a table (``fill`` and ``rebuild`` there): keep the two in step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import url_for
from markupsafe import Markup, escape

from web import formats

#: Formats shown right-aligned with tabular figures (numbers).
NUMERIC = frozenset(("percent", "size", "rate", "number", "integer", "ago", "duration", "disk"))
_BADGES = frozenset(("status", "level", "check"))


def _field(row: Any, key: str) -> Any:
    """``row.key`` for a status object, ``row[key]`` for a dict (what Jinja's ``row.key`` does)."""
    if isinstance(row, Mapping):
        return row.get(key)
    return getattr(row, key, None)


def _text(value: Any) -> str:
    """A value as Jinja's ``{{ value }}`` prints it (None is "None", not "")."""
    return value if isinstance(value, str) else str(value)


def badge(value: Any, kind: str = "status") -> Markup:
    text = escape(_text(value))
    return Markup(f'<span class="badge {escape(kind)}-{escape(_text(value).lower())}">'
                  f"{text}</span>")


def cell(fmt: str, value: Any, row: Any = None, level: str | None = None,
         sortable: bool = False, sort: Any = None) -> Markup:
    """One ``<td>``: ``fmt`` names a format of :mod:`web.formats`, or status/level/check (a
    text badge), hostlink (a link to the host's page) or disk (percent and mount point)."""
    classes = (["num"] if fmt in NUMERIC else []) + ([f"level-{level}"] if level else [])
    attrs = f' class="{escape(" ".join(classes))}"' if classes else ""
    if sortable:
        key = sort if sort is not None else (value if value is not None else "")
        attrs += f' data-sort="{escape(_text(key))}"'
    ts = _field(row, "ts") if row is not None else None
    if fmt == "ago" and ts:
        attrs += f' data-ts="{escape(_text(ts))}"'
    if fmt in _BADGES:
        content = badge(value, fmt)
    elif fmt == "hostlink":
        content = (Markup(f'<a href="{escape(url_for("pages.host", name=value))}">'
                          f"{escape(_text(value))}</a>") if value else Markup(formats.DASH))
    elif fmt == "disk":
        disk = _field(row, "disk") if row is not None else None
        mount = _field(row, "disk_mount") if row is not None else None
        content = escape(formats.percent(disk))
        if mount:
            content += Markup(f' <span class="mount">{escape(_text(mount))}</span>')
    else:
        content = escape(formats.FILTERS[fmt](value))
    return Markup(f"<td{attrs}>{content}</td>")


def header(key: str, label: str, fmt: str = "text", level: str | None = None,
           sortable: bool = False) -> Markup:
    """A column heading; ``data-*`` tell ``app.js`` how to rebuild the column's cells."""
    attrs = ' class="num"' if fmt in NUMERIC else ""
    attrs += f' data-key="{escape(key)}" data-format="{escape(fmt)}"'
    if level:
        attrs += f' data-level="{escape(level)}"'
    text = escape(label)
    if sortable:
        text = Markup(f'<button type="button" class="sort">{text}</button>')
    return Markup(f'<th scope="col"{attrs}>{text}</th>')


def host_row(h: Any) -> Markup:
    """The overview's row of one host (a ``HostStatus``): one call from the template, not ten,
    since a call from Jinja costs more than the cell itself.  Columns as overview.html's head."""
    levels = h.levels
    return Markup("<tr>" + "".join((
        cell("status", h.status, sortable=True, sort=h.severity),
        cell("hostlink", h.name, sortable=True),
        cell("ago", h.age_s, h, sortable=True),
        cell("percent", h.cpu, level=levels.get("cpu"), sortable=True),
        cell("percent", h.memory, level=levels.get("memory"), sortable=True),
        cell("disk", h.disk, h, level=levels.get("disk"), sortable=True),
        cell("number", h.load, level=levels.get("load"), sortable=True),
        cell("integer", h.alerts, sortable=True),
        cell("items", list(h.reasons)),
        cell("items", list(h.tags), sortable=True, sort=" ".join(h.tags)),
    )) + "</tr>")


GLOBALS = {"badge": badge, "cell": cell, "header": header, "host_row": host_row}
