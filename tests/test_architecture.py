"""The dependency rules and the layout of docs/architecture.md, checked on the code itself.

A plain import graph, read with ``ast`` from every module (imports inside functions too), so
a change that breaks a rule fails here rather than in a review:

- ``remote_probe`` imports nothing of ours: it is piped alone into the host's python;
- nothing in ``collector`` imports ``web`` but the CLI's command table (``collector/cli.py``);
- ``web`` never opens an SSH connection: it reaches neither paramiko nor the transport;
- the alert engine is a pure function of (rules, state, samples, now): neither it nor the
  metric registry it reads imports anything that does I/O or reads a clock;
- every package is listed in pyproject.toml (a forgotten one is missing from the wheel), no
  module is over 500 lines but the probe, and ``collector``'s top level stays small.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
OURS = ("collector", "web", "remote_probe")
MAX_LINES = 500
#: What no module of the pure core may import: I/O, processes, the network, the clock, and
#: our own modules that do those.
IMPURE = ("socket", "smtplib", "subprocess", "urllib", "http", "paramiko", "time", "os",
          "shutil", "threading", "collector.store", "collector.transport", "collector.passes",
          "collector.alerts.mail", "collector.alerts.state", "collector.alerts.certfr",
          "collector.alerts.hook", "collector.alerts.muting_store", "collector.backup", "web")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    found = {}
    for top in OURS:
        for path in sorted((ROOT / top).rglob("*.py")):
            found[module_name(path)] = path
    return found


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, absolute names (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path) if path.name == "__init__.py" else \
        module_name(path).rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


GRAPH = {name: imports_of(path) for name, path in modules().items()}


def reaches(name: str, prefixes: tuple[str, ...]) -> list[str]:
    return sorted(i for i in GRAPH[name] if any(i == p or i.startswith(p + ".")
                                                 for p in prefixes))


def test_the_probe_imports_nothing_of_ours() -> None:
    for name in GRAPH:
        if name.startswith("remote_probe"):
            assert reaches(name, ("collector", "web")) == [], name
            assert [i for i in GRAPH[name] if i.startswith("remote_probe.")] == [], name


def test_only_the_cli_command_table_reaches_web() -> None:
    offenders = {name: reaches(name, ("web",)) for name in GRAPH
                 if name.startswith("collector") and name != "collector.cli"}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_web_never_opens_an_ssh_connection() -> None:
    for name in GRAPH:
        if name.startswith("web"):
            assert reaches(name, ("paramiko", "collector.transport", "collector.passes")) == [], \
                name


def _closure(start: str) -> set[str]:
    """Our modules reachable from ``start``, through ``collector.metrics`` and the alert
    modules the engine imports (wording, notifications, silences: the pure core)."""
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen or name not in GRAPH:
            continue
        seen.add(name)
        todo += [i for i in GRAPH[name] if i in GRAPH and (
            i.startswith(("collector.metrics", "collector.alerts")) or i == "collector.times")]
    return seen


@pytest.mark.parametrize("start", ["collector.alerts.rules", "collector.alerts.muting_input",
                                   "collector.metrics.registry",
                                   "collector.metrics.gate", "collector.metrics.rates",
                                   "collector.metrics.series"])
def test_the_alert_engine_and_the_registry_are_pure(start: str) -> None:
    for name in _closure(start):
        assert reaches(name, IMPURE) == [], name


def test_every_package_ships_in_the_wheel() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"])
    packages = {module_name(p.parent / "__init__.py") for top in OURS
                for p in (ROOT / top).rglob("__init__.py")}
    assert listed == packages


def test_modules_are_small_and_the_top_level_too() -> None:
    for name, path in modules().items():
        if name != "remote_probe.probe":
            lines = len(path.read_text(encoding="utf-8").splitlines())
            assert lines <= MAX_LINES, f"{path.relative_to(ROOT)}: {lines} lines"
    top = [p.name for p in (ROOT / "collector").glob("*.py")
           if p.name not in ("__init__.py", "__main__.py")]
    assert len(top) <= 6, top
    subpackages = [p.parent.name for p in (ROOT / "collector").glob("*/__init__.py")]
    assert len(subpackages) >= 4


def test_post_pass_hooks_resolve() -> None:
    """Hooks are named by string: a stale name would only log a warning each pass."""
    import importlib

    from collector.passes.hooks import POST_PASS_HOOKS

    for spec in POST_PASS_HOOKS:
        module, _, function = spec.partition(":")
        assert callable(getattr(importlib.import_module(module), function)), spec


def test_code_cites_the_design_in_the_repository() -> None:
    cited = set()
    for top in (*OURS, "tests", "bench"):
        for path in (ROOT / top).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            assert "DESIGN" + ".md" not in text, path  # the starting design, not in the repo
            cited.update(re.findall(r"docs/[\w./-]+\.md", text))
    assert "docs/architecture.md" in cited
    for doc in cited:
        assert (ROOT / doc).is_file(), doc
