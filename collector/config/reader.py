"""Reading TOML tables with every problem collected, each naming the file, table and key.

An admin fixing a new inventory should not have to run ``osmon check`` once per typo: the
reader records a problem and goes on with the default, and the parser reports them all.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: A bearer token shorter than this could be guessed by a scraper trying.
MIN_TOKEN_CHARS = 16


class TableReader:
    """Typed access to TOML tables; problems are collected in :attr:`problems`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.base = path.resolve().parent
        self.problems: list[str] = []

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{self.path}: {where}: {message}")

    def table(self, doc: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
        value = doc.get(key, {})
        if not isinstance(value, Mapping):
            self.problem(where, f"'{key}' must be a table, not {type_name(value)}")
            return {}
        return value

    def unknown_keys(self, table: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
        for key in table:
            if key not in allowed:
                guess = difflib.get_close_matches(key, allowed, n=1)
                hint = f" (did you mean '{guess[0]}'?)" if guess else ""
                self.problem(where, f"unknown key '{key}'{hint}")

    def get(self, table: Mapping[str, Any], key: str, kind: type | tuple[type, ...],
            default: Any, where: str, *, minimum: float | None = None,
            maximum: float | None = None) -> Any:
        if key not in table:
            return default
        value = table[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # TOML booleans are ints in Python: do not accept `port = true`.
        if isinstance(value, bool) and bool not in kinds:
            ok = False
        elif float in kinds and isinstance(value, int) and not isinstance(value, bool):
            ok = True
            value = float(value)
        else:
            ok = isinstance(value, kinds)
        if not ok:
            expected = " or ".join(_KIND_NAMES.get(k, k.__name__) for k in kinds)
            self.problem(where, f"'{key}' must be {expected}, not {type_name(value)} "
                                f"({value!r})")
            return default
        if minimum is not None and value < minimum:
            self.problem(where, f"'{key}' must be at least {number_text(minimum)}, not {value!r}")
            return default
        if maximum is not None and value > maximum:
            self.problem(where, f"'{key}' must be at most {number_text(maximum)}, not {value!r}")
            return default
        return value

    def path_value(self, table: Mapping[str, Any], key: str, default: str | None,
                   where: str) -> Path | None:
        value = self.get(table, key, str, default, where)
        if value is None or value == "":
            return None
        expanded = Path(os.path.expanduser(value))
        return expanded if expanded.is_absolute() else self.base / expanded

    def str_list(self, table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
        value = table.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(where, f"'{key}' must be a list of strings")
            return ()
        return tuple(value)

    def choice(self, table: Mapping[str, Any], key: str, choices: tuple[str, ...], default: str,
               where: str) -> str:
        value = self.get(table, key, str, default, where)
        if value not in choices:
            self.problem(where, f"'{key}' must be one of {', '.join(choices)}, not {value!r}")
            return default
        return value

    def check_token_file(self, path: Path, where: str) -> None:
        """A token file must exist and hold a token long enough not to be guessed (its value
        is read again when a scraper asks, never kept in the config)."""
        try:
            token = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            self.problem(where, f"'metrics_token_file' names {path}, which cannot be read "
                                f"({reason})")
            return
        if len(token) < MIN_TOKEN_CHARS or any(ch.isspace() for ch in token):
            self.problem(where, f"'metrics_token_file' ({path}) must hold one token of at least "
                                f"{MIN_TOKEN_CHARS} characters without spaces (for example the "
                                "output of `openssl rand -hex 32`)")

    def networks(self, t: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
        """A list of IP addresses or networks ("10.0.0.0/8"), normalised."""
        found = []
        for value in self.str_list(t, key, where):
            try:
                found.append(str(ipaddress.ip_network(value.strip(), strict=False)))
            except ValueError:
                self.problem(where, f"'{key}' holds {value!r}, which is not an IP address or "
                                    "network (like \"127.0.0.1\" or \"10.0.0.0/8\")")
        return tuple(found)


_KIND_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def type_name(value: Any) -> str:
    for kind, label in ((bool, "a boolean"), (str, "a string"), (int, "an integer"),
                        (float, "a number"), (list, "an array"), (Mapping, "a table")):
        if isinstance(value, kind):
            return label
    return type(value).__name__


def number_text(value: float) -> str:
    """``1048576``, not ``1.04858e+06``: a limit is quoted so the admin can copy it."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
