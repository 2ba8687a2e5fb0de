"""What the documents say is what the code does: the sample schema and the default thresholds.

docs/architecture.md prints the sample schema generated from the metric registry; these tests
fail when the document is stale, when a stored sample holds a field the schema does not list,
and when the shipped hosts.toml states a default that is not the built-in one.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

from collector import config as config_mod
from collector.metrics import disk_trend, docs
from collector.metrics.families.checks import derive_checks
from collector.metrics.gate import validate_probe_output
from collector.metrics.rates import derive_sample
from collector.metrics.registry import builtin_levels

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "proc" / "normal-multicore" / "expected.json"


def test_architecture_document_has_the_current_schema() -> None:
    document = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert docs.BEGIN in document and docs.END in document
    assert docs.replace_block(document) == document, (
        "run: python -m collector.metrics.docs --write docs/architecture.md")


def _paths(value: Any, path: str) -> list[str]:
    """Every field of a stored value as the schema names it (``[]`` for list items)."""
    out = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, f"{path}.{key}")
    elif isinstance(value, list):
        for item in value:
            out += _paths(item, f"{path}[]")
    return out


def _stored_pair() -> tuple[dict[str, Any], dict[str, Any]]:
    """Two stored samples of the normal-multicore host, a minute apart (so rates exist)."""
    raw = json.loads(FIXTURE.read_text())
    raw["system"].update(arch="x86_64", python="3.11.2")
    raw["errors"] = {}
    first = validate_probe_output(copy.deepcopy(raw))
    later = copy.deepcopy(raw)
    for iface in later["net"]:
        iface["rx_bytes"] += 6000
    second = validate_probe_output(later)
    previous = derive_sample(first, None, 1000.0, None)
    stored = derive_sample(second, previous, 1060.0, 1000.0)
    # The pass adds each mount's forecast (collector.passes.collect, _collect).
    stored["disks"], _trend = disk_trend.update(None, stored["disks"], 1060.0, "web1")
    stored["checks"] = derive_checks({"web": {"exit": 1, "output": "slow|time=2s;1;5",
                                              "duration_s": 0.2}},
                                     [{"name": "web"}])
    return previous, stored


def test_every_stored_field_is_in_the_documented_schema() -> None:
    documented = {path for path, _text, _unit, _origin in docs.stored_rows()}
    _previous, stored = _stored_pair()
    stored.pop("errors")
    for section, value in stored.items():
        for path in _paths(value, section):
            general = re.sub(r"^checks\.web\b", "checks.<name>", path)
            if general.startswith("checks.<name>.perf."):
                continue  # perfdata labels are the plugin's own
            # A list of numbers is one row ("cpu.load"): its items are documented with it.
            listed = general in documented or (general.endswith("[]")
                                               and general[:-2] in documented)
            assert listed, f"{path} is stored but not in docs/architecture.md"


def test_every_documented_derived_field_is_stored() -> None:
    _previous, stored = _stored_pair()
    found = {re.sub(r"^checks\.web\b", "checks.<name>", p)
             for section, value in stored.items() for p in _paths(value, section)}
    derived = [path for path, _t, _u, origin in docs.stored_rows() if origin == "derived"]
    assert derived and set(derived) <= found


def test_the_shipped_hosts_toml_states_the_built_in_thresholds(tmp_path: Path) -> None:
    """Uncommenting the [thresholds] examples of hosts.toml changes nothing."""
    text = (ROOT / "hosts.toml").read_text(encoding="utf-8")
    section = text[text.index("[thresholds]"):text.index("[alerts]")]
    uncommented = re.sub(r"(?m)^# (\w+ = \{|\[thresholds\.\w+\])", r"\1", section)
    assert uncommented != section
    path = tmp_path / "hosts.toml"
    path.write_text(uncommented + '\n[[hosts]]\nname = "c"\nlocal = true\n', encoding="utf-8")
    thresholds = config_mod.load(path).thresholds
    levels, items = builtin_levels()
    assert dict(thresholds.levels) == levels
    assert {k: dict(v) for k, v in thresholds.items.items()} == items
    assert set(re.findall(r"(?m)^# (\w+) = \{", section)) | {"pressure"} >= set(levels) - {
        "check"}
