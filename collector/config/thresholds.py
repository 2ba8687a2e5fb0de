"""The threshold tables of ``hosts.toml`` (``[thresholds]`` and a host's ``thresholds``).

Levels of every configurable family of the metric registry, each inherited from the table
above it; per-item levels (``mounts``) and fixed items (pressure's resources); the names of a
family's levels (``warning_h`` for ``disk_full``) and whether lower is worse come from its
descriptor.  A mixin of :class:`TableReader`, so problems are collected with every other
problem of the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collector.config.model import Level, Thresholds
from collector.config.reader import TableReader, type_name
from collector.metrics.family import ThresholdSpec
from collector.metrics.registry import CONFIGURABLE, builtin_levels

_LEVEL_KEYS = ("warning", "critical", "for")


class ThresholdReader(TableReader):
    """Reads threshold tables; problems are collected, not raised (see :class:`TableReader`)."""

    def level(self, t: Any, name: str, inherited: Level, where: str,
              extra: tuple[str, ...] = (), spec: ThresholdSpec | None = None) -> Level:
        """One ``{ warning, critical, for }`` table (the family's own names for the levels,
        ``warning_h``); ``false`` switches a level off."""
        keys = spec.level_keys if spec is not None else _LEVEL_KEYS[:2]
        lower = spec is not None and spec.lower_is_worse
        if not isinstance(t, Mapping):
            example = (f"{keys[0]} = 24, {keys[1]} = 4" if lower else
                       f"{keys[0]} = 80, {keys[1]} = 95")
            self.problem(where, f"'{name}' must be a table like {{ {example} }}, not "
                                f"{type_name(t)}")
            return inherited
        w = f"{where}.{name}"
        self.unknown_keys(t, keys + ("for",) + extra, w)
        warning, critical = (self.limit(t, key, getattr(inherited, attr), w)
                             for key, attr in zip(keys, ("warning", "critical")))
        for_passes = self.get(t, "for", int, inherited.for_passes, w, minimum=1)
        if warning is not None and critical is not None:
            if lower and warning <= critical:
                self.problem(w, f"{keys[0]} ({warning:g}) must be above {keys[1]} "
                                f"({critical:g}): for {name}, the lower the worse")
            elif not lower and warning >= critical:
                self.problem(w, f"{keys[0]} ({warning:g}) must be below {keys[1]} "
                                f"({critical:g})")
        return Level(warning, critical, for_passes)

    def limit(self, t: Mapping[str, Any], key: str, inherited: float | None,
              where: str) -> float | None:
        if t.get(key) is False:
            return None  # "warning = false": this level is off
        if t.get(key) is True:
            self.problem(where, f"'{key}' must be a number, or false to switch it off")
            return inherited
        return self.get(t, key, float, inherited, where, minimum=0)

    def thresholds(self, t: Mapping[str, Any], parent: Thresholds | None,
                   where: str) -> Thresholds:
        """Levels of every configurable family (:mod:`collector.metrics.registry`), each
        inherited from ``parent`` (a host's from ``[thresholds]``), else the built-in ones."""
        self.unknown_keys(t, tuple(f.name for f in CONFIGURABLE), where)
        if parent is None:
            levels, items = builtin_levels()
        else:
            levels = dict(parent.levels)
            items = {name: dict(per_item) for name, per_item in parent.items.items()}
        for family in CONFIGURABLE:
            spec = family.thresholds
            if family.name in t and spec is not None:
                self.family_levels(t[family.name], family.name, spec, where, levels, items)
        return Thresholds(levels, items)

    def family_levels(self, t: Any, name: str, spec: ThresholdSpec, where: str,
                      levels: dict[str, Level], items: dict[str, dict[str, Level]]) -> None:
        """One family's table: its level and per-item ones (``mounts``), or, for a family of
        fixed items, a level table per item."""
        w = f"{where}.{name}"
        if spec.fixed_items:
            if not isinstance(t, Mapping):
                self.problem(where, f"'{name}' must be a table of "
                                    f"{', '.join(spec.fixed_items)} = {{ warning = ..., "
                                    f"critical = ... }}, not {type_name(t)}")
                return
            self.unknown_keys(t, tuple(spec.fixed_items), w)
            own = items.setdefault(name, {})
            for item in spec.fixed_items:
                if item in t:
                    own[item] = self.level(t[item], item, own.get(item, spec.default), w,
                                           spec=spec)
            return
        extra = (spec.item_key,) if spec.item_key else ()
        levels[name] = self.level(t, name, levels.get(name, spec.default), where, extra, spec)
        if not spec.item_key or not isinstance(t, Mapping) or spec.item_key not in t:
            return
        raw_items = t[spec.item_key]
        if not isinstance(raw_items, Mapping):
            self.problem(w, f"'{spec.item_key}' must be a table of item = {{ ... }}")
            return
        own = items.setdefault(name, {})
        for item, lt in raw_items.items():
            own[item] = self.level(lt, name, levels[name], f"{w}.{spec.item_key}[{item!r}]",
                                   spec=spec)
