"""The sample schema and the default thresholds as Markdown, generated from the registry.

``docs/architecture.md`` holds this text between its ``generated:schema`` markers; a test
compares the two, so the document cannot drift from the checks that enforce it.  After
changing a family: ``python -m collector.metrics.docs --write docs/architecture.md``.
"""

from __future__ import annotations

from collector.metrics.family import Family, Level
from collector.metrics.registry import FAMILIES, SECTIONS

BEGIN = "<!-- generated:schema (python -m collector.metrics.docs) -->"
END = "<!-- end of generated:schema -->"


def _level(level: Level, keys: tuple[str, str] = ("warning", "critical")) -> str:
    def one(value: float | None) -> str:
        return "off" if value is None else f"{value:g}"
    return f"{keys[0]} {one(level.warning)}, {keys[1]} {one(level.critical)}, " \
           f"for {level.for_passes} pass{'es' if level.for_passes != 1 else ''}"


def _thresholds(family: Family) -> str:
    spec = family.thresholds
    if spec is None:
        return "none"
    if not spec.configurable:
        return f"fixed: {_level(spec.default)}"
    if spec.fixed_items:
        text = "; ".join(f"`{item}`: {_level(level)}" for item, level in spec.fixed_items.items())
    else:
        text = _level(spec.default, spec.level_keys)
        if spec.item_key:
            text += f"; per item under `{spec.item_key}`"
    return text + (f" ({spec.note})" if spec.note else "")


def schema_markdown() -> str:
    out = ["| family | section | what | chart | thresholds (built-in) |",
           "| --- | --- | --- | --- | --- |"]
    for family in FAMILIES:
        chart = (f"`{family.name}`" if family.chart is not None else
                 f"`{family.chart_prefix}<name>`" if family.chart_prefix else "-")
        section = f"`{family.section}`" if family.section else f"(in `{family.within}`)"
        optional = " (optional)" if family.optional else ""
        out.append(f"| `{family.name}` | {section}{optional} | {family.doc} | {chart} | "
                   f"{_thresholds(family)} |")
    out += ["", "Fields of each section as stored (lists hold at most the number given; "
            "strings longer than their cap are cut, not refused).  \"probe\" marks what the "
            "schema gate checks in the probe's answer, \"derived\" what the collector adds:",
            "", "| field | value | unit | from |", "| --- | --- | --- | --- |"]
    for path, text, unit, origin in stored_rows():
        out.append(f"| `{path}` | {text} | {unit} | {origin} |")
    return "\n".join(out) + "\n"


def stored_rows() -> list[tuple[str, str, str, str]]:
    """(path, value, unit, "probe" or "derived") of every field a stored sample may hold."""
    rows = []
    for name, family in SECTIONS.items():
        if family.schema is not None:
            for path, text, unit in family.schema.rows(name):
                if not any(path == gone or path.startswith((gone + ".", gone + "["))
                           for gone in family.not_stored):
                    rows.append((path, text, unit, "probe"))
        rows += [(path, text, unit, "derived") for path, text, unit in family.stored]
    return rows


def generated_block() -> str:
    return f"{BEGIN}\n{schema_markdown()}{END}\n"


def replace_block(document: str) -> str:
    """``document`` with the text between the markers regenerated."""
    start, end = document.index(BEGIN), document.index(END) + len(END) + 1
    return document[:start] + generated_block() + document[end:]


if __name__ == "__main__":
    import sys
    from pathlib import Path

    if sys.argv[1:2] == ["--write"]:
        target = Path(sys.argv[2])
        target.write_text(replace_block(target.read_text(encoding="utf-8")), encoding="utf-8")
    else:
        print(generated_block(), end="")
