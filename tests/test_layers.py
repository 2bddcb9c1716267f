"""The tree is the architecture: each layer imports only the layers below it, and no module
imports itself back through others (an import circle), lazy imports inside functions included.

The layers, bottom up, are declared once in `LAYERS`; docs/architecture.md describes them. A
change that imports upward or closes a circle fails here, naming the import and its line.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest
from helpers import ROOT

# Bottom up. A module belongs to the first layer one of whose prefixes it starts with.
LAYERS = (
    ("settings", ("animator.settings",)),
    ("transforms", ("transforms",)),
    ("media", ("animator.media",)),
    ("config", ("animator.config",)),
    ("engine", ("animator.engine",)),
    ("render", ("animator.renderer",)),
    ("sweep", ("animator.sweep",)),
    ("front ends", ("animator.cli", "animator.api", "animator.notebook", "animator.progress",
                    "animator.studio", "animator.__main__", "animator")),
)


def layer_of(module: str) -> int:
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"{module} is in no layer: add it to LAYERS and docs/architecture.md")


def modules() -> dict[str, Path]:
    found = {}
    for package in ("animator", "transforms"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imports(module: str, path: Path, known: dict) -> list[tuple[str, int]]:
    """The project modules `module` imports, anywhere in its body, with their line numbers."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            # `from animator import dream` imports the module animator.dream
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                     for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.append((name, node.lineno))
    return found


def graph() -> dict[str, list[tuple[str, int]]]:
    known = modules()
    return {module: imports(module, path, known) for module, path in known.items()}


def test_every_module_has_a_layer():
    for module in modules():
        layer_of(module)


def test_no_module_imports_a_layer_above_its_own():
    upward = []
    for module, targets in graph().items():
        for target, line in targets:
            # a package's __init__ may name its own submodules; the top package is the front door
            if target.startswith(module + ".") or module == "animator":
                continue
            if layer_of(target) > layer_of(module):
                upward.append(f"{module}:{line} imports {target} "
                              f"({LAYERS[layer_of(module)][0]} -> {LAYERS[layer_of(target)][0]})")
    assert not upward, "imports against the layering:\n" + "\n".join(upward)


def test_there_is_no_import_circle():
    edges = {module: {t for t, _ in targets if not t.startswith(module + ".") and module != "animator"}
             for module, targets in graph().items()}
    circles, state = [], {}

    def visit(module, trail):
        state[module] = "open"
        for target in sorted(edges.get(module, ())):
            if state.get(target) == "open":
                circles.append(" -> ".join(trail[trail.index(target):] + [target]))
            elif target not in state:
                visit(target, trail + [target])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_the_checks_see_an_upward_and_a_circular_import(tmp_path, monkeypatch):
    """The checks above can fail: a fake tree with an engine module importing the CLI, and two
    modules importing each other, is caught by both."""
    for rel, text in {
        "animator/__init__.py": "",
        "animator/cli.py": "import animator.engine.dream\n",
        "animator/engine/__init__.py": "",
        "animator/engine/dream.py": "def f():\n    from animator import cli\n",
        "transforms/__init__.py": "",
    }.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    with pytest.raises(AssertionError, match=re.escape(
            "animator.engine.dream:2 imports animator.cli (engine -> front ends)")):
        test_no_module_imports_a_layer_above_its_own()
    with pytest.raises(AssertionError, match=re.escape(
            "animator.cli -> animator.engine.dream -> animator.cli")):
        test_there_is_no_import_circle()
