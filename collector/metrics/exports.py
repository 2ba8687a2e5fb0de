"""Building blocks for a family's exported series (:class:`collector.metrics.family.Exported`).

Most series are one field of a section (``memory.total``) or one field of each item of a list
(``disks[].total`` per mount), scaled to a base unit; these helpers make them one line each in
the family modules.  Like :mod:`collector.metrics.values`, they read samples that may hold
anything (an old line, a hand edit) and skip what is not a finite number or a string label.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from collector.metrics.family import COUNTER, GAUGE, Exported, Point, Sample
from collector.metrics.values import items, num, section

Points = Callable[[Sample], Iterator[Point]]


def field(key: str, name: str, scale: float = 1.0) -> Points:
    """One value: ``sample[key][name]`` times ``scale``."""
    def points(sample: Sample) -> Iterator[Point]:
        value = num(section(sample, key).get(name))
        if value is not None:
            yield (), value * scale
    return points


def per_item(key: str, labels: Mapping[str, str], name: str, scale: float = 1.0) -> Points:
    """One value per item of the list ``sample[key]``: ``item[name]`` times ``scale``, labelled
    with the item's fields (``labels`` maps label -> field, in the series' label order).  An
    item whose label fields are not strings is skipped."""
    fields = tuple(labels.values())

    def points(sample: Sample) -> Iterator[Point]:
        for item in items(sample, key):
            number = num(item.get(name))
            if number is None:
                continue
            values = tuple(map(item.get, fields))
            for value in values:
                if not isinstance(value, str):
                    break
            else:
                yield values, number * scale
    return points


def gauge_series(name: str, help_text: str, points: Points,
                 labels: tuple[str, ...] = ()) -> Exported:
    return Exported(name, GAUGE, help_text, points, labels)


def counter_series(name: str, help_text: str, points: Points,
                   labels: tuple[str, ...] = ()) -> Exported:
    return Exported(name, COUNTER, help_text, points, labels)
