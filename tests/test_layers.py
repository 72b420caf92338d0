"""The import contract: data flows one way, config -> data -> model -> evaluate -> explain ->
figures -> report -> pipeline -> cli, and the heavy libraries stay where they belong."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "reportgen"
ORDER = ["errors", "methods", "config", "progress", "data", "model", "evaluate", "explain", "figures",
         "report", "pipeline", "cli"]
FORBIDDEN = {
    "explain": {"matplotlib", "jinja2"},
    "figures": {"tensorflow", "keras", "jinja2"},
    "report": {"tensorflow", "keras"},
    "evaluate": {"tensorflow", "keras", "matplotlib", "jinja2"},
    "data": {"tensorflow", "keras", "matplotlib", "jinja2"},
    "config": {"tensorflow", "keras", "matplotlib", "jinja2", "numpy"},
    "cli": {"tensorflow", "keras", "matplotlib"},
}


def layer_of(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0].removesuffix(".py")


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


MODULES = [p for p in PKG.rglob("*.py") if layer_of(p) in ORDER]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PKG)))
def test_layer_imports_only_earlier_layers(path):
    layer = layer_of(path)
    for name in imports(path):
        top = name.split(".")[0]
        if top == "reportgen" and name.count(".") >= 1:
            target = name.split(".")[1]
            if target in ORDER:
                assert ORDER.index(target) <= ORDER.index(layer), \
                    f"{path.name} ({layer}) imports {name}, a later layer"
        assert top not in FORBIDDEN.get(layer, set()), f"{path.name} ({layer}) imports {top}"


def test_every_module_is_in_a_layer():
    for p in PKG.rglob("*.py"):
        assert layer_of(p) in ORDER + ["__init__", "__main__"], p
