"""The field checks of the schema gate: small objects that clean one untrusted value each.

Every metric family declares the shape of its section of the probe's answer with these
(see :mod:`collector.metrics.families`); :mod:`collector.metrics.gate` runs them on what a
host sent.  A check is called as ``check(value, path)`` and returns a cleaned copy, or raises
:class:`InvalidProbeOutput` naming the offending path.  Each also *describes* itself
(``rows(path)``), so the sample schema in ``docs/architecture.md`` is generated from the very
objects that enforce it and cannot drift from them.

What the checks enforce, and why:

- a number is a finite int or float, never a bool, within its bounds; counters fit a u64;
- a string is truncated to its cap, not refused (a long command line is normal, a 10 MB one
  is cut), and cleaned: control characters and lone surrogates become U+FFFD, since they make
  SVG charts ill-formed XML, reach plain-text mail and terminals, and a lone surrogate cannot
  even be stored as UTF-8;
- a list is bounded (a host with 200,000 mounts must not cost the collector its memory);
- a record keeps only the keys it declares: nothing unexpected reaches the stored log.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

MAX_ITEMS = 4096
MAX_COUNTER = 2**64  # kernel counters are u64
PID_DIGITS = 10  # pid_max is at most 2**22 (7 digits)


class InvalidProbeOutput(ValueError):
    """Probe output with the wrong shape; `reason` names the offending path."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


#: One row of the generated schema: (dotted path, what the value is, its unit).
Row = tuple[str, str, str]


class Where:
    """Where a value sits in the answer (``parent.key`` or ``parent[index]``), made only for a
    message: a record or a list checks its values with its own path, and only when one fails
    checks it again with this one, so the message names the value (the checks are pure).
    Formatting the path of each of a sample's several hundred values cost more than checking
    them."""

    __slots__ = ("parent", "key")

    def __init__(self, parent: Any, key: str | int) -> None:
        self.parent, self.key = parent, key

    def __str__(self) -> str:
        if isinstance(self.key, int):
            return f"{self.parent}[{self.key}]"
        return f"{self.parent}.{self.key}"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


class Check:
    """Base of every field check: clean one value, and say what it accepts.

    ``path`` (a str, or a :class:`Where` that formats to one) only ever goes into messages.
    """

    nullable = False
    unit = ""

    def __call__(self, value: Any, path: Any) -> Any:
        if value is None and self.nullable:
            return None
        return self.clean(value, path)

    def clean(self, value: Any, path: Any) -> Any:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def rows(self, path: str) -> list[Row]:
        text = self.describe() + (" or null" if self.nullable else "")
        return [(path, text, self.unit)]


def _bound(value: float | None) -> str:
    if value is None:
        return ""
    if value == MAX_COUNTER:
        return "2^64"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


class Number(Check):
    """A finite int or float (never bool) within [low, high]; ``integer`` demands an int."""

    def __init__(self, low: float | None, high: float | None, nullable: bool, integer: bool,
                 unit: str) -> None:
        self.low, self.high, self.nullable, self.integer, self.unit = (
            low, high, nullable, integer, unit)

    def clean(self, value: Any, path: Any) -> Any:
        kind = type(value)  # what JSON decodes: an exact int, or a finite float (x - x == 0)
        if kind is not int and (kind is not float or self.integer or value - value != 0.0):
            value = self._not_int(value, path)
        if ((self.low is not None and value < self.low)
                or (self.high is not None and value > self.high)):
            raise InvalidProbeOutput(f"{path}: {value!r} is outside [{self.low}, {self.high}]")
        return value

    def _not_int(self, value: Any, path: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidProbeOutput(f"{path}: expected a number, got {type(value).__name__}")
        if isinstance(value, float):
            if not math.isfinite(value):
                raise InvalidProbeOutput(f"{path}: not a finite number")
            if self.integer:
                if not value.is_integer():
                    raise InvalidProbeOutput(f"{path}: expected an integer")
                value = int(value)
        return value

    def describe(self) -> str:
        kind = "integer" if self.integer else "number"
        if self.low is not None and self.high is not None:
            return f"{kind} {_bound(self.low)}..{_bound(self.high)}"
        if self.low is not None:
            return f"{kind} >= {_bound(self.low)}"
        return kind


def number(low: float | None = 0.0, high: float | None = None, *, nullable: bool = False,
           integer: bool = False, unit: str = "") -> Number:
    return Number(low, high, nullable, integer, unit)


def counter(*, nullable: bool = False, unit: str = "") -> Number:
    """A non-negative integer that fits a u64 (bytes, packets, pids)."""
    return number(0, MAX_COUNTER, nullable=nullable, integer=True, unit=unit)


def percent(*, nullable: bool = False) -> Number:
    return number(0.0, 100.0, nullable=nullable, unit="%")


#: Control characters (but tab, newline and carriage return) and lone surrogates.
_UNSAFE_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def clean_text(value: str, cap: int) -> str:
    """``value`` cut to ``cap`` characters, each unsafe character replaced by U+FFFD."""
    if len(value) <= cap and value.isascii() and value.isprintable():
        return value  # the usual text: nothing to cut or replace, no pattern to run
    return _UNSAFE_CHARS.sub("\ufffd", value[:cap])


class Text(Check):
    """A str, truncated to ``cap`` characters and cleaned (:func:`clean_text`)."""

    def __init__(self, cap: int, nullable: bool) -> None:
        self.cap, self.nullable = cap, nullable

    def clean(self, value: Any, path: Any) -> Any:
        if not isinstance(value, str):
            raise InvalidProbeOutput(f"{path}: expected a string, got {type(value).__name__}")
        return clean_text(value, self.cap)

    def describe(self) -> str:
        return f"string (cut at {self.cap})"


def string(cap: int = 256, *, nullable: bool = False) -> Text:
    return Text(cap, nullable)


class ExactText(Check):
    """A str of at most ``cap`` characters, refused (not cut) when longer: it is compared."""

    def __init__(self, cap: int, nullable: bool) -> None:
        self.cap, self.nullable = cap, nullable

    def clean(self, value: Any, path: Any) -> Any:
        if not isinstance(value, str) or len(value) > self.cap:
            raise InvalidProbeOutput(f"{path}: expected a string of at most {self.cap} "
                                     "characters")
        return value

    def describe(self) -> str:
        return f"string of at most {self.cap}"


def exact_string(cap: int, *, nullable: bool = False) -> ExactText:
    return ExactText(cap, nullable)


class OneOf(Check):
    def __init__(self, choices: tuple[str, ...]) -> None:
        self.choices = choices

    def clean(self, value: Any, path: Any) -> Any:
        if not isinstance(value, str) or value not in self.choices:
            raise InvalidProbeOutput(f"{path}: expected one of {', '.join(self.choices)}")
        return value

    def describe(self) -> str:
        return "one of " + ", ".join(f'"{c}"' for c in self.choices)


def one_of(choices: tuple[str, ...]) -> OneOf:
    return OneOf(choices)


class Array(Check):
    """A list of ``item``, at most ``max_items`` long (exactly ``length`` when given)."""

    def __init__(self, item: Check, max_items: int, length: int | None, nullable: bool) -> None:
        self.item, self.max_items, self.length, self.nullable = item, max_items, length, nullable

    def clean(self, value: Any, path: Any) -> Any:
        if not isinstance(value, list):
            raise InvalidProbeOutput(f"{path}: expected a list, got {type(value).__name__}")
        if len(value) > self.max_items:
            raise InvalidProbeOutput(f"{path}: {len(value)} items, at most {self.max_items} "
                                     "allowed")
        if self.length is not None and len(value) != self.length:
            raise InvalidProbeOutput(f"{path}: expected {self.length} items, got {len(value)}")
        check = self.item.__call__ if self.item.nullable else self.item.clean
        try:
            return [check(element, path) for element in value]
        except InvalidProbeOutput:
            for index, element in enumerate(value):  # again, to say which item (pure checks)
                check(element, Where(path, index))
            raise

    def describe(self) -> str:
        if self.length is not None:
            return f"list of {self.length}"
        return f"list (at most {self.max_items})"

    def rows(self, path: str) -> list[Row]:
        inner = self.item.rows(f"{path}[]")
        if len(inner) == 1 and not isinstance(self.item, Record):
            text = f"{self.describe()} of: {inner[0][1]}"
            return [(path, text + (" (the list may be null)" if self.nullable else ""),
                     inner[0][2])]
        return super().rows(path) + inner


def array(item: Check, max_items: int = MAX_ITEMS, *, length: int | None = None,
          nullable: bool = False) -> Array:
    return Array(item, max_items, length, nullable)


#: What ``dict.get`` gives for a key that is not there (one lookup, not two).
_ABSENT = object()


def _in_line(check: Check) -> tuple[float, float, bool] | None:
    """``(low, high, floats too)`` of a :class:`Number` field, which :class:`Record` checks in
    line when the value is a plain number within bounds (as it does a short printable ASCII
    string for a :class:`Text` field, up to its ``cap``): most of a probe's answer, and a call
    per value was a third of the gate's time.  Anything else goes to ``check.clean``, which
    says what is wrong."""
    if type(check) is not Number:
        return None
    low = -math.inf if check.low is None else check.low
    high = math.inf if check.high is None else check.high
    return (low, high, not check.integer)


class Record(Check):
    """An object with the given fields (all required but ``optional``); other keys dropped."""

    def __init__(self, fields: Mapping[str, Check], optional: tuple[str, ...],
                 nullable: bool) -> None:
        self.fields, self.optional, self.nullable = dict(fields), optional, nullable
        self._plan = tuple((key, check.clean, check.nullable, key in optional,
                            _in_line(check), check.cap if type(check) is Text else -1)
                           for key, check in self.fields.items())

    def clean(self, value: Any, path: Any) -> Any:
        if not isinstance(value, dict):
            raise InvalidProbeOutput(f"{path}: expected an object, got {type(value).__name__}")
        cleaned = {}
        for key, clean, nullable, optional, bounds, cap in self._plan:
            item = value.get(key, _ABSENT)
            if item is _ABSENT:
                if optional:
                    continue
                raise InvalidProbeOutput(f"{path}.{key}: missing")
            if item is None and nullable:
                cleaned[key] = None
                continue
            if bounds is not None:  # Number.clean's usual case, without the call
                kind = type(item)
                if (kind is int or kind is float and bounds[2] and item - item == 0.0) \
                        and bounds[0] <= item <= bounds[1]:
                    cleaned[key] = item
                    continue
            elif type(item) is str and len(item) <= cap and item.isascii() \
                    and item.isprintable():  # Text.clean's usual case, likewise
                cleaned[key] = item
                continue
            try:
                cleaned[key] = clean(item, path)
            except InvalidProbeOutput:
                clean(item, Where(path, key))  # again, to say where (the checks are pure)
                raise
        return cleaned

    def describe(self) -> str:
        return "object"

    def rows(self, path: str) -> list[Row]:
        out = super().rows(path)
        for key, field_check in self.fields.items():
            rows = field_check.rows(f"{path}.{key}")
            if key in self.optional:
                first = rows[0]
                rows[0] = (first[0], first[1] + " (optional)", first[2])
            out += rows
        return out


def record(fields: Mapping[str, Check], *, optional: tuple[str, ...] = (),
           nullable: bool = False) -> Record:
    return Record(fields, optional, nullable)


class StringMap(Check):
    """An object of str -> str (errors), values truncated, at most ``max_items`` entries."""

    def __init__(self, max_items: int, key_cap: int, value_cap: int) -> None:
        self.max_items, self.key_cap, self.value = max_items, key_cap, string(value_cap)

    def clean(self, value: Any, path: Any) -> Any:
        if not isinstance(value, dict):
            raise InvalidProbeOutput(f"{path}: expected an object, got {type(value).__name__}")
        if len(value) > self.max_items:
            raise InvalidProbeOutput(f"{path}: {len(value)} entries, at most {self.max_items}")
        return {clean_text(key, self.key_cap): self.value(item, Where(path, clean_text(key, 40)))
                for key, item in value.items()}

    def describe(self) -> str:
        return f"object of strings (at most {self.max_items})"


def string_map(max_items: int, key_cap: int, value_cap: int) -> StringMap:
    return StringMap(max_items, key_cap, value_cap)


class BoundedObject(Check):
    """Any JSON object whose compact encoding is at most ``max_bytes`` (passed through)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes

    def clean(self, value: Any, path: Any) -> Any:
        if not isinstance(value, dict):
            raise InvalidProbeOutput(f"{path}: expected an object, got {type(value).__name__}")
        try:
            size = len(json.dumps(value, separators=(",", ":"), allow_nan=False))
        except (ValueError, TypeError, RecursionError) as exc:
            raise InvalidProbeOutput(f"{path}: not plain JSON ({exc})") from None
        if size > self.max_bytes:
            raise InvalidProbeOutput(f"{path}: {size} bytes, at most {self.max_bytes}")
        return value

    def describe(self) -> str:
        return f"object of at most {self.max_bytes >> 10} KiB, checked by its family"


def bounded_object(max_bytes: int) -> BoundedObject:
    return BoundedObject(max_bytes)


class PidTicks(Check):
    """{"<pid>": [starttime, ticks]}: digit keys, two u64 ints each, nothing else.

    Strict (a bad entry refuses the answer rather than being skipped): this map is sent back
    to the host next pass, so only what the probe itself writes may go through.
    """

    def __init__(self, max_items: int) -> None:
        self.max_items = max_items

    def clean(self, value: Any, path: Any) -> Any:
        if not isinstance(value, dict):
            raise InvalidProbeOutput(f"{path}: expected an object, got {type(value).__name__}")
        if len(value) > self.max_items:
            raise InvalidProbeOutput(f"{path}: {len(value)} entries, at most {self.max_items}")
        for key, item in value.items():
            if not (0 < len(key) <= PID_DIGITS and key.isascii() and key.isdigit()):
                raise InvalidProbeOutput(f"{path}: a key is not a pid")
            if (type(item) is not list or len(item) != 2
                    or type(item[0]) is not int or type(item[1]) is not int
                    or not 0 <= item[0] <= MAX_COUNTER or not 0 <= item[1] <= MAX_COUNTER):
                raise InvalidProbeOutput(f"{path}.{key}: expected [starttime, ticks] integers")
        return value

    def describe(self) -> str:
        return f'object "<pid>": [starttime, ticks] (at most {self.max_items})'


def pid_ticks(max_items: int) -> PidTicks:
    return PidTicks(max_items)
