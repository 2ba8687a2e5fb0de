"""Table cells and headings of the pages, in Python rather than Jinja macros.

Why not macros: the overview of 1,000 hosts has 10,000 cells, and a Jinja macro call costs
about 35 us where this costs a few; the page must render in 300 ms.  Every value goes through
``markupsafe.escape``: host data is text, never markup.  ``static/app.js`` builds the very same
cells when it refreshes a table (``fill`` and ``rebuild`` there): keep the two in step.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flask import url_for
from markupsafe import Markup, escape

from collector.metrics.registry import SUMMARIZED
from collector.metrics.values import at_path
from web import formats

#: Formats shown right-aligned with tabular figures (numbers).
NUMERIC = frozenset(("percent", "size", "rate", "number", "integer", "ago", "duration"))
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
         sortable: bool = False, sort: Any = None, item: str | None = None,
         mark: str | None = None, mark_level: str | None = None,
         since: str | None = None) -> Markup:
    """One ``<td>``: ``fmt`` names a format of :mod:`web.formats`, or status/level/check (a
    text badge) or hostlink (a link to the host's page); ``item`` (a mount point) follows the
    value as a label, and ``mark`` (another family's finding, "/var full in about 5 h") after
    it, at ``mark_level``; ``since`` is the time an "ago" cell counts from (else ``row.ts``)."""
    classes = (["num"] if fmt in NUMERIC else []) + ([f"level-{level}"] if level else [])
    attrs = f' class="{escape(" ".join(classes))}"' if classes else ""
    if sortable:
        key = sort if sort is not None else (value if value is not None else "")
        attrs += f' data-sort="{escape(_text(key))}"'
    ts = _field(row, "ts") if row is not None else None
    if fmt == "ago" and since is not None:
        ts = since
    if fmt == "ago" and ts:
        attrs += f' data-ts="{escape(_text(ts))}"'
    if fmt in _BADGES:
        content = badge(value, fmt)
        if fmt == "status" and _field(row, "silenced"):
            content += Markup(" ") + badge("silenced")
    elif fmt == "event":  # an alert history line: its event, and whether a silence held it
        content = formatted("text", value)
        if _field(row, "silenced"):
            content += Markup(' <span class="mount">silenced</span>')
    elif fmt == "when":
        content = when_content(value)
    elif fmt == "hostlink":
        content = (Markup(f'<a href="{escape(url_for("pages.host", name=value))}">'
                          f"{escape(_text(value))}</a>") if value else Markup(formats.DASH))
    else:
        content = formatted(fmt, value, item)
    if mark:
        content += Markup(f' <span class="mark level-{escape(mark_level or "ok")}">'
                          f"{escape(mark)}</span>")
    return Markup(f"<td{attrs}>{content}</td>")


def when_content(value: Any) -> Markup:
    """A time as "2026-11-21 22:41:00 UTC" that may wrap after the day, never inside it (a
    narrow column would otherwise break "2026-" from "11-21")."""
    day, sep, rest = formats.when(value).partition(" ")
    content = Markup('<span class="nobr">%s</span>') % day
    return content + (Markup(" ") + escape(rest) if sep else Markup(""))


def formatted(fmt: str, value: Any, item: str | None = None) -> Markup:
    """``value`` in a format of :mod:`web.formats`, its item (a mount) after it as a label."""
    content = escape(formats.FILTERS[fmt](value))
    if item and value is not None:
        content += Markup(f' <span class="mount">{escape(_text(item))}</span>')
    return content


def header(key: str, label: str, fmt: str = "text", level: str | None = None,
           sortable: bool = False, item: str | None = None, mark: str | None = None,
           mark_level: str | None = None, since: str | None = None) -> Markup:
    """A column heading; ``data-*`` tell ``app.js`` how to rebuild the column's cells
    (``since``: the key of the time an "ago" column counts from, else ``ts``)."""
    attrs = ' class="num"' if fmt in NUMERIC else ""
    attrs += f' data-key="{escape(key)}" data-format="{escape(fmt)}"'
    if level:
        attrs += f' data-level="{escape(level)}"'
    if item:
        attrs += f' data-item="{escape(item)}"'
    if mark:
        attrs += f' data-mark="{escape(mark)}" data-mark-level="{escape(mark_level or "")}"'
    if since:
        attrs += f' data-since="{escape(since)}"'
    text = escape(label)
    if sortable:
        text = Markup(f'<button type="button" class="sort">{text}</button>')
    return Markup(f'<th scope="col"{attrs}>{text}</th>')


#: The families with an overview column (``Summary.overview``), in registry order.
OVERVIEW = tuple(f for f in SUMMARIZED if f.summary is not None and f.summary.overview)


def overview_head() -> Markup:
    """The overview's column headings: status, host, last seen, a column per family that asks
    for one, alerts, why and tags."""
    heads = [header("status", "Status", "status", sortable=True),
             header("name", "Host", "hostlink", sortable=True),
             header("last_seen_age_s", "Last seen", "ago", sortable=True, since="last_seen"),
             SPARK_HEAD]
    for family in OVERVIEW:
        summary = family.summary
        assert summary is not None
        heads.append(header(family.name, summary.label, summary.format, f"levels.{family.name}",
                            sortable=True, item=summary.item_field, mark=summary.mark_field,
                            mark_level=f"levels.{summary.mark}" if summary.mark else None))
    heads += [header("alerts", "Alerts", "integer", sortable=True),
              header("reasons", "Why", "items"),
              header("tags", "Tags", "items", sortable=True)]
    return Markup("".join(heads))


#: The sparkline column's heading, its legend in the lines' colours (see app.css).
SPARK_HEAD = Markup('<th scope="col" data-key="last_hour" data-format="spark">Last hour '
                    '<span class="spark-key"><span class="key-cpu">CPU</span> '
                    '<span class="key-memory">mem</span></span></th>')
OVERVIEW_COLUMNS = 7 + len(OVERVIEW)


def host_row(h: Any, spark: Markup | None = None) -> Markup:
    """The overview's row of one host (a ``HostStatus``): one call from the template, not ten,
    since a call from Jinja costs more than the cell itself.  Columns as :func:`overview_head`;
    ``spark`` is the host's last hour (:mod:`web.sparklines`), already markup."""
    levels = h.levels
    family_cells = []
    for family in OVERVIEW:
        summary = family.summary
        assert summary is not None
        family_cells.append(cell(summary.format, h.values.get(family.name),
                                 level=levels.get(family.name), sortable=True,
                                 item=h.items.get(family.name) if summary.item_field else None,
                                 mark=h.marks.get(family.name),
                                 mark_level=levels.get(summary.mark) if summary.mark else None))
    return Markup("<tr>" + "".join((
        cell("status", h.status, h, sortable=True, sort=h.severity),
        cell("hostlink", h.name, sortable=True),
        cell("ago", h.seen_age_s, sortable=True, since=h.seen_ts),
        Markup('<td class="sparkline">') + (spark or Markup("")) + Markup("</td>"),
        *family_cells,
        cell("integer", h.alerts, sortable=True),
        cell("items", list(h.reasons)),
        cell("items", list(h.tags), sortable=True, sort=" ".join(h.tags)),
    )) + "</tr>")


_CODE_SPAN = re.compile(r"`([^`\n]+)`")


def code_spans(text: Any) -> Markup:
    """A message of ours with its `...` spans (a command to type) shown as code, the way the
    CLI and the logs write them; everything else escaped."""
    parts = _CODE_SPAN.split("" if text is None else _text(text))
    return Markup("").join(escape(part) if i % 2 == 0 else Markup("<code>%s</code>") % part
                           for i, part in enumerate(parts))


GLOBALS = {"badge": badge, "cell": cell, "header": header, "host_row": host_row,
           "overview_head": overview_head, "overview_columns": OVERVIEW_COLUMNS,
           "cell_content": formatted, "sample_value": at_path, "when_content": when_content}
