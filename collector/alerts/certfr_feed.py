"""The CERT-FR feed's body, parsed safely into :class:`FeedItem` records (pure, no I/O).

The body is untrusted: it is parsed with defusedxml (an entity bomb is refused), titles are
one line, links must be http(s), and descriptions are reduced to plain text (the feed
carries escaped HTML).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timezone
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlparse

from collector.times import format_ts

#: Items read from one body: a hostile feed of a million items is cut, not parsed whole.
MAX_ITEMS = 500
_MAX_TITLE = 300
_MAX_DESCRIPTION = 2000


class FeedError(Exception):
    """The feed could not be read or understood; the message is for the admin."""


@dataclass(frozen=True)
class FeedItem:
    id: str
    title: str
    link: str | None
    published: str | None
    description: str


def parse_feed(body: bytes) -> list[FeedItem]:
    """RSS 2.0 items; raises :class:`FeedError` on an entity bomb, bad XML or a non-RSS file."""
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException
    from defusedxml import ElementTree as SafeET

    try:
        root = SafeET.fromstring(body)
    except DefusedXmlException as exc:
        raise FeedError(f"refused: the feed declares XML entities or a DTD ({type(exc).__name__}"
                        "), a known attack on XML parsers") from None
    except ParseError as exc:
        raise FeedError(f"malformed XML: {exc}") from None
    channel = root.find("channel") if root.tag == "rss" else None
    if channel is None:
        raise FeedError(f"not an RSS feed (root element <{_text(root.tag)[:40]}>)")
    items = []
    for element in channel.findall("item")[:MAX_ITEMS]:
        item = _item(element)
        if item is not None:
            items.append(item)
    return items


def _item(element: Any) -> FeedItem | None:
    link = _safe_link(_child_text(element, "link"))
    identity = _child_text(element, "guid") or link
    if not identity:
        return None
    return FeedItem(
        id=identity[:500],
        title=_one_line(_child_text(element, "title"))[:_MAX_TITLE] or identity[:_MAX_TITLE],
        link=link,
        published=_rfc822_to_iso(_child_text(element, "pubDate")),
        description=html_to_text(_child_text(element, "description"))[:_MAX_DESCRIPTION],
    )


def _child_text(element: Any, name: str) -> str:
    child = element.find(name)
    return _text(child.text) if child is not None and child.text else ""


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _one_line(text: str) -> str:
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def _safe_link(text: str) -> str | None:
    """Only http(s) links reach a mail or the dashboard (no ``javascript:``)."""
    text = text.strip()
    if not text or any(c.isspace() or not c.isprintable() for c in text):
        return None
    return text if urlparse(text).scheme in ("http", "https") else None


def _rfc822_to_iso(text: str) -> str | None:
    if not text:
        return None
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return format_ts(moment)


class _TextOnly(HTMLParser):
    _HIDDEN = ("script", "style")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self._HIDDEN:
            self.hidden += 1
        elif tag in ("br", "p", "li", "div"):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN and self.hidden:
            self.hidden -= 1


def html_to_text(markup: str) -> str:
    """The feed's description is escaped HTML: keep the words, drop every tag."""
    parser = _TextOnly()
    parser.feed(markup)
    parser.close()
    return _one_line("".join(parser.parts))
